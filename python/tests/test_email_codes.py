"""One-time codes by email through tests/flows/email-code.json, mailed to a
real SMTP server on 127.0.0.1 (aiosmtpd): sign-in by code, a password
reset, and the refusals, with the codes Node and Rust get."""

import email
import json
import pathlib
import re
import socket

import pytest
from aiosmtpd.controller import Controller

import idflow

FLOWS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "flows"


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"

    def last_link(self):
        """The link in the newest message's text, and its query parameters."""
        from urllib.parse import parse_qs, urlsplit

        _, message = self.messages[-1]
        text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
        link = re.search(r"https?://\S+", text).group(0)
        return link, {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}

    def last_code(self):
        _, message = self.messages[-1]
        return re.search(r"\d{6}", message["Subject"]).group(0)


@pytest.fixture
def inbox():
    box = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd checks it is up by connecting)
        probe.bind(("127.0.0.1", 0))
        box.port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def engine(inbox):
    doc = json.loads((FLOWS / "password-project.json").read_text())
    doc["flows"] = ["email-code.json", "password.json", "step-up.json", "magic-link.json"]
    doc["email"] = {
        "transport": "smtp",
        "from": "Example <no-reply@example.com>",
        "smtp": {"host": "127.0.0.1", "port": inbox.port, "tls": "none"},
        "templates": {"code": {"subject": "{{project}}: your code is {{code}}", "html": "<p>{{email}} <b>{{code}}</b></p>"}},
    }
    return idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))


def ask(engine, address):
    s = engine.start("email-code")
    r = engine.next(s["executionId"], "ask", "send", {"email": address})
    assert r["status"] == "waiting" and r["stepId"] == "enter", r
    return s["executionId"]


def test_a_mailed_code_signs_in_once_and_verifies_the_email(engine, inbox):
    execution = ask(engine, "Kim@Example.com")
    recipients, message = inbox.messages[-1]
    assert recipients == ["kim@example.com"] and message["From"] == "Example <no-reply@example.com>"
    assert message["Subject"].startswith("local: your code is ")
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    assert "<b>" + inbox.last_code() + "</b>" in html
    done = engine.next(execution, "enter", "signIn", {"code": inbox.last_code()})
    assert done["status"] == "completed"
    assert idflow.jwt.decode_unverified(done["authInfo"]["sessionJwt"])["claims"]["amr"] == ["otp"]
    user = engine.search_users(text="kim@example.com")[0]
    assert user["verifiedEmail"] is True


def test_wrong_spent_and_resent_codes(engine, inbox):
    execution = ask(engine, "ann@example.com")
    code = inbox.last_code()
    wrong = "000000" if code != "000000" else "000001"
    r = engine.next(execution, "enter", "signIn", {"code": wrong})
    assert r["stepId"] == "enter" and r["error"]["code"] == "invalid_code"
    for _ in range(4):
        engine.next(execution, "enter", "signIn", {"code": wrong})
    assert engine.next(execution, "enter", "signIn", {"code": code})["error"]["code"] == "invalid_code", "five wrong tries spend it"
    r = engine.next(execution, "enter", "resend", {})
    assert r["stepId"] == "enter" and "error" not in r
    assert engine.next(execution, "enter", "signIn", {"code": inbox.last_code()})["status"] == "completed"


def test_a_code_resets_a_password(engine, inbox):
    pw = engine.start("password")
    assert engine.next(pw["executionId"], "welcome", "signUp", {"email": "pat@example.com", "password": "old long password"})["status"] == "completed"
    execution = ask(engine, "pat@example.com")
    done = engine.next(execution, "enter", "reset", {"code": inbox.last_code(), "newPassword": "a new long password"})
    assert done["status"] == "completed", done
    pw = engine.start("password")
    assert engine.next(pw["executionId"], "welcome", "signIn", {"email": "pat@example.com", "password": "a new long password"})["status"] == "completed"


