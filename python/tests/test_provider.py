"""idflow.Provider: the OIDC provider mounted through ``handle``, and the
Flask example in examples/flask (a real WSGI app, driven by Flask's client)."""

import asyncio
import importlib.util
import json
import pathlib
import urllib.parse

import pytest

import idflow

ROOT = pathlib.Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"
BASE = "http://127.0.0.1:18181"
CB = "http://127.0.0.1:4567/callback"


def make_provider(**kw) -> idflow.Provider:
    return idflow.Provider((E2E / "project.json").read_text(), base_dir=str(E2E), **kw)


def query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def form(pairs: dict) -> tuple[list, bytes]:
    return [("Content-Type", "application/x-www-form-urlencoded")], urllib.parse.urlencode(pairs).encode()


def send_json(provider, path, doc, cookie=None):
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    r = provider.handle("POST", path, headers, json.dumps(doc))
    return r, json.loads(r.body)


def set_cookie(r, name):
    """`name=value` of the response's `Set-Cookie` for `name`, if any."""
    for k, v in r.headers:
        if k.lower() == "set-cookie" and v.startswith(name + "="):
            return v.split(";", 1)[0]
    return None


def login(provider, email="py@example.com", scope="openid email offline_access"):
    pair = idflow.pkce.generate()
    url = "/oauth2/v1/authorize?" + urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": "e2e",
            "redirect_uri": CB,
            "scope": scope,
            "state": "s1",
            "nonce": "n1",
            "code_challenge": pair.challenge,
            "code_challenge_method": "S256",
        }
    )
    r = provider.handle("GET", url)
    assert r.status == 302
    location = r.header("location")
    assert location.startswith(f"{BASE}/login/e2e?flow=sign-up-or-in&request=")
    # The request is bound to this browser: its answer is delivered only where the cookie comes back.
    browser = set_cookie(r, "idflow_browser")
    assert browser and "HttpOnly" in r.header("set-cookie")
    request_id = query(location)["request"]
    _, started = send_json(provider, "/v1/flow/start", {"flowId": "sign-up-or-in", "request": request_id}, browser)
    assert started["status"] == "waiting" and started["executionSecret"]
    step = {"executionId": started["executionId"], "stepId": started["stepId"], "interactionId": "submit", "input": {"email": email}}
    # The execution id alone does not drive someone else's execution.
    denied, body = send_json(provider, "/v1/flow/next", step)
    assert denied.status == 403 and body["error"]["code"] == "access_denied"
    done, body = send_json(provider, "/v1/flow/next", {**step, "executionSecret": started["executionSecret"]})
    assert body["status"] == "completed", body
    complete = body["redirect"]["url"]
    assert complete.startswith(f"{BASE}/oauth2/v1/authorize/complete?id=")
    assert provider.handle("GET", complete).status == 403  # another browser
    delivered = provider.handle("GET", complete, {"Cookie": browser})
    assert delivered.status == 302 and set_cookie(delivered, "idflow_session")
    redirect = query(delivered.header("location"))
    assert delivered.header("location").startswith(CB + "?")
    assert redirect["state"] == "s1" and redirect["iss"] == provider.issuer
    assert provider.handle("GET", complete, {"Cookie": browser}).status == 400  # one time
    return redirect["code"], pair.verifier


def redeem(provider, code, verifier):
    headers, body = form(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": CB, "client_id": "e2e", "code_verifier": verifier}
    )
    r = provider.handle("POST", "/oauth2/v1/token", headers, body)
    return r, json.loads(r.body)


def test_code_flow_through_handle():
    provider = make_provider()
    assert provider.issuer == f"{BASE}/e2e"
    r = provider.handle("GET", f"{BASE}/e2e/.well-known/openid-configuration")
    assert r.status == 200 and json.loads(r.body)["issuer"] == provider.issuer
    assert provider.discovery()["code_challenge_methods_supported"] == ["S256"]
    jwks = idflow.KeySet.from_jwks(json.loads(provider.handle("GET", "/e2e/.well-known/jwks.json").body))
    code, verifier = login(provider)
    r, tokens = redeem(provider, code, verifier)
    assert r.status == 200 and r.header("cache-control") == "no-store"
    claims = idflow.jwt.verify(tokens["id_token"], jwks, algorithms=["RS256"], issuer=provider.issuer, audience=["e2e"])
    assert claims["nonce"] == "n1" and "email" not in claims  # scope claims are at userinfo (OIDC Core §5.4)
    info = provider.handle("GET", "/oauth2/v1/userinfo", [("Authorization", "Bearer " + tokens["access_token"])])
    assert json.loads(info.body)["sub"] == claims["sub"]
    assert json.loads(info.body)["email"] == "py@example.com"
    # A replayed code is refused and revokes what it issued.
    r, err = redeem(provider, code, verifier)
    assert r.status == 400 and err["error"] == "invalid_grant"
    info = provider.handle("GET", "/oauth2/v1/userinfo", {"Authorization": "Bearer " + tokens["access_token"]})
    assert info.status == 401 and 'error="invalid_token"' in info.header("WWW-Authenticate")
    # The metrics, read by the Prometheus project's own OpenMetrics parser.
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(provider.metrics())
        for s in family.samples
    }
    assert samples[("idflow_tokens_issued_total", (("grant", "authorization_code"),))] == 1
    assert samples[("idflow_http_requests_total", (("route", "token"), ("status", "400")))] == 1
    assert samples[("idflow_http_requests_total", (("route", "userinfo"), ("status", "401")))] == 1
    assert samples[("idflow_flow_answers_total", (("outcome", "completed"),))] == 1
    # Every store call is timed, by operation (the code is one record).
    assert samples[("idflow_store_operation_duration_seconds_count", (("op", "put_record"),))] >= 1


