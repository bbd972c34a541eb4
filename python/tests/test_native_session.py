"""idflow.SessionManager's native-app features, offline: begin/complete
with the pending request kept in the storage, the listener, storage
failures and formats, options, and RFC 8252 redirect URI rules. The
client's endpoints are on 127.0.0.1:9 (nothing listens: connection refused),
so the only network call, the code exchange, fails with `network`."""

import asyncio
import base64
import hashlib
import json
import sys
import time
import urllib.parse

import pytest

import idflow

DEAD = "http://127.0.0.1:9"
REDIRECT = "com.example.app:/oauth2redirect"
ENDPOINTS = {
    "issuer": DEAD,
    "authorization_endpoint": f"{DEAD}/authorize",
    "token_endpoint": f"{DEAD}/token",
    "end_session_endpoint": f"{DEAD}/logout",
}
TOKENS = {"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1", "expires_in": 3600}


def _client(redirect_uri: str = REDIRECT) -> idflow.OidcClient:
    return idflow.OidcClient(client_id="native", redirect_uri=redirect_uri, endpoints=ENDPOINTS,
                             scopes=["openid", "offline_access"], timeout=5)


def _query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def _callback(state: str, code: str = "the-code") -> str:
    return f"{REDIRECT}?" + urllib.parse.urlencode({"code": code, "state": state, "iss": DEAD})


class Storage(idflow.MemoryStorage):
    """MemoryStorage whose load can be made to fail (a keychain before first unlock)."""

    locked = False
    loads = 0

    def load(self):
        self.loads += 1
        if self.locked:
            raise OSError("keychain locked")
        return super().load()


def _signed_in(storage) -> dict:
    """A session in `storage` (no jwks_uri: the tokens are taken as given)."""
    return idflow.SessionManager(_client(), storage).sign_in(TOKENS)


def test_begin_keeps_the_pending_request_in_the_storage():
    storage = idflow.MemoryStorage()
    session = _signed_in(storage)
    manager = idflow.SessionManager(_client(), storage, pending_ttl=120)
    before = int(time.time())
    url = manager.begin(login_hint="ada@example.com", params={"ui_locales": "fr"})
    after = int(time.time())
    q = _query(url)
    assert url.startswith(f"{DEAD}/authorize?")
    assert (q["client_id"], q["redirect_uri"], q["response_type"], q["scope"]) == ("native", REDIRECT, "code", "openid offline_access")
    assert (q["code_challenge_method"], q["login_hint"], q["ui_locales"]) == ("S256", "ada@example.com", "fr")
    doc = json.loads(storage.value)
    # The session stays; the pending request sits next to it.
    assert set(doc) == {"v", "session", "pending"} and doc["v"] == 2
    assert doc["session"]["refresh_token"] == session["refresh_token"] == "rt-1"
    pending = doc["pending"]
    assert set(pending) == {"state", "nonce", "code_verifier", "redirect_uri", "expires_at"}
    assert (pending["state"], pending["nonce"], pending["redirect_uri"]) == (q["state"], q["nonce"], REDIRECT)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(pending["code_verifier"].encode()).digest()).rstrip(b"=").decode()
    assert challenge == q["code_challenge"]
    assert before + 120 <= pending["expires_at"] <= after + 120
    # A newer begin replaces it.
    q2 = _query(manager.begin())
    assert q2["state"] != q["state"]
    assert json.loads(storage.value)["pending"]["state"] == q2["state"]


def test_complete_uses_the_stored_pending_request_once():
    storage = idflow.MemoryStorage()
    session = _signed_in(storage)
    state = _query(idflow.SessionManager(_client(), storage).begin())["state"]
    kept = storage.value
    # Another manager (as in the process the OS starts with the callback).
    other = idflow.SessionManager(_client(), storage)
    for forged in (_callback("forged-state"), f"{REDIRECT}?code=c", _callback(state[:-1])):
        with pytest.raises(idflow.OAuthError) as e:
            other.complete(forged)
        assert e.value.code == "invalid_request", forged
        assert "state" in e.value.message
        assert storage.value == kept
    # The right state: the pending request is spent before the code
    # exchange, which cannot reach the provider.
    with pytest.raises(idflow.NetworkError) as e:
        other.complete(_callback(state))
    assert e.value.code == "network"
    doc = json.loads(storage.value)
    assert doc == {"v": 2, "session": json.loads(kept)["session"]}
    assert other.session() == session
    with pytest.raises(idflow.OAuthError) as e:
        other.complete(_callback(state))
    assert e.value.code == "invalid_request" and "no sign-in is pending" in e.value.message
    assert json.loads(storage.value) == doc


