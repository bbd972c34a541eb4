"""idflow's own Python client against `idflow serve`: the PKCE code flow
through idflow.OidcClient, and idflow.SessionManager (sign-in, restore,
refresh, sign-out on invalid_grant). Uses the wheel the python suite
installed into the same venv."""

from __future__ import annotations

import pytest

import idflow

from conftest import PUBLIC_CLIENT, PUBLIC_REDIRECT, login, new_email


def _client(server) -> idflow.OidcClient:
    return idflow.OidcClient.discover(
        f"{server.issuer}/.well-known/openid-configuration",
        client_id=PUBLIC_CLIENT,
        redirect_uri=PUBLIC_REDIRECT,
        scopes=["openid", "email", "offline_access"],
    )


def test_pkce_code_flow(server):
    client = _client(server)
    request = client.authorization_request()
    assert "code_challenge_method=S256" in request["url"]
    email = new_email()
    tokens = client.handle_callback(login(server, request["url"], email).callback_url, request)
    assert tokens["claims"]["email"] == email and tokens["claims"]["iss"] == server.issuer
    assert client.userinfo(tokens["access_token"])["sub"] == tokens["claims"]["sub"]
    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]


def test_session_manager(server):
    client = _client(server)
    storage = idflow.MemoryStorage()
    manager = idflow.SessionManager(client, storage, refresh_margin=86400)
    request = client.authorization_request()
    email = new_email()
    session = manager.complete(login(server, request["url"], email).callback_url, request)
    assert session["claims"]["email"] == email
    assert manager.status() == "valid"
    token = manager.access_token()  # due under this margin: refreshed
    assert token != session["access_token"]
    assert client.userinfo(token)["email"] == email
    again = idflow.SessionManager(client, storage)
    assert again.is_valid() and again.access_token() == token
    client.revoke(manager.session()["refresh_token"], "refresh_token")
    with pytest.raises(idflow.OAuthError) as e:
        manager.refresh()
    assert e.value.code == "invalid_grant"
    assert storage.value is None and manager.status() == "signed_out"
