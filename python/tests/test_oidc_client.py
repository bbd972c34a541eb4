"""idflow.OidcClient against a real OP on 127.0.0.1: idflow.Provider mounted
in a stdlib HTTP server, reached over loopback sockets (sync and asyncio)."""

import asyncio
import json
import urllib.parse

import pytest

import idflow
from conftest import load_vectors
from _op import CB, E2E, browse, op  # noqa: F401 (op is a fixture)


def test_discovery_code_flow_refresh_revoke_and_logout(op):
    provider, discovery = op
    client = idflow.OidcClient.discover(discovery, client_id="e2e", redirect_uri=CB, scopes=["openid", "email", "offline_access"])
    assert client.endpoints["issuer"] == provider.issuer
    request = client.authorization_request(params={"access_type": "offline"}, login_hint="py-rp@example.com")
    assert "code_challenge_method=S256" in request["url"] and request["code_verifier"]
    callback = browse(provider, request["url"], "py-rp@example.com")
    tokens = client.handle_callback(callback, request)
    assert tokens["token_type"] == "Bearer" and tokens["claims"]["email"] == "py-rp@example.com"
    assert tokens["claims"]["nonce"] == request["nonce"]
    with pytest.raises(idflow.OAuthError) as e:
        client.handle_callback(callback, request)  # the code is spent
    assert e.value.code == "invalid_grant"
    request = client.authorization_request()
    tokens = client.handle_callback(browse(provider, request["url"], "py-rp@example.com"), request)
    assert client.userinfo(tokens["access_token"])["sub"] == tokens["claims"]["sub"]
    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    client.revoke(refreshed["refresh_token"], "refresh_token")
    with pytest.raises(idflow.OAuthError) as e:
        client.refresh(refreshed["refresh_token"])
    assert e.value.code == "invalid_grant"
    url = client.end_session_url(tokens["id_token"], "http://127.0.0.1/logged-out", "bye")
    assert provider.handle("GET", url).header("location") == "http://127.0.0.1/logged-out?state=bye"


def test_asyncio_and_confidential_clients(op):
    provider, discovery = op
    key = idflow.Key.from_jwk((E2E / "partner-key.json").read_text())

    async def main():
        results = []
        for kwargs in (
            {"client_id": "web", "redirect_uri": "http://127.0.0.1/cb", "client_secret": "web-secret-0123456789abcdef"},
            {"client_id": "web-post", "redirect_uri": "http://127.0.0.1/cb", "client_secret": "post-secret-0123456789abcdef", "client_auth": "client_secret_post"},
            {"client_id": "partner", "redirect_uri": "http://127.0.0.1/partner/cb", "private_key": key},
        ):
            client = await idflow.OidcClient.discover_async(discovery, **kwargs)
            request = client.authorization_request()
            callback = await asyncio.to_thread(browse, provider, request["url"], "py-conf@example.com")
            tokens = await client.handle_callback_async(callback, request)
            info = await client.userinfo_async(tokens["access_token"])
            results.append((kwargs["client_id"], tokens["claims"]["aud"], info["sub"] == tokens["claims"]["sub"]))
        return results

    assert asyncio.run(main()) == [("web", "web", True), ("web-post", "web-post", True), ("partner", "partner", True)]


def test_callback_and_configuration_errors(op):
    provider, discovery = op
    client = idflow.OidcClient.discover(discovery, client_id="e2e", redirect_uri=CB)
    request = client.authorization_request()
    with pytest.raises(idflow.OAuthError) as e:
        client.parse_callback(f"{CB}?code=x&state=other", request["state"])
    assert e.value.code == "invalid_request" and "state" in e.value.message
    with pytest.raises(idflow.OAuthError) as e:
        client.parse_callback(f"?error=access_denied&state={request['state']}", request["state"])
    assert e.value.code == "access_denied"
    assert client.parse_callback(f"code=abc&state={request['state']}", request["state"])["code"] == "abc"
    silent = client.authorization_request(prompt="none")
    with pytest.raises(idflow.OAuthError) as e:
        client.handle_callback(browse(provider, silent["url"], "x@example.com"), silent)
    assert e.value.code == "login_required"
    with pytest.raises(idflow.TokenError) as e:
        idflow.OidcClient.discover(discovery, client_id="e2e", redirect_uri=CB, issuer="https://other.example")
    assert e.value.code == "invalid_issuer"
    with pytest.raises(idflow.NetworkError):
        idflow.OidcClient.discover("http://127.0.0.1:9/.well-known/openid-configuration", client_id="e2e", redirect_uri=CB, timeout=2)
    with pytest.raises(idflow.ConfigError) as e:
        idflow.OidcClient(client_id="e2e", redirect_uri=CB, endpoints={"token_endpoint": "http://x/t"})
    assert "authorizationEndpoint" in e.value.message
    with pytest.raises(idflow.ConfigError):
        idflow.OidcClient(client_id="e2e", redirect_uri=CB, endpoints={"authorization_endpoint": "http://x/a", "token_endpoint": "http://x/t"}, client_auth="client_secret_post")
    with pytest.raises(idflow.OAuthError):
        client.authorization_request(prompt="sometimes")


def test_hand_configured_endpoints_without_jwks_use_userinfo(op):
    provider, discovery = op
    base = provider.issuer.rsplit("/", 1)[0]
    client = idflow.OidcClient(
        client_id="e2e",
        redirect_uri=CB,
        scopes=["openid", "email"],
        endpoints={
            "issuer": provider.issuer,
            "authorization_endpoint": f"{base}/oauth2/v1/authorize",
            "token_endpoint": f"{base}/oauth2/v1/token",
            "userinfo_endpoint": f"{base}/oauth2/v1/userinfo",
        },
    )
    request = client.authorization_request()
    tokens = client.handle_callback(browse(provider, request["url"], "ui-py@example.com"), request)
    assert tokens["claims"]["email"] == "ui-py@example.com" and "nonce" not in tokens["claims"]


