"""idflow's own provider served over loopback HTTP (a stdlib server around
idflow.Provider), and a scripted browser that signs in through its flow API.
Shared by the OidcClient and SessionManager tests."""

import http.server
import json
import pathlib
import threading
import time
import urllib.parse

import pytest

import idflow

E2E = pathlib.Path(__file__).resolve().parents[2] / "tests" / "e2e"
CB = "http://127.0.0.1:5555/callback"


class _Handler(http.server.BaseHTTPRequestHandler):
    provider: idflow.Provider
    # Seconds to hold refresh_token grants, so concurrent callers overlap.
    refresh_delay = 0.0

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.refresh_delay and b"grant_type=refresh_token" in body:
            time.sleep(self.refresh_delay)
        r = self.provider.handle(self.command, self.path, list(self.headers.items()), body)
        self.send_response(r.status)
        for k, v in r.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(r.body)))
        self.end_headers()
        self.wfile.write(r.body)

    do_GET = do_POST = _serve

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def op():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    provider = idflow.Provider((E2E / "project.json").read_text(), base_dir=str(E2E), base_url=base)
    handler = type("H", (_Handler,), {"provider": provider})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider, f"{provider.issuer}/.well-known/openid-configuration"
    server.shutdown()


def set_cookie(r: idflow.HttpResponse, name: str) -> str | None:
    """`name=value` of the response's `Set-Cookie` for `name`, if any."""
    for k, v in r.headers:
        if k.lower() == "set-cookie" and v.startswith(name + "="):
            return v.split(";", 1)[0]
    return None


def browse(provider: idflow.Provider, url: str, email: str) -> str:
    """The user's browser: authorize → flow API → the delivery of the
    answer (only to the browser that authorized) → the callback URL."""
    r = provider.handle("GET", url)
    location = r.header("location")
    if "/login/" not in location:
        return location
    # The authorization request is bound to this browser's cookie.
    jar = {"Cookie": set_cookie(r, "idflow_browser"), "Content-Type": "application/json"}
    request = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["request"]
    post = lambda path, doc: json.loads(provider.handle("POST", path, jar, json.dumps(doc)).body)
    s = post("/v1/flow/start", {"request": request})
    d = post(
        "/v1/flow/next",
        {"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": email}},
    )
    done = provider.handle("GET", d["redirect"]["url"], {"Cookie": jar["Cookie"]})
    assert done.status == 302, done.body
    return done.header("location")