def test_keys_rotate_without_a_restart():
    provider = make_provider()
    jwks = lambda: [k["kid"] for k in json.loads(provider.handle("GET", "/e2e/.well-known/jwks.json").body)["keys"]]
    [old] = jwks()

    def token_kid():
        headers, body = form({"grant_type": "client_credentials"})
        headers.append(("Authorization", "Basic " + __import__("base64").b64encode(b"K-reporting:reporting-secret-0123456789").decode()))
        t = json.loads(provider.handle("POST", "/oauth2/v1/token", headers, body).body)
        return idflow.jwt.decode_unverified(t["access_token"])["header"]["kid"]

    # Published at once, signing after signing.prepublish (an hour by default).
    waiting = provider.rotate_keys(alg="ES256")
    assert waiting["alg"] == "ES256" and waiting["signsFrom"] >= __import__("time").time() + 3590
    assert jwks() == [waiting["kid"], old] and token_kid() == old
    now = provider.rotate_keys(prepublish=0)
    assert now["alg"] == "RS256" and token_kid() == now["kid"]
    assert jwks() == [waiting["kid"], now["kid"], old], "by when they sign: the waiting key, the signing one, the old one"
    with pytest.raises(idflow.IdflowError) as e:
        provider.rotate_keys(alg="HS256")
    assert e.value.code == "invalid_request"


def test_the_management_api_over_http():
    doc = json.loads((E2E / "project.json").read_text())
    secret = "py-management-secret-0123456789abcdef"
    doc["management"] = {"keys": [{"id": "ops", "secret": secret}]}
    provider = idflow.Provider(json.dumps(doc), base_dir=str(E2E))

    def mgmt(method, path, body=None, key=secret):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = "Bearer " + key
        r = provider.handle(method, "/v1/mgmt/" + path, headers, json.dumps(body) if body is not None else None)
        return r.status, (json.loads(r.body) if r.body else None)

    status, body = mgmt("GET", "users", key=None)
    assert status == 401 and body["error"]["code"] == "invalid_client"
    status, user = mgmt("POST", "users", {"loginId": "ola@example.com", "tenants": [{"tenantId": "acme", "roles": ["viewer"]}]})
    assert status == 201 and user["tenants"] == [{"tenantId": "acme", "roles": ["viewer"]}]
    assert mgmt("POST", "users", {"loginId": "ola@example.com"})[1]["error"]["code"] == "user_exists"
    assert mgmt("PUT", f"users/{user['userId']}/password", {"password": "short"})[1]["error"]["code"] == "weak_password"
    assert mgmt("PUT", f"users/{user['userId']}/password", {"password": "a long management password"})[0] == 204
    assert provider.engine.has_password(user["userId"])
    status, rotated = mgmt("POST", "keys/rotate", {"prepublish": 0})
    assert status == 201 and rotated["alg"] == "RS256"
    assert mgmt("DELETE", f"users/{user['userId']}")[0] == 204
    assert mgmt("GET", f"users/{user['userId']}") == (404, {"error": {"code": "user_not_found", "message": "no user with this user id"}})


def test_signing_a_user_out_everywhere_ends_their_tokens():
    provider = make_provider()
    code, verifier = login(provider, email="lost-phone@example.com")
    _, tokens = redeem(provider, code, verifier)
    user = provider.engine.search_users(text="lost-phone@")[0]
    provider.engine.sign_out_everywhere(user["userId"])
    headers, body = form({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "e2e"})
    r = provider.handle("POST", "/oauth2/v1/token", headers, body)
    assert r.status == 400 and json.loads(r.body)["error"] == "invalid_grant"
    info = provider.handle("GET", "/oauth2/v1/userinfo", {"Authorization": "Bearer " + tokens["access_token"]})
    assert info.status == 401
    with pytest.raises(idflow.IdflowError) as e:
        provider.engine.sign_out_everywhere("U-nobody")
    assert e.value.code == "user_not_found"


def test_users_management_and_configuration_views():
    provider = make_provider()
    user = provider.engine.create_user("ops@example.com", {"name": "Ops"})
    assert provider.engine.get_user(user["userId"])["name"] == "Ops"
    code, _ = login(provider, email="ops@example.com")
    assert code
    assert [u["userId"] for u in provider.engine.search_users(text="ops@")] == [user["userId"]]
    apps = {a["clientId"]: a for a in provider.applications()}
    assert apps["web"]["tokenEndpointAuthMethod"] == "client_secret_basic"
    assert "clientSecret" not in json.dumps(apps) and "secret-0123" not in json.dumps(apps)
    keys = provider.access_keys()
    assert keys == [
        {"id": "K-reporting", "scopes": ["reports:read", "reports:write"], "customClaims": {"team": "data"}}
    ]