def test_complete_without_anything_stored_and_after_expiry():
    storage = idflow.MemoryStorage()
    manager = idflow.SessionManager(_client(), storage, pending_ttl=1)
    with pytest.raises(idflow.OAuthError) as e:
        manager.complete(_callback("any"))
    assert e.value.code == "invalid_request"
    assert storage.value is None
    state = _query(manager.begin())["state"]
    expires_at = json.loads(storage.value)["pending"]["expires_at"]
    while time.time() < expires_at + 0.05:
        time.sleep(0.1)
    with pytest.raises(idflow.OAuthError) as e:
        manager.complete(_callback(state))
    assert e.value.code == "invalid_request" and "expired" in e.value.message
    assert storage.value is None  # spent: nothing left to keep
    with pytest.raises(idflow.OAuthError) as e:
        manager.complete(_callback(state))
    assert e.value.code == "invalid_request" and "no sign-in is pending" in e.value.message


def test_a_given_request_does_not_touch_the_pending_one():
    storage = idflow.MemoryStorage()
    manager = idflow.SessionManager(_client(), storage)
    manager.begin()
    kept = storage.value
    request = _client().authorization_request()
    with pytest.raises(idflow.OAuthError) as e:
        manager.complete(_callback("forged"), request)
    assert e.value.code == "invalid_request"
    with pytest.raises(idflow.NetworkError):
        manager.complete(_callback(request["state"]), request)
    assert storage.value == kept


def test_listener_hears_storage_failures_and_the_session_survives_them():
    storage = Storage()
    session = _signed_in(storage)
    manager = idflow.SessionManager(_client(), storage)
    events = []
    manager.set_listener(events.append)
    storage.locked = True
    with pytest.raises(idflow.StorageError) as e:
        manager.session()
    assert e.value.code == "storage" and "keychain locked" in e.value.message
    assert events == [{"type": "storageFailed", "code": "storage", "message": e.value.message}]
    with pytest.raises(idflow.StorageError):
        manager.begin()
    assert len(events) == 2 and events[1]["type"] == "storageFailed"
    storage.locked = False
    assert manager.session() == session
    assert manager.access_token() == "at-1"  # not due: no refresh, no network
    assert json.loads(storage.value)["session"]["refresh_token"] == "rt-1"
    # A loaded manager whose storage fails under the refresh lock keeps its session.
    storage.locked = True
    with pytest.raises(idflow.StorageError):
        manager.refresh()
    assert events[-1]["type"] == "storageFailed" and len(events) == 3
    assert manager.session() == session
    storage.locked = False
    assert manager.access_token() == "at-1"
    assert len(events) == 3
    # Sign-out: signedOut with reason user; None stops the listener.
    manager.sign_out()
    assert events[3:] == [{"type": "signedOut", "reason": "user", "message": "signed out"}]
    assert storage.value is None
    manager.set_listener(None)
    _signed_in(storage)
    manager.sign_out()
    assert len(events) == 4


def test_a_listener_that_raises_does_not_break_the_call():
    storage = idflow.MemoryStorage()
    _signed_in(storage)
    manager = idflow.SessionManager(_client(), storage)

    def listener(event):
        raise RuntimeError(f"listener bug on {event['type']}")

    manager.set_listener(listener)
    reported = []
    hook, sys.unraisablehook = sys.unraisablehook, reported.append
    try:
        assert manager.sign_out() is None
    finally:
        sys.unraisablehook = hook
    assert storage.value is None and manager.session() is None
    assert len(reported) == 1
    assert isinstance(reported[0].exc_value, RuntimeError)
    assert str(reported[0].exc_value) == "listener bug on signedOut"


def test_a_newer_storage_format_is_refused_and_left_as_it_is():
    newer = json.dumps({"v": 99, "session": {"access_token": "from-the-future"}, "extra": [1, 2]})
    storage = idflow.MemoryStorage(newer)
    manager = idflow.SessionManager(_client(), storage)
    events = []
    manager.set_listener(events.append)
    calls = [manager.session, manager.status, manager.access_token, manager.refresh, manager.begin,
             lambda: manager.complete(_callback("x")), manager.sign_out]
    for call in calls:
        with pytest.raises(idflow.StorageError) as e:
            call()
        assert e.value.code == "storage"
        assert "format 99" in e.value.message and "newer version" in e.value.message
        assert storage.value == newer
    assert [x["type"] for x in events] == ["storageFailed"] * len(calls)


def test_sign_in_does_not_overwrite_a_newer_storage_format():
    newer = json.dumps({"v": 99, "session": {"access_token": "from-the-future"}})
    storage = idflow.MemoryStorage(newer)
    manager = idflow.SessionManager(_client(), storage)
    with pytest.raises(idflow.StorageError):
        manager.sign_in(TOKENS)
    assert storage.value == newer


def test_a_stored_version_1_session_is_read_and_written_back_as_version_2():
    storage = idflow.MemoryStorage(json.dumps({"v": 1, **TOKENS, "expires_at": int(time.time()) + 3600}))
    manager = idflow.SessionManager(_client(), storage)
    assert manager.access_token() == "at-1"
    manager.begin()
    doc = json.loads(storage.value)
    assert doc["v"] == 2 and doc["session"]["refresh_token"] == "rt-1" and "pending" in doc