def test_a_password_sign_in_is_stepped_up_to_a_mailed_code(engine, inbox):
    # tests/flows/step-up.json: a condition on auth.methods sends a code
    # until two methods verified; the session then says pwd, otp and mfa.
    engine.set_password(engine.create_user("ann@example.com")["userId"], "a long enough secret")
    s = engine.start("step-up")
    r = engine.next(s["executionId"], "ask", "submit", {"email": "ann@example.com", "password": "a long enough secret"})
    assert r["status"] == "waiting" and r["stepId"] == "enter", r
    done = engine.next(s["executionId"], "enter", "submit", {"code": inbox.last_code()})
    assert done["status"] == "completed", done
    assert idflow.jwt.decode_unverified(done["authInfo"]["sessionJwt"])["claims"]["amr"] == ["pwd", "otp", "mfa"]


def test_templates_that_name_what_they_cannot_fill_are_refused():
    doc = json.loads((FLOWS / "password-project.json").read_text())
    doc["email"] = {"transport": "console", "from": "a@example.com", "templates": {"code": {"text": "Hello {{user.password}}"}}}
    with pytest.raises(idflow.ConfigError) as e:
        idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))
    assert "{{user.password}}" in str(e.value)
    doc["email"] = {"transport": "console", "from": "a@example.com"}
    doc["baseUrl"] = "https://auth.example.com"
    with pytest.raises(idflow.ConfigError):
        idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))


def test_codes_go_through_a_mail_api_by_http():
    """The http transport: a JSON request per code through a connector, to a
    real HTTP server on 127.0.0.1 (what Rust and Node check too)."""
    import http.server
    import threading

    received = []

    class MailApi(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers.get("Authorization"), json.loads(body)))
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "msg-1"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MailApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        doc = json.loads((FLOWS / "password-project.json").read_text())
        doc["flows"] = ["email-code.json", "password.json"]
        doc["connectors"] = [{"id": "mailer", "type": "http", "baseUrl": f"http://127.0.0.1:{server.server_port}", "auth": {"type": "bearer", "token": "k-1"}}]
        doc["email"] = {
            "transport": "http",
            "from": "no-reply@example.com",
            "http": {"connector": "mailer", "endpoint": "/send", "body": {"to": "{{to}}", "subject": "{{subject}}", "text": "{{text}}"}},
        }
        engine = idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))
        execution = ask(engine, "lee@example.com")
        path, auth, body = received[-1]
        assert path == "/send" and auth == "Bearer k-1"
        assert body["to"] == "lee@example.com" and set(body) == {"to", "subject", "text"}
        code = re.search(r"\d{6}", body["subject"]).group(0)
        assert code in body["text"]
        assert engine.next(execution, "enter", "signIn", {"code": code})["status"] == "completed"
    finally:
        server.shutdown()


def ask_link(engine, inbox, address, how="send"):
    s = engine.start("magic-link")
    r = engine.next(s["executionId"], "ask", how, {"email": address})
    assert r["status"] == "waiting" and r["stepId"] == "wait", r
    link, query = inbox.last_link()
    assert link.startswith("https://app.example.com/sign-in/link?") and query["execution"] == s["executionId"]
    return s["executionId"], query["link"]


def test_a_mailed_link_signs_in_once_and_only_where_it_was_asked(engine, inbox):
    execution, token = ask_link(engine, inbox, "Lin@Example.com")
    # Not crossDevice: another device cannot approve it, and trying spends nothing.
    with pytest.raises(idflow.IdflowError) as e:
        engine.approve_link(execution, token)
    assert e.value.code == "access_denied"
    done = engine.next(execution, "wait", "continue", {"token": token})
    assert done["status"] == "completed", done
    assert idflow.jwt.decode_unverified(done["authInfo"]["sessionJwt"])["claims"]["amr"] == ["otp"]
    other, _ = ask_link(engine, inbox, "lin@example.com")
    assert engine.next(other, "wait", "continue", {"token": token})["error"]["code"] == "invalid_code"


def test_a_cross_device_link_approves_the_sign_in_that_asked(engine, inbox):
    execution, token = ask_link(engine, inbox, "dee@example.com", "sendAnyDevice")
    assert engine.next(execution, "wait", "continue", {})["error"]["code"] == "invalid_request"
    with pytest.raises(idflow.IdflowError) as e:
        engine.approve_link(execution, "Lwrong")
    assert e.value.code == "invalid_code"
    engine.approve_link(execution, token)
    with pytest.raises(idflow.IdflowError) as e:
        engine.approve_link(execution, token)
    assert e.value.code == "invalid_code"
    assert engine.next(execution, "wait", "continue", {})["status"] == "completed"
