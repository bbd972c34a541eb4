"""End-to-end fixtures: a real `idflow serve` process and a scripted "browser".

The server runs once per test session from the prebuilt binary (env
IDFLOW_BIN, default target/x86_64-unknown-linux-gnu/debug/idflow under the
repo root) with tests/e2e/project.json, a fresh SQLite database in a temp
dir and a free loopback port. Nothing here builds Rust.

A sign-in goes the way a browser's would, but over the flow API:
GET /oauth2/v1/authorize (302 to the hosted login page, not followed; it
sets the `idflow_browser` cookie that binds the request to this browser) →
POST /v1/flow/start (answers the `executionSecret`) → POST /v1/flow/next →
GET of its `redirect.url`, the completion URL that delivers the answer only
to the browser that authorized: its 302 back to the client, with the
provider's session cookie kept in the browser's cookie jar.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
E2E = REPO / "tests" / "e2e"
PROJECT = E2E / "project.json"
PARTNER_KEY = E2E / "partner-key.json"
DEFAULT_BIN = REPO / "target" / "x86_64-unknown-linux-gnu" / "debug" / "idflow"

PROJECT_ID = "e2e"
# The loopback redirect URIs are registered without a port (RFC 8252 §7.3:
# any port matches); the tests use ports on purpose.
PUBLIC_CLIENT = "e2e"
PUBLIC_REDIRECT = "http://127.0.0.1:8765/callback"
WEB_CLIENT = "web"
WEB_SECRET = "web-secret-0123456789abcdef"
WEB_REDIRECT = "http://127.0.0.1:8766/cb"
POST_CLIENT = "web-post"
POST_SECRET = "post-secret-0123456789abcdef"
POST_REDIRECT = "http://127.0.0.1:8767/cb"
PARTNER_CLIENT = "partner"
PARTNER_REDIRECT = "http://127.0.0.1:8768/partner/cb"
ACCESS_KEY_ID = "K-reporting"
ACCESS_KEY_SECRET = "reporting-secret-0123456789"

HTTP_TIMEOUT = 10


def pytest_configure(config):
    # authlib's http:// guard (the provider under test listens on loopback).
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base_url: str
    workdir: Path
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)
    _metadata: dict | None = None

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{PROJECT_ID}"

    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            r = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
            r.raise_for_status()
            self._metadata = r.json()
        return self._metadata

    def url(self, path: str) -> str:
        return self.base_url + path

    def logs(self) -> str:
        err = (self.workdir / "stderr.log").read_text(errors="replace") if (self.workdir / "stderr.log").exists() else ""
        return "stdout:\n" + "".join(self.output) + "\nstderr:\n" + err


def _start(binary: Path, workdir: Path, project: Path = PROJECT) -> Server:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    stderr = open(workdir / "stderr.log", "ab")
    proc = subprocess.Popen(
        [
            str(binary), "serve",
            "--config", str(project),
            "--db", str(workdir / "idflow.db"),
            "--addr", f"127.0.0.1:{port}",
            "--base-url", base,
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    stderr.close()
    server = Server(base_url=base, workdir=workdir, process=proc)
    listening = threading.Event()

    def pump():
        assert proc.stdout is not None
        for line in proc.stdout:
            server.output.append(line)
            if line.startswith("idflow serve: listening on"):
                listening.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if listening.wait(0.1):
            try:
                r = requests.get(base + "/health", timeout=2)
                if r.status_code == 200 and r.json() == {"status": "ok"}:
                    return server
            except requests.RequestException:
                pass
    _stop(proc)
    raise RuntimeError(f"idflow serve did not come up on {base} (exit {proc.returncode})\n{server.logs()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_server(tmp_path_factory, project: Path = PROJECT, name: str = "idflow") -> Server:
    """`idflow serve` with `project` (another project file, e.g. a copy
    with other settings; its relative paths resolve against its own dir)."""
    binary = Path(os.environ.get("IDFLOW_BIN") or DEFAULT_BIN)
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.is_file():
        pytest.fail(f"idflow binary not found at {binary} (build it first or set IDFLOW_BIN)", pytrace=False)
    last: Exception | None = None
    for attempt in range(3):  # a freed port can be taken before the server binds it
        workdir = tmp_path_factory.mktemp(f"{name}-{attempt}")
        try:
            return _start(binary, workdir, project)
        except RuntimeError as e:
            last = e
    raise last  # type: ignore[misc]


def stop_server(srv: Server) -> None:
    _stop(srv.process)
    assert srv.process.returncode is not None


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    srv = start_server(tmp_path_factory)
    yield srv
    stop_server(srv)


# ---------------------------------------------------------------- helpers

def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(48)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


@dataclass
class Login:
    """The outcome of a sign-in: where the browser was sent back to."""
    callback_url: str
    params: dict[str, str]
    flow_response: dict | None  # None when an existing session answered at once
    completion: requests.Response | None = None  # the completion URL's answer (form_post: its page)

    @property
    def code(self) -> str:
        assert "code" in self.params, f"no code in {self.callback_url}"
        return self.params["code"]


def authorize(browser: requests.Session, server: Server, url: str) -> requests.Response:
    r = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302, f"authorize answered {r.status_code}: {r.text[:500]}"
    return r


def login(server: Server, authorization_url: str, email: str | None = None,
          browser: requests.Session | None = None, answer: dict | None = None) -> Login:
    """Drives a sign-in for `authorization_url` through the flow API; the
    first screen is answered by `answer` (interactionId and input), by
    default "submit" with the email."""
    browser = browser if browser is not None else requests.Session()
    email = email or new_email()
    answer = answer or {"interactionId": "submit", "input": {"email": email}}
    r = authorize(browser, server, authorization_url)
    location = r.headers["Location"]
    hosting = urlsplit(location)
    if not location.startswith(server.url(f"/login/{PROJECT_ID}")):
        # An existing session answered without a flow.
        return Login(location, query_params(location), None)
    assert hosting.path == f"/login/{PROJECT_ID}", location
    q = query_params(location)
    assert q.get("request"), location
    assert q.get("flow"), location

    start = browser.post(server.url("/v1/flow/start"), json={"flowId": q["flow"], "request": q["request"]}, timeout=HTTP_TIMEOUT)
    assert start.status_code == 200, start.text
    waiting = start.json()
    assert waiting["status"] == "waiting", waiting
    assert waiting["executionId"] and waiting["stepId"], waiting
    assert any(i["name"] == "email" for i in waiting["screen"]["inputs"]), waiting
    assert any(i["id"] == answer["interactionId"] for i in waiting["screen"]["interactions"]), waiting

    assert waiting["executionSecret"], waiting
    assert browser.cookies.get("idflow_browser"), "authorize binds the request to this browser"

    nxt = browser.post(
        server.url("/v1/flow/next"),
        json={"executionId": waiting["executionId"], "executionSecret": waiting["executionSecret"], "stepId": waiting["stepId"], **answer},
        timeout=HTTP_TIMEOUT,
    )
    assert nxt.status_code == 200, nxt.text
    done = nxt.json()
    assert done["status"] == "completed", done
    complete = done["redirect"]["url"]
    assert urlsplit(complete).path == "/oauth2/v1/authorize/complete", complete
    # Delivered only to this browser (its idflow_browser cookie); sets the provider session.
    delivered = browser.get(complete, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert "idflow_session=" in delivered.headers.get("Set-Cookie", ""), delivered.headers
    if delivered.status_code == 302:
        callback = delivered.headers["Location"]
        return Login(callback, query_params(callback), done, delivered)
    # form_post: the auto-submitting page, at the completion URL.
    assert delivered.status_code == 200, delivered.text[:500]
    return Login(complete, query_params(complete), done, delivered)


def code_flow_tokens(server: Server, *, client_id: str = PUBLIC_CLIENT, redirect_uri: str = PUBLIC_REDIRECT,
                     scope: str = "openid profile email offline_access", secret: str | None = None,
                     email: str | None = None, nonce: str | None = None) -> dict:
    """A complete authorization-code sign-in with plain requests (no OAuth
    library): returns the token response plus `_email`, `_nonce`, `_state`."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    nonce = nonce or secrets.token_urlsafe(16)
    email = email or new_email()
    url = server.url("/oauth2/v1/authorize") + "?" + urlencode({
        "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
        "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
    })
    result = login(server, url, email)
    assert result.params.get("state") == state
    assert result.params.get("iss") == server.issuer
    form = {"grant_type": "authorization_code", "code": result.code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    auth = None
    if secret is None:
        form["client_id"] = client_id
    else:
        auth = (client_id, secret)
    r = requests.post(server.metadata["token_endpoint"], data=form, auth=auth, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    tokens = r.json()
    tokens.update({"_email": email, "_nonce": nonce, "_state": state})
    return tokens


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