def test_bad_options_are_config_errors(tmp_path):
    client = _client()
    storage = idflow.MemoryStorage()
    for options, name in [
        ({"pending_ttl": 0}, "pendingTtl"),
        ({"pending_ttl": 3601}, "pendingTtl"),
        ({"lock_path": ""}, "lockPath"),
        ({"lock_path": "session\0.lock"}, "lockPath"),
        ({"lock_timeout": -1}, "lockTimeout"),
        ({"refresh_margin": -1}, "refreshMargin"),
    ]:
        with pytest.raises(idflow.ConfigError) as e:
            idflow.SessionManager(client, storage, **options)
        assert e.value.code == "config" and name in e.value.message, options
    # The edges are fine, and a lock path is a path (str or PathLike).
    idflow.SessionManager(client, storage, pending_ttl=1, lock_timeout=0)
    idflow.SessionManager(client, storage, pending_ttl=3600, lock_path=tmp_path / "session.lock")


@pytest.mark.parametrize("name", ["pending_ttl", "refresh_margin", "lock_timeout"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_seconds_are_config_errors(name, value):
    with pytest.raises(idflow.ConfigError):
        idflow.SessionManager(_client(), idflow.MemoryStorage(), **{name: value})


def test_the_lock_file_is_created_and_an_unusable_one_is_a_storage_error(tmp_path):
    storage = idflow.MemoryStorage()
    lock = tmp_path / "session.lock"
    manager = idflow.SessionManager(_client(), storage, lock_path=str(lock))
    manager.begin()
    assert lock.is_file() and lock.stat().st_size == 0
    bad = idflow.SessionManager(_client(), storage, lock_path=str(tmp_path / "no-such-dir" / "session.lock"))
    kept = storage.value
    with pytest.raises(idflow.StorageError) as e:
        bad.begin()
    assert e.value.code == "storage" and "lock" in e.value.message
    assert storage.value == kept


ACCEPTED = [
    "com.example.app:/oauth2redirect",
    "com.example.app://callback",
    "https://app.example.com/oauth2redirect",
    "http://127.0.0.1:51004/oauth2redirect",
    "http://[::1]:61023/cb",
]
REFUSED = [
    ("javascript:alert(1)//com.example.app", "javascript: scheme"),
    ("JavaScript:alert(1)", "javascript: scheme"),
    ("data:text/html,<script>x</script>", "data: scheme"),
    ("vbscript:msgbox", "vbscript: scheme"),
    ("file:///etc/passwd", "file: scheme"),
    ("myapp:/cb", "reverse-DNS form"),
    ("com.example.app:callback", "has a path"),
    ("https://app.example/cb#frag", "no fragment"),
    ("https://user:pw@app.example/cb", "no user info"),
]


@pytest.mark.parametrize("uri", ACCEPTED)
def test_rfc_8252_redirect_uris_are_accepted(uri):
    client = _client(uri)
    assert _query(client.authorization_request()["url"])["redirect_uri"] == uri
    storage = idflow.MemoryStorage()
    url = idflow.SessionManager(_client(), storage).begin(redirect_uri=uri)
    assert _query(url)["redirect_uri"] == uri
    assert json.loads(storage.value)["pending"]["redirect_uri"] == uri
    assert _query(client.end_session_url(post_logout_redirect_uri=uri))["post_logout_redirect_uri"] == uri


@pytest.mark.parametrize("uri,rule", REFUSED)
def test_other_redirect_uris_are_refused_naming_the_rule(uri, rule):
    with pytest.raises(idflow.ConfigError) as e:
        _client(uri)
    assert e.value.code == "config" and e.value.message.startswith("redirect_uri:") and rule in e.value.message
    client = _client()
    with pytest.raises(idflow.ConfigError) as e:
        client.authorization_request(redirect_uri=uri)
    assert rule in e.value.message
    with pytest.raises(idflow.ConfigError) as e:
        client.end_session_url(post_logout_redirect_uri=uri)
    assert e.value.message.startswith("post_logout_redirect_uri:") and rule in e.value.message
    storage = idflow.MemoryStorage()
    with pytest.raises(idflow.ConfigError) as e:
        idflow.SessionManager(client, storage).begin(redirect_uri=uri)
    assert rule in e.value.message
    assert storage.value is None


def test_async_twins_of_begin_and_complete():
    async def main():
        storage = idflow.MemoryStorage()
        state = _query(await idflow.SessionManager(_client(), storage).begin_async(scopes=["openid"]))["state"]
        assert json.loads(storage.value)["pending"]["state"] == state
        other = idflow.SessionManager(_client(), storage)
        kept = storage.value
        with pytest.raises(idflow.OAuthError) as e:
            await other.complete_async(_callback("forged"))
        assert e.value.code == "invalid_request" and storage.value == kept
        with pytest.raises(idflow.NetworkError) as e:
            await other.complete_async(_callback(state))
        assert e.value.code == "network" and storage.value is None
        with pytest.raises(idflow.OAuthError) as e:
            await other.complete_async(_callback(state))
        assert e.value.code == "invalid_request"

    asyncio.run(main())
