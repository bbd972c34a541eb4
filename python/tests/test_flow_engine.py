"""FlowEngine end to end with a real HTTP server on 127.0.0.1 as the API."""

import asyncio
import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import idflow
import pytest

FLOWS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "flows"
RANDOM_USER = {"id": 4262, "first_name": "Jerrold", "email": "jerrold.kerluke@email.com",
               "date_of_birth": "1979-10-03", "employment": {"title": "Chief Hospitality Producer"}}


@pytest.fixture
def api():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = (200, RANDOM_USER) if self.path.startswith("/api/users") else (500, {"error": "boom"})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api"
    httpd.shutdown()


def project(api_url):
    return json.dumps({
        "projectId": "local", "baseUrl": "http://127.0.0.1:8080",
        "connectors": [{"id": "random", "type": "http", "baseUrl": api_url}],
        "flows": ["random-user.json", "sign-up-or-in.json"],
    })


def test_documented_connector_flow(api):
    key = idflow.Key.generate("ES256")
    engine = idflow.FlowEngine(project(api), key=key, base_dir=str(FLOWS))
    r = engine.start("random-user")
    assert r["status"] == "completed", r
    session = r["authInfo"]["sessionJwt"]
    assert idflow.jwt.decode_unverified(session)["header"]["typ"] == "session+jwt"
    claims = idflow.jwt.verify(session, key.public_key(), algorithms=["ES256"],
                               issuer="http://127.0.0.1:8080/local", audience="local")
    assert claims["dob"] == "1979-10-03" and claims["aud"] == "local"
    assert "amr" not in claims  # no step verified anything (RFC 8176)
    assert r["authInfo"]["user"]["loginIds"] == ["jerrold.kerluke@email.com"]
    t = engine.test_connector("random", "GET", "/users?size=1")
    assert t["ok"] and t["status"] == 200 and t["body"]["first_name"] == "Jerrold"
    bad = engine.test_connector("random", "GET", "/broken")
    assert not bad["ok"] and bad["status"] == 500 and bad["error"]["code"] == "connector_failed"


def test_screens_asyncio_and_persistence(api, tmp_path):
    key = idflow.Key.generate("EdDSA")
    db = str(tmp_path / "idflow.db")
    first = idflow.FlowEngine(project(api), key=key, base_dir=str(FLOWS), database=db)

    async def begin():
        return await first.start_async("sign-up-or-in", {"email": "prefill@example.com"})

    r = asyncio.run(begin())
    assert r["status"] == "waiting" and r["screen"]["inputs"][0]["name"] == "email"
    again = idflow.FlowEngine(project(api), key=key, base_dir=str(FLOWS), database=db)  # a "restarted" process
    bad = again.next(r["executionId"], r["stepId"], "submit", {"email": "nope"})
    assert bad["status"] == "waiting" and bad["error"]["code"] == "invalid_request"
    async def answer():
        return await again.next_async(r["executionId"], r["stepId"], "submit", {"email": "New@Example.com"})

    done = asyncio.run(answer())
    assert done["status"] == "completed", done
    assert done["authInfo"]["user"]["name"] == "New@Example.com"
    assert done["authInfo"]["user"]["customAttributes"] == {"plan": "free"}
    with pytest.raises(idflow.OAuthError) as info:
        again.next(r["executionId"], r["stepId"], "submit", {"email": "x@example.com"})
    assert info.value.code == "invalid_request"


def test_errors(api):
    key = idflow.Key.generate("ES256")
    engine = idflow.FlowEngine(project(api), key=key, base_dir=str(FLOWS))
    with pytest.raises(idflow.FlowError) as info:
        engine.start("no-such-flow")
    assert info.value.code == "flow_not_found"
    with pytest.raises(idflow.ConfigError):
        idflow.FlowEngine('{"projectId": "x"}', key=key)
    with pytest.raises(idflow.ConfigError):
        idflow.FlowEngine(project(api), key=key, base_dir="/nonexistent")


