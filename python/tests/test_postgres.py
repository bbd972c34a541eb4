"""idflow.Provider on PostgreSQL (``database="postgres://..."``): two
providers on one database, as two app servers behind a balancer, are one
provider; several projects share a database with a schema each. The test
command starts a private PostgreSQL (IDFLOW_TEST_POSTGRES); without it the
tests are skipped, except in CI."""

import json
import os
import secrets
import urllib.parse

import pytest

import idflow
from test_providers import BASE, CB, E2E, claims, project_json, query

URL = os.environ.get("IDFLOW_TEST_POSTGRES")
if not URL:
    if os.environ.get("CI") == "true":
        raise RuntimeError("IDFLOW_TEST_POSTGRES is not set: tests/run.sh starts a private PostgreSQL for these tests")
    pytest.skip("IDFLOW_TEST_POSTGRES is not set (bash tests/run.sh starts a private PostgreSQL)", allow_module_level=True)

DATA_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def database(schema: str) -> str:
    """The test server's URL with a fresh schema of its own."""
    return f"{URL}{'&' if '?' in URL else '?'}schema={schema}"


def with_key(pid: str) -> str:
    doc = json.loads(project_json(pid))
    doc["encryption"] = {"key": DATA_KEY}
    return json.dumps(doc)


def post_json(p, path, doc, cookie):
    return json.loads(p.handle("POST", path, {"Content-Type": "application/json", "Cookie": cookie}, json.dumps(doc)).body)


def form(p, path, fields):
    r = p.handle("POST", path, {"Content-Type": "application/x-www-form-urlencoded"}, urllib.parse.urlencode(fields))
    return r.status, json.loads(r.body)


def test_two_providers_on_one_database_are_one_provider():
    db = database(f"py_{secrets.token_hex(4)}")
    a = idflow.Provider(with_key("acme"), base_dir=str(E2E), database=db)
    b = idflow.Provider(with_key("acme"), base_dir=str(E2E), database=db)
    assert a.discovery()["jwks_uri"] == b.discovery()["jwks_uri"]
    assert json.loads(a.handle("GET", "/acme/.well-known/jwks.json").body) == json.loads(b.handle("GET", "/acme/.well-known/jwks.json").body)
    pair = idflow.pkce.generate()
    params = {"response_type": "code", "client_id": "e2e", "redirect_uri": CB, "scope": "openid offline_access", "state": "s", "nonce": "n",
              "code_challenge": pair.challenge, "code_challenge_method": "S256"}
    # Authorize on a, the flow on b, the delivery on a, the token on b.
    r = a.handle("GET", "/oauth2/v1/authorize?" + urllib.parse.urlencode(params))
    browser = next(v for k, v in r.headers if k.lower() == "set-cookie" and v.startswith("idflow_browser=")).split(";", 1)[0]
    s = post_json(b, "/v1/flow/start", {"request": query(r.header("location"))["request"]}, browser)
    d = post_json(a, "/v1/flow/next", {"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"],
                                       "interactionId": "submit", "input": {"email": "pg@example.com"}}, browser)
    assert d["status"] == "completed", d
    delivered = b.handle("GET", d["redirect"]["url"], {"Cookie": browser})
    assert delivered.status == 302
    code = query(delivered.header("location"))["code"]
    token = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB, "client_id": "e2e", "code_verifier": pair.verifier}
    status, tokens = form(a, "/oauth2/v1/token", token)
    assert status == 200, tokens
    refreshed_status, refreshed = form(b, "/oauth2/v1/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "e2e"})
    assert refreshed_status == 200, refreshed
    bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
    info = a.handle("GET", "/oauth2/v1/userinfo", bearer)
    assert info.status == 200 and json.loads(info.body)["sub"] == claims(tokens["id_token"])["sub"]
    # The code replayed on the other server: refused, and its grant revoked everywhere.
    status, again = form(b, "/oauth2/v1/token", token)
    assert (status, again["error"]) == (400, "invalid_grant")
    assert a.handle("GET", "/oauth2/v1/userinfo", bearer).status == 401


def test_a_postgres_store_needs_the_projects_data_key():
    with pytest.raises(idflow.ConfigError, match="encryption.key"):
        idflow.Provider(project_json("acme"), base_dir=str(E2E), database=database(f"py_{secrets.token_hex(4)}"))


def test_several_projects_share_a_database_with_a_schema_each():
    run = secrets.token_hex(4)
    p = idflow.Providers([with_key("acme"), with_key("globex")], base_dir=str(E2E), database=database(f"py{run}_{{project}}"))
    assert p.issuers == [f"{BASE}/acme", f"{BASE}/globex"]
    # Each project's store is its schema: a provider on acme's schema alone has acme's keys.
    acme = idflow.Provider(with_key("acme"), base_dir=str(E2E), database=database(f"py{run}_acme"))
    assert json.loads(acme.handle("GET", "/acme/.well-known/jwks.json").body) == json.loads(p.handle("GET", "/acme/.well-known/jwks.json").body)
    assert json.loads(p.handle("GET", "/globex/.well-known/jwks.json").body) != json.loads(p.handle("GET", "/acme/.well-known/jwks.json").body)
