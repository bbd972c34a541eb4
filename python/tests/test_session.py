"""idflow.SessionManager against idflow's own provider over loopback HTTP:
sign-in, persistence, one refresh for concurrent callers, invalid_grant
signs out, storage failures that lose nothing, and the asyncio twins."""

import asyncio
import json
import threading

import pytest

import idflow
from conftest import load_vectors
from _op import CB, _Handler, browse, op  # noqa: F401 (op is a fixture)


def _client(discovery: str) -> idflow.OidcClient:
    return idflow.OidcClient.discover(discovery, client_id="e2e", redirect_uri=CB, scopes=["openid", "email", "offline_access"])


def _sign_in(provider, manager, client, email):
    request = client.authorization_request()
    return manager.complete(browse(provider, request["url"], email), request)


class FlakyStorage(idflow.MemoryStorage):
    broken = False
    saves = 0

    def save(self, session: str) -> None:
        if self.broken:
            raise OSError("keyring locked")
        self.saves += 1
        super().save(session)


def test_sign_in_restore_and_one_refresh_for_concurrent_callers(op, monkeypatch):
    provider, discovery = op
    monkeypatch.setattr(_Handler, "refresh_delay", 0.3)
    client = _client(discovery)
    storage = idflow.MemoryStorage()
    manager = idflow.SessionManager(client, storage, refresh_margin=86400)
    assert manager.status() == "signed_out"
    with pytest.raises(idflow.OAuthError) as e:
        manager.access_token()
    assert e.value.code == "login_required"
    session = _sign_in(provider, manager, client, "py-session@example.com")
    assert session["claims"]["email"] == "py-session@example.com"
    assert set(session) == set(load_vectors("result_shapes.json")["session"]), "the fields of every binding's session"
    assert manager.status() == "valid" and manager.is_valid()
    assert session["refresh_token"] in storage.value
    # Eight threads at once (the provider holds refreshes for 0.3 s): one
    # refresh. A second one would reuse the rotated token, and the provider
    # would end the whole session.
    out: list[str] = []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        out.append(manager.access_token())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 8 and len(set(out)) == 1 and out[0] != session["access_token"]
    assert client.userinfo(out[0])["email"] == "py-session@example.com"
    # The app restarts over the same storage.
    again = idflow.SessionManager(client, storage)
    assert again.session()["access_token"] == out[0]
    assert again.access_token() == out[0]


def test_invalid_grant_signs_out_and_sign_out_revokes(op):
    provider, discovery = op
    client = _client(discovery)
    storage = idflow.MemoryStorage()
    manager = idflow.SessionManager(client, storage, refresh_margin=86400)
    session = _sign_in(provider, manager, client, "py-revoked@example.com")
    client.revoke(session["refresh_token"], "refresh_token")
    with pytest.raises(idflow.OAuthError) as e:
        manager.access_token()
    assert e.value.code == "invalid_grant"
    assert storage.value is None and manager.session() is None
    session = _sign_in(provider, manager, client, "py-bye@example.com")
    manager.sign_out()
    assert storage.value is None and manager.status() == "signed_out"
    with pytest.raises(idflow.OAuthError) as e:
        client.refresh(session["refresh_token"])
    assert e.value.code == "invalid_grant"


def test_storage_failures_lose_nothing(op):
    provider, discovery = op
    client = _client(discovery)
    storage = FlakyStorage()
    manager = idflow.SessionManager(client, storage, refresh_margin=86400)
    first = _sign_in(provider, manager, client, "py-flaky@example.com")
    storage.broken = True
    with pytest.raises(idflow.StorageError) as e:
        manager.refresh()
    assert e.value.code == "storage" and "keyring locked" in e.value.message
    storage.broken = False
    held = manager.session()
    assert held["refresh_token"] != first["refresh_token"]
    assert json.loads(storage.value)["session"]["refresh_token"] == held["refresh_token"]
    manager.refresh()  # the held refresh token is the live one
    # Unreadable storage and bad settings are clear errors.
    junk = idflow.SessionManager(client, idflow.MemoryStorage("not json"))
    with pytest.raises(idflow.StorageError):
        junk.access_token()
    with pytest.raises(idflow.ConfigError):
        idflow.SessionManager(client, storage, refresh_margin=-1)


def test_asyncio_twins(op, monkeypatch):
    provider, discovery = op
    monkeypatch.setattr(_Handler, "refresh_delay", 0.3)
    client = _client(discovery)

    async def main():
        storage = idflow.MemoryStorage()
        manager = idflow.SessionManager(client, storage, refresh_margin=86400)
        request = client.authorization_request()
        callback = await asyncio.to_thread(browse, provider, request["url"], "py-async@example.com")
        session = await manager.complete_async(callback, request)
        assert await manager.status_async() == "valid"
        tokens = await asyncio.gather(*(manager.access_token_async() for _ in range(8)))
        assert len(set(tokens)) == 1 and tokens[0] != session["access_token"]
        assert (await manager.session_async())["access_token"] == tokens[0]
        assert await manager.is_valid_async()
        await manager.refresh_async()
        await manager.sign_out_async()
        assert storage.value is None

    asyncio.run(main())


def _load_example(name: str):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "flask" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"idflow_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_session_manager_snippet(op, tmp_path):
    provider, discovery = op
    example = _load_example("session_manager")
    path = tmp_path / "session.json"
    client, manager = example.session_manager(discovery, "e2e", CB, path)
    session = example.sign_in(manager, client, lambda url: browse(provider, url, "snippet@example.com"))
    assert session["claims"]["email"] == "snippet@example.com"
    assert path.stat().st_mode & 0o777 == 0o600
    header = example.call_api(manager)
    assert header == f"Bearer {session['access_token']}"
    # The app starts again: the file holds the session.
    _, again = example.session_manager(discovery, "e2e", CB, path)
    assert again.is_valid() and example.call_api(again) == header
    again.sign_out()
    assert not path.exists()


def test_the_readme_social_login_snippet(op):
    pytest.importorskip("flask")
    upstream, discovery = op
    example = _load_example("social_login")
    project = {
        "projectId": "snippet",
        "baseUrl": "http://127.0.0.1:7001",
        "redirectUrls": ["http://127.0.0.1:7001"],
        "oauthProviders": [
            {"name": "acme", "clientId": "social-rp", "clientSecret": "social-rp-secret-0123456789",
             "discoveryUrl": discovery, "scopes": ["openid", "email", "profile"]}
        ],
    }
    app = example.create_app(json.dumps(project), app_url="http://127.0.0.1:7001", secret_key="test-only")
    web = app.test_client()
    r = web.get("/login/acme")
    assert r.status_code == 302 and r.headers["Location"].startswith(upstream.issuer.rsplit("/", 1)[0])
    callback = browse(upstream, r.headers["Location"], "snippet-social@example.com")
    assert callback.startswith("http://127.0.0.1:7001/v1/oauth/callback?")
    r = web.get(callback.removeprefix("http://127.0.0.1:7001"))
    assert r.status_code == 302 and "/after-login?code=" in r.headers["Location"]
    after = r.headers["Location"].removeprefix("http://127.0.0.1:7001")
    # Another browser (no session, so no verifier) cannot spend the code.
    assert app.test_client().get(after).status_code == 400
    r = web.get(after)
    assert r.status_code == 200, r.text
    user = r.get_json()["user"]
    assert user["email"] == "snippet-social@example.com" and user["loginIds"][0].startswith("acme:")