def test_complete_callback_without_network():
    key = idflow.Key.generate("ES256")
    keys = idflow.KeySet([key.public_key()])
    client = idflow.OidcClient(
        client_id="rp",
        redirect_uri="https://rp.example/cb",
        endpoints={"issuer": "https://op.example", "authorization_endpoint": "https://op.example/a", "token_endpoint": "https://op.example/t"},
    )
    request = client.authorization_request()
    import time

    now = int(time.time())
    claims = {"iss": "https://op.example", "sub": "u1", "aud": "rp", "iat": now, "exp": now + 300, "nonce": request["nonce"]}
    body = json.dumps({"access_token": "at", "token_type": "Bearer", "id_token": idflow.jwt.sign(claims, key)}).encode()
    callback = f"https://rp.example/cb?code=c&state={request['state']}"
    tokens = client.complete_callback(callback, request, 200, body, keys)
    assert tokens["claims"]["sub"] == "u1"
    # The same fields as every other binding (tests/vectors/result_shapes.json).
    shapes = load_vectors("result_shapes.json")
    assert set(client.parse_callback(callback, request["state"])) == set(shapes["callback"])
    full = json.dumps(
        {"access_token": "at", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt", "scope": "openid", "id_token": idflow.jwt.sign(claims, key)}
    ).encode()
    assert set(client.complete_callback(callback, request, 200, full, keys)) == set(shapes["token_set"])
    claims["nonce"] = "other"
    bad = json.dumps({"access_token": "at", "token_type": "Bearer", "id_token": idflow.jwt.sign(claims, key)}).encode()
    with pytest.raises(idflow.TokenError) as e:
        client.complete_callback(callback, request, 200, bad, keys)
    assert e.value.code == "invalid_token"
    with pytest.raises(idflow.OAuthError) as e:
        client.complete_callback(callback, request, 400, b'{"error":"invalid_grant"}', keys)
    assert e.value.code == "invalid_grant"


AFTER = "http://127.0.0.1:7000/after"


def downstream(discovery: str, **provider) -> idflow.Provider:
    doc = {
        "projectId": "down",
        "baseUrl": "http://127.0.0.1:9999",
        "redirectUrls": [AFTER],
        "oauthProviders": [
            {"name": "acme", "clientId": "social-rp", "clientSecret": "social-rp-secret-0123456789", "discoveryUrl": discovery,
             "scopes": ["openid", "email", "profile"], "mergeUsersByEmail": True, **provider},
        ],
    }
    return idflow.Provider(json.dumps(doc))


def test_social_login_by_api(op):
    upstream, discovery = op
    down = downstream(discovery, manageProviderTokens=True)
    start = down.oauth_authorize("acme", redirect_url=AFTER)
    assert isinstance(start, idflow.OAuthStart) and len(start.code_verifier) >= 43
    assert start.code_verifier not in start.url and start.code_verifier not in repr(start)
    callback = browse(upstream, start.url, "social-py@example.com")
    back = down.handle("GET", callback)
    assert back.status == 302 and back.header("location").startswith(AFTER + "?code=")
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back.header("location")).query))["code"]
    info = down.oauth_exchange(code, start.code_verifier)
    assert info["user"]["email"] == "social-py@example.com" and "social-py@example.com" in info["user"]["loginIds"]
    assert info["user"]["loginIds"][0].startswith("acme:")
    kept = down.provider_token(info["user"]["userId"], "acme")
    assert upstream.handle("GET", "/oauth2/v1/userinfo", {"Authorization": "Bearer " + kept["accessToken"]}).status == 200
    with pytest.raises(idflow.FlowError) as e:
        down.provider_token("U-nobody", "acme")
    assert e.value.code == "user_not_found"
    with pytest.raises(idflow.OAuthError) as e:
        down.oauth_exchange(code, start.code_verifier)
    assert e.value.code == "invalid_grant"
    # Another verifier (a stolen code) gets nothing, and spends the code.
    other = down.oauth_authorize("acme", redirect_url=AFTER)
    back = down.handle("GET", browse(upstream, other.url, "social-py@example.com"))
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back.header("location")).query))["code"]
    with pytest.raises(idflow.OAuthError) as e:
        down.oauth_exchange(code, start.code_verifier)
    assert e.value.code == "invalid_grant"
    with pytest.raises(idflow.OAuthError) as e:
        down.oauth_exchange(code, other.code_verifier)
    assert e.value.code == "invalid_grant"
    # Only approved redirect URLs.
    with pytest.raises(idflow.OAuthError) as e:
        down.oauth_authorize("acme", redirect_url="https://attacker.example/after")
    assert e.value.code == "invalid_request" and "redirectUrls" in e.value.message

    async def begin():
        return await down.oauth_authorize_async("acme", redirect_url=AFTER, prompt=["none"])

    silent = asyncio.run(begin())
    assert isinstance(silent, idflow.OAuthStart)
    back = down.handle("GET", browse(upstream, silent.url, "x@example.com"))
    assert "error=login_required" in back.header("location")
    only = downstream(discovery, triggerMethod="flowsOnly")
    with pytest.raises(idflow.OAuthError) as e:
        only.oauth_authorize("acme", redirect_url=AFTER)
    assert e.value.code == "access_denied"
    with pytest.raises(idflow.ConfigError) as e:
        downstream(discovery, emailHandling="sometimes")
    assert "emailHandling" in e.value.message