def test_handle_async_and_sqlite(tmp_path):
    provider = make_provider(database=str(tmp_path / "idflow.db"))

    async def main():
        headers, body = form({"grant_type": "client_credentials"})
        headers.append(("Authorization", "Basic " + __import__("base64").b64encode(b"K-reporting:reporting-secret-0123456789").decode()))
        results = await asyncio.gather(*[provider.handle_async("POST", "/oauth2/v1/token", headers, body) for _ in range(4)])
        return [json.loads(r.body) for r in results]

    tokens = asyncio.run(main())
    assert len({t["access_token"] for t in tokens}) == 4
    assert all(t["scope"] == "reports:read reports:write" for t in tokens)
    # The keys persisted: a second provider on the same file publishes the same JWKS.
    again = make_provider(database=str(tmp_path / "idflow.db"))
    assert again.handle("GET", "/e2e/.well-known/jwks.json").body == provider.handle("GET", "/e2e/.well-known/jwks.json").body


def test_bad_configuration_and_arguments():
    with pytest.raises(idflow.ConfigError) as e:
        idflow.Provider('{"projectId": "p", "baseUrl": "http://127.0.0.1", "applications": [{"clientId": "a", "public": true, "bogus": 1}]}')
    assert e.value.code == "config" and "bogus" in e.value.message
    with pytest.raises(idflow.ConfigError):
        idflow.Provider.from_file(str(E2E / "missing.json"))
    provider = make_provider()
    with pytest.raises(TypeError):
        provider.handle("POST", "/oauth2/v1/token", None, 42)
    assert provider.handle("GET", "/nowhere").status == 404


def load_flask_example():
    spec = importlib.util.spec_from_file_location("idflow_flask_example", ROOT / "examples" / "flask" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flask_example_mounts_the_provider(tmp_path):
    pytest.importorskip("flask")
    example = load_flask_example()
    app = example.create_app(str(E2E / "project.json"), database=str(tmp_path / "db"), base_url="http://localhost")
    client = app.test_client()
    discovery = client.get("/e2e/.well-known/openid-configuration").get_json()
    assert discovery["token_endpoint"] == "http://localhost/oauth2/v1/token"
    pair = idflow.pkce.generate()
    params = {
        "response_type": "code",
        "client_id": "e2e",
        "redirect_uri": CB,
        "scope": "openid",
        "state": "x",
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    r = client.get("/oauth2/v1/authorize", query_string=params)
    assert r.status_code == 302
    request_id = query(r.headers["Location"])["request"]
    page = client.get("/login/e2e", query_string={"flow": "sign-up-or-in", "request": request_id})
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    started = client.post("/v1/flow/start", json={"request": request_id}).get_json()
    # Flask's test client keeps the idflow_browser cookie, as a browser does.
    done = client.post(
        "/v1/flow/next",
        json={"executionId": started["executionId"], "stepId": started["stepId"], "interactionId": "submit", "input": {"email": "flask@example.com"}},
    )
    delivered = client.get(done.get_json()["redirect"]["url"])
    assert delivered.status_code == 302 and delivered.headers["Location"].startswith(CB + "?")
    code = query(delivered.headers["Location"])["code"]
    tokens = client.post(
        "/oauth2/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CB, "client_id": "e2e", "code_verifier": pair.verifier},
    ).get_json()
    assert tokens["token_type"] == "Bearer" and "id_token" in tokens
    users = client.get("/admin/users", query_string={"q": "flask@"}).get_json()
    assert [u["email"] for u in users] == ["flask@example.com"]


def test_the_peer_address_feeds_the_per_address_rate_limits():
    doc = json.loads((E2E / "project.json").read_text())
    doc["rateLimits"] = {"flowStartsPerIp": 2}
    provider = idflow.Provider(json.dumps(doc), base_dir=str(E2E))
    start = (json.dumps({"flowId": "sign-up-or-in"})).encode()
    headers = [("Content-Type", "application/json")]
    for _ in range(2):
        assert provider.handle("POST", "/v1/flow/start", headers, start, peer="203.0.113.7").status == 200
    limited = provider.handle("POST", "/v1/flow/start", headers, start, peer="203.0.113.7")
    assert limited.status == 429
    assert json.loads(limited.body)["error"]["code"] == "rate_limited"
    assert limited.header("retry-after")
    assert provider.handle("POST", "/v1/flow/start", headers, start, peer="203.0.113.8").status == 200

    async def from_asyncio():
        return await provider.handle_async("POST", "/v1/flow/start", headers, start, peer="203.0.113.7")

    assert asyncio.run(from_asyncio()).status == 429
    # Without a peer nothing is counted per address.
    assert provider.handle("POST", "/v1/flow/start", headers, start).status == 200
    with pytest.raises(idflow.IdflowError) as info:
        provider.handle("GET", "/health", peer="not-an-address")
    assert info.value.code == "invalid_request"
