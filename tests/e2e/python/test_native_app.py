"""Native apps (RFC 8252) against `idflow serve`, with idflow's own
SessionManager as the app's session: the `native` application (public,
redirect `com.example.app:/oauth2redirect`) signs in across OS processes
(the app is killed between opening the browser and the callback), two app
processes refresh the same session at the same moment, and an app killed
after the provider answered a refresh recovers within
`tokens.refreshReuseGrace`.

The app's processes are native_app_process.py, run with this interpreter.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import idflow

import native_app_process
from conftest import E2E, HTTP_TIMEOUT, b64url, PROJECT, login, new_email, query_params, start_server, stop_server
from native_app_process import NATIVE_CLIENT, NATIVE_REDIRECT, NATIVE_SCOPES, FileStorage, native_client

HELPER = Path(native_app_process.__file__).resolve()
SIGNED_OUT_URI = "com.example.app:/signed-out"  # the app's registered postLogoutRedirectUri
ROUNDS = 50


def discovery_url(server) -> str:
    return f"{server.issuer}/.well-known/openid-configuration"


def run_app(*args: str, returncode: int = 0) -> dict:
    """Runs one app process to its end; its JSON line."""
    p = subprocess.run([sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == returncode, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout
    return json.loads(lines[0])


def stored(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def sign_in(server, client: idflow.OidcClient, path: Path, email: str) -> dict:
    """A native sign-in in this process (begin → browser → complete)."""
    manager = idflow.SessionManager(client, FileStorage(path))
    result = login(server, manager.begin(), email)
    assert result.callback_url.startswith(NATIVE_REDIRECT + "?"), result.callback_url
    session = manager.complete(result.callback_url)
    assert session["claims"]["email"] == email and session["refresh_token"]
    assert stored(path) == {"v": 2, "session": session}
    return session


def test_native_sign_in_across_processes_refresh_sign_out_and_end_session(server, tmp_path):
    discovery = discovery_url(server)
    client = native_client(discovery)
    path = tmp_path / "session.json"

    # Process 1: the app opens the browser and is gone.
    before = int(time.time())
    url = run_app("begin", discovery, str(path))["url"]
    after = int(time.time())
    q = query_params(url)
    assert url.startswith(server.metadata["authorization_endpoint"] + "?"), url
    assert (q["client_id"], q["redirect_uri"], q["response_type"], q["code_challenge_method"]) == (
        NATIVE_CLIENT, NATIVE_REDIRECT, "code", "S256")
    assert q["scope"].split() == NATIVE_SCOPES
    # What survives it is the file: the pending request and nothing else.
    assert path.stat().st_mode & 0o777 == 0o600
    doc = stored(path)
    assert set(doc) == {"v", "pending"} and doc["v"] == 2
    pending = doc["pending"]
    assert (pending["state"], pending["nonce"], pending["redirect_uri"]) == (q["state"], q["nonce"], NATIVE_REDIRECT)
    assert b64url(hashlib.sha256(pending["code_verifier"].encode()).digest()) == q["code_challenge"]
    assert before + 600 <= pending["expires_at"] <= after + 600

    # The browser signs in and is sent to the app's private-use redirect.
    browser = requests.Session()
    email = new_email()
    result = login(server, url, email, browser)
    callback = result.callback_url
    assert callback.startswith(NATIVE_REDIRECT + "?"), callback
    assert result.params["state"] == q["state"] and result.params["iss"] == server.issuer and result.params["code"]

    # Process 2: the OS starts the app again with the callback.
    out = run_app("complete", discovery, str(path), callback)
    session = out["session"]
    claims = session["claims"]
    assert (claims["email"], claims["iss"], claims["aud"], claims["nonce"]) == (email, server.issuer, NATIVE_CLIENT, q["nonce"])
    assert out["access_token"] == session["access_token"]  # fresh: not refreshed
    assert client.userinfo(out["access_token"]) == client.userinfo(session["access_token"])
    assert client.userinfo(out["access_token"])["email"] == email
    assert stored(path) == {"v": 2, "session": session}  # the pending request is spent

    # The same callback again, here and in another process: refused, storage untouched.
    manager = idflow.SessionManager(client, FileStorage(path))
    text = path.read_bytes()
    with pytest.raises(idflow.OAuthError) as e:
        manager.complete(callback)
    assert e.value.code == "invalid_request"
    assert path.read_bytes() == text
    assert run_app("complete", discovery, str(path), callback, returncode=3)["error"]["code"] == "invalid_request"
    assert path.read_bytes() == text

    # This process carries on with the session process 2 stored.
    events: list[dict] = []
    manager.set_listener(events.append)
    assert manager.session() == session
    refreshed = manager.refresh()
    assert refreshed["refresh_token"] != session["refresh_token"]
    assert refreshed["access_token"] != session["access_token"]
    assert refreshed["claims"]["sub"] == claims["sub"]
    assert events == [{"type": "refreshed", "session": refreshed}]
    assert client.userinfo(refreshed["access_token"])["email"] == email
    assert stored(path) == {"v": 2, "session": refreshed}

    # Sign-out revokes the refresh token and clears the file.
    manager.sign_out()
    assert not path.exists()
    assert manager.status() == "signed_out"
    assert events[1:] == [{"type": "signedOut", "reason": "user", "message": "signed out"}]
    with pytest.raises(idflow.OAuthError) as e:
        client.refresh(refreshed["refresh_token"])
    assert e.value.code == "invalid_grant"

    # The browser's provider session outlives the app's sign-out: a
    # prompt=none request is answered with a code.
    silent = client.authorization_request(prompt="none")
    r = browser.get(silent["url"], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302 and r.headers["Location"].startswith(NATIVE_REDIRECT + "?"), r.headers
    assert "code" in query_params(r.headers["Location"]), r.headers["Location"]

    # RP-initiated logout back to the app's private-use URI. An unregistered
    # one is refused with an error page, so the redirect below is a real check.
    hint = session["id_token"]
    assert idflow.jwt.decode_unverified(hint)["claims"]["sid"]  # proves the browser session it came from
    unregistered = client.end_session_url(hint, "com.example.app:/elsewhere")
    r = browser.get(unregistered, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 400 and "post_logout_redirect_uri is not registered" in r.text, (r.status_code, r.text[:300])
    state = secrets.token_urlsafe(8)
    logout = client.end_session_url(hint, SIGNED_OUT_URI, state)
    assert logout.startswith(server.metadata["end_session_endpoint"] + "?")
    assert query_params(logout) == {"client_id": NATIVE_CLIENT, "id_token_hint": hint,
                                    "post_logout_redirect_uri": SIGNED_OUT_URI, "state": state}
    r = browser.get(logout, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"] == f"{SIGNED_OUT_URI}?state={state}"
    assert "idflow_session=;" in r.headers.get("Set-Cookie", "")
    # The provider session is over: prompt=none now needs a login.
    silent = client.authorization_request(prompt="none")
    r = browser.get(silent["url"], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302 and r.headers["Location"].startswith(NATIVE_REDIRECT + "?"), r.headers
    assert query_params(r.headers["Location"])["error"] == "login_required"


def _recv(conn, what: str):
    assert conn.poll(120), f"no answer from {what}"
    return conn.recv()


def test_refresh_races_between_two_processes_rotate_once(server, tmp_path):
    discovery = discovery_url(server)
    client = native_client(discovery)
    path = tmp_path / "session.json"
    lock = tmp_path / "session.lock"
    email = new_email()
    first = sign_in(server, client, path, email)

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    workers = []
    try:
        for name in ("A", "B"):
            conn, child = ctx.Pipe()
            p = ctx.Process(target=native_app_process.race_worker, args=(name, discovery, str(path), str(lock), barrier, child), daemon=True)
            p.start()
            child.close()
            workers.append((name, p, conn))
        for name, _, conn in workers:
            assert _recv(conn, name) == ("ready", first)

        previous = first
        tokens = {first["refresh_token"]}
        overlapping = 0
        for round_ in range(ROUNDS):
            for _, _, conn in workers:
                conn.send("refresh")
            a, b = (_recv(conn, name) for name, _, conn in workers)
            assert a["ok"] and b["ok"], (round_, a, b)
            s = a["session"]
            assert b["session"] == s, round_
            # Exactly one rotation: a new refresh token, never seen before.
            assert s["refresh_token"] not in tokens, round_
            tokens.add(s["refresh_token"])
            assert s["access_token"] != previous["access_token"]
            # One refreshed, the other adopted what it stored: both hear it once.
            assert a["events"] == b["events"] == [{"type": "refreshed", "session": s}], (round_, a["events"], b["events"])
            assert stored(path) == {"v": 2, "session": s}
            assert client.userinfo(s["access_token"])["email"] == email
            if a["start"] < b["end"] and b["start"] < a["end"]:
                overlapping += 1
            previous = s
        for _, _, conn in workers:
            conn.send("stop")
        for name, p, _ in workers:
            p.join(30)
            assert p.exitcode == 0, (name, p.exitcode)
    finally:
        for _, p, _ in workers:
            if p.is_alive():
                p.kill()
                p.join(10)
    # The calls did run at the same time (released together by the barrier).
    assert overlapping >= ROUNDS // 2, f"only {overlapping} of {ROUNDS} rounds overlapped"
    assert len(tokens) == ROUNDS + 1
    # Grace 0 really rotates: a spent token revokes the family, the live one with it.
    with pytest.raises(idflow.OAuthError) as e:
        client.refresh(first["refresh_token"])
    assert e.value.code == "invalid_grant"
    with pytest.raises(idflow.OAuthError) as e:
        client.refresh(previous["refresh_token"])
    assert e.value.code == "invalid_grant"


@pytest.fixture(scope="module")
def grace_server(tmp_path_factory):
    """`idflow serve` with a copy of project.json where
    tokens.refreshReuseGrace is 30 s (its flow paths made absolute)."""
    doc = json.loads(PROJECT.read_text(encoding="utf-8"))
    assert "refreshReuseGrace" not in doc["tokens"]  # the main server runs with the default, 0
    doc["tokens"]["refreshReuseGrace"] = 30
    doc["flows"] = [str((E2E / f).resolve()) if isinstance(f, str) else f for f in doc["flows"]]
    project = tmp_path_factory.mktemp("grace-project") / "project.json"
    project.write_text(json.dumps(doc), encoding="utf-8")
    srv = start_server(tmp_path_factory, project, "idflow-grace")
    yield srv
    stop_server(srv)


def test_killed_mid_refresh_recovers_within_the_grace(grace_server, tmp_path):
    discovery = discovery_url(grace_server)
    client = native_client(discovery)
    path = tmp_path / "session.json"
    email = new_email()
    session = sign_in(grace_server, client, path, email)

    # The app sends the refresh, the provider answers, the app is killed before it saves.
    lost = run_app("refresh-killed", discovery, session["refresh_token"], returncode=-9)["tokens"]
    assert lost["refresh_token"] != session["refresh_token"]
    assert stored(path)["session"]["refresh_token"] == session["refresh_token"]

    # The app starts again: its spent refresh token gets the lost answer again.
    manager = idflow.SessionManager(client, FileStorage(path))
    events: list[dict] = []
    manager.set_listener(events.append)
    again = manager.refresh()
    assert again["refresh_token"] == lost["refresh_token"]
    assert (again["access_token"], again["id_token"]) == (lost["access_token"], lost["id_token"])
    assert events == [{"type": "refreshed", "session": again}]
    assert stored(path) == {"v": 2, "session": again}
    assert client.userinfo(again["access_token"])["email"] == email
    # ... and the family lives on: the next refresh rotates as usual.
    nxt = manager.refresh()
    assert nxt["refresh_token"] not in (session["refresh_token"], lost["refresh_token"])
    assert client.userinfo(nxt["access_token"])["email"] == email
    assert stored(path) == {"v": 2, "session": nxt}


def test_killed_mid_refresh_without_grace_signs_out(server, tmp_path):
    """The same crash with the default grace (0): the retry is a reuse, the
    provider revokes the family and the manager signs out."""
    discovery = discovery_url(server)
    client = native_client(discovery)
    path = tmp_path / "session.json"
    session = sign_in(server, client, path, new_email())
    lost = run_app("refresh-killed", discovery, session["refresh_token"], returncode=-9)["tokens"]
    manager = idflow.SessionManager(client, FileStorage(path))
    events: list[dict] = []
    manager.set_listener(events.append)
    with pytest.raises(idflow.OAuthError) as e:
        manager.refresh()
    assert e.value.code == "invalid_grant"
    assert [(x["type"], x["reason"]) for x in events] == [("signedOut", "refresh_refused")]
    assert not path.exists() and manager.session() is None
    with pytest.raises(idflow.OAuthError) as e:
        client.refresh(lost["refresh_token"])
    assert e.value.code == "invalid_grant"
