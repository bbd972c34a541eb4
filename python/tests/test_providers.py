"""idflow.Providers: several projects in one app, each at its own issuer with
every endpoint under it and a store of its own; nothing of one is accepted by
another."""

import asyncio
import base64
import json
import pathlib
import urllib.parse

import pytest

import idflow

ROOT = pathlib.Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"
BASE = "http://127.0.0.1:18181"
CB = "http://127.0.0.1/callback"


def project_json(pid: str) -> str:
    doc = json.loads((E2E / "project.json").read_text())
    doc.update(projectId=pid, baseUrl=BASE)
    return json.dumps(doc)


def query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def cookie(r, name):
    for k, v in r.headers:
        if k.lower() == "set-cookie" and v.startswith(name + "="):
            return v
    return None


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def tokens(p: idflow.Providers, pid: str, email: str) -> dict:
    pair = idflow.pkce.generate()
    params = {
        "response_type": "code",
        "client_id": "e2e",
        "redirect_uri": CB,
        "scope": "openid offline_access",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    r = p.handle("GET", f"/{pid}/oauth2/v1/authorize?" + urllib.parse.urlencode(params))
    assert r.status == 302
    assert r.header("location").startswith(f"{BASE}/{pid}/login/{pid}?")
    browser_cookie = cookie(r, "idflow_browser")
    assert f"Path=/{pid};" in browser_cookie, browser_cookie
    browser = browser_cookie.split(";", 1)[0]
    post = lambda path, doc: json.loads(p.handle("POST", path, {"Content-Type": "application/json", "Cookie": browser}, json.dumps(doc)).body)
    s = post(f"/{pid}/v1/flow/start", {"request": query(r.header("location"))["request"]})
    d = post(
        f"/{pid}/v1/flow/next",
        {"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": email}},
    )
    assert d["status"] == "completed", d
    assert d["redirect"]["url"].startswith(f"{BASE}/{pid}/oauth2/v1/authorize/complete?")
    delivered = p.handle("GET", d["redirect"]["url"], {"Cookie": browser})
    assert delivered.status == 302
    back = query(delivered.header("location"))
    assert back["iss"] == f"{BASE}/{pid}"
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": back["code"], "redirect_uri": CB, "client_id": "e2e", "code_verifier": pair.verifier})
    t = p.handle("POST", f"/{pid}/oauth2/v1/token", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert t.status == 200, t.body
    return json.loads(t.body)


def test_several_projects_are_served_apart():
    p = idflow.Providers([project_json("acme"), project_json("globex")], base_dir=str(E2E))
    assert p.issuers == [f"{BASE}/acme", f"{BASE}/globex"]
    assert p.provider("globex").issuer == f"{BASE}/globex"
    assert p.provider("initech") is None
    discovery = json.loads(p.handle("GET", "/acme/.well-known/openid-configuration").body)
    assert discovery["userinfo_endpoint"] == f"{BASE}/acme/oauth2/v1/userinfo"
    assert p.handle("GET", "/oauth2/v1/userinfo").status == 404

    a = tokens(p, "acme", "ann@example.com")
    g = tokens(p, "globex", "ann@example.com")
    assert claims(a["id_token"])["sub"] != claims(g["id_token"])["sub"]
    bearer = {"Authorization": f"Bearer {a['access_token']}"}
    assert p.handle("GET", "/acme/oauth2/v1/userinfo", bearer).status == 200
    refused = p.handle("GET", "/globex/oauth2/v1/userinfo", bearer)
    assert refused.status == 401 and "invalid_token" in refused.header("www-authenticate")
    # Acme's refresh token is unknown at globex.
    body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": a["refresh_token"], "client_id": "e2e"})
    r = p.handle("POST", "/globex/oauth2/v1/token", {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert r.status == 400 and json.loads(r.body)["error"] == "invalid_grant"

    text = p.metrics()
    assert 'idflow_tokens_issued_total{project="acme",grant="authorization_code"} 1' in text
    assert text.count("# TYPE idflow_http_requests counter") == 1
    async def jwks():
        return await p.handle_async("GET", "/globex/.well-known/jwks.json")

    r = asyncio.run(jwks())
    assert r.status == 200 and json.loads(r.body)["keys"]


def test_several_projects_never_share_a_store(tmp_path):
    two = [project_json("acme"), project_json("globex")]
    with pytest.raises(idflow.ConfigError, match=r"\{project\}"):
        idflow.Providers(two, base_dir=str(E2E), database=str(tmp_path / "one.db"))
    with pytest.raises(idflow.ConfigError, match="given twice"):
        idflow.Providers([project_json("acme"), project_json("acme")], base_dir=str(E2E))
    with pytest.raises(idflow.ConfigError):
        idflow.Providers([project_json("acme"), project_json("glo bex")], base_dir=str(E2E))
    p = idflow.Providers(two, base_dir=str(E2E), database=str(tmp_path / "{project}.db"))
    assert (tmp_path / "acme.db").is_file() and (tmp_path / "globex.db").is_file()
    assert "Providers" in repr(p)
    folder = tmp_path / "projects"
    folder.mkdir()
    for pid in ["globex", "acme"]:
        doc = json.loads(project_json(pid))
        doc["flows"] = [str((E2E / f).resolve()) for f in doc["flows"]]
        (folder / f"{pid}.json").write_text(json.dumps(doc))
    from_folder = idflow.Providers.from_files([str(folder)], base_url="https://id.example.com")
    assert from_folder.issuers == ["https://id.example.com/acme", "https://id.example.com/globex"]


def test_one_project_is_served_as_provider_serves_it():
    p = idflow.Providers([project_json("acme")], base_dir=str(E2E))
    discovery = json.loads(p.handle("GET", "/acme/.well-known/openid-configuration").body)
    assert discovery["token_endpoint"] == f"{BASE}/oauth2/v1/token"