def test_user_management(tmp_path):
    engine = idflow.FlowEngine('{"projectId": "p", "baseUrl": "http://127.0.0.1:8080"}', key=idflow.Key.generate("ES256"),
                               database=str(tmp_path / "users.db"))
    ann = engine.create_user("Ann@Example.com", {"name": "Ann", "customAttributes": {"plan": "pro"}})
    assert ann["loginIds"] == ["ann@example.com"] and ann["customAttributes"] == {"plan": "pro"}
    with pytest.raises(idflow.FlowError) as info:
        engine.create_user("ann@example.com")
    assert info.value.code == "user_exists"
    assert engine.get_user(ann["userId"])["name"] == "Ann"
    assert engine.update_user(ann["userId"], {"status": "disabled"})["status"] == "disabled"
    tenants = [{"tenantId": "T1", "roles": ["Tenant Admin"]}]
    assert engine.update_user(ann["userId"], {"tenants": tenants})["tenants"] == tenants
    with pytest.raises(idflow.OAuthError):
        engine.update_user(ann["userId"], {"colour": "red"})
    engine.create_user("bob@example.com")
    assert [u["loginIds"][0] for u in engine.search_users("EXAMPLE")] == sorted(["ann@example.com", "bob@example.com"],
        key=lambda l: [u["userId"] for u in engine.search_users() if u["loginIds"][0] == l][0])
    assert len(engine.search_users(status="disabled")) == 1
    engine.delete_user(ann["userId"])
    with pytest.raises(idflow.FlowError) as info:
        engine.get_user(ann["userId"])
    assert info.value.code == "user_not_found"


def test_bring_your_own_idp():
    """A customer's own login API as a connector: signIn for known users only,
    profile copied from the API's answer, denial and API failure branches."""
    replies = {"body": {"valid": True, "displayName": "Ann Example", "department": "R&D"}, "status": 200}
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            data = json.dumps(replies["body"]).encode()
            self.send_response(replies["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        doc = {"projectId": "local", "baseUrl": "http://127.0.0.1:8080",
               "connectors": [{"id": "auth", "type": "http", "baseUrl": f"http://127.0.0.1:{httpd.server_address[1]}/auth"}],
               "flows": ["byo-idp.json"]}
        key = idflow.Key.generate("ES256")
        engine = idflow.FlowEngine(json.dumps(doc), key=key, base_dir=str(FLOWS))
        ann = engine.create_user("ann@example.com")
        start = engine.start("byo-idp")
        r = engine.next(start["executionId"], "login", "submit", {"email": "nobody@example.com", "password": "pw"})
        assert r["status"] == "failed" and r["error"]["code"] == "user_not_found"
        start = engine.start("byo-idp")
        r = engine.next(start["executionId"], "login", "submit", {"email": "Ann@Example.com", "password": 'p&ss "word"'})
        assert r["status"] == "completed", r
        assert r["authInfo"]["user"]["userId"] == ann["userId"]
        assert r["authInfo"]["user"]["name"] == "Ann Example"
        assert r["authInfo"]["user"]["customAttributes"]["department"] == "R&D"
        claims = idflow.jwt.verify(r["authInfo"]["sessionJwt"], key.public_key(), algorithms=["ES256"],
                                   issuer="http://127.0.0.1:8080/local", audience="local")
        assert "amr" not in claims  # the API checked the password, not idflow: no RFC 8176 method to name
        assert seen[-1] == {"username": "Ann@Example.com", "password": 'p&ss "word"'}
        replies.update(body={"valid": False})
        start = engine.start("byo-idp")
        r = engine.next(start["executionId"], "login", "submit", {"email": "ann@example.com", "password": "x"})
        assert r["status"] == "completed" and "authInfo" not in r
        replies.update(status=500, body={})
        start = engine.start("byo-idp")
        r = engine.next(start["executionId"], "login", "submit", {"email": "ann@example.com", "password": "x"})
        assert r["status"] == "completed" and "authInfo" not in r
    finally:
        httpd.shutdown()
