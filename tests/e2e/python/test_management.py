"""The management API (`/v1/mgmt/...`) over plain HTTP from Python
(``requests``) against `idflow serve`: refused without the management key,
then users, passwords, sign-out everywhere and key rotation, with the
bindings' error codes. The rotated key is published at once, no restart."""

from __future__ import annotations

import json

import pytest
import requests

from conftest import E2E, PROJECT, HTTP_TIMEOUT, start_server, stop_server

SECRET = "py-e2e-management-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def mgmt_server(tmp_path_factory):
    """`idflow serve` on a copy of project.json with a management key."""
    doc = json.loads(PROJECT.read_text(encoding="utf-8"))
    doc["management"] = {"keys": [{"id": "ops", "secret": SECRET}]}
    doc["passwords"] = {"minLength": 12, "hashing": {"memoryKiB": 8192, "iterations": 1}}
    doc["flows"] = [str((E2E / f).resolve()) if isinstance(f, str) else f for f in doc["flows"]]
    project = tmp_path_factory.mktemp("mgmt-project") / "project.json"
    project.write_text(json.dumps(doc), encoding="utf-8")
    srv = start_server(tmp_path_factory, project, "idflow-mgmt")
    yield srv
    stop_server(srv)


def test_the_management_api_over_plain_http(mgmt_server):
    def mgmt(method: str, path: str, body=None, secret: str | None = SECRET) -> requests.Response:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return requests.request(method, mgmt_server.url(f"/v1/mgmt/{path}"), json=body, headers=headers, timeout=HTTP_TIMEOUT)

    denied = mgmt("GET", "users", secret=None)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_client"
    assert denied.headers["WWW-Authenticate"].startswith("Bearer")
    assert mgmt("GET", "users", secret="not-the-management-secret-0123456789").status_code == 401

    created = mgmt("POST", "users", {"loginId": "pia@example.com", "name": "Pia", "tenants": [{"tenantId": "acme", "roles": ["admin"]}]})
    assert created.status_code == 201, created.text
    uid = created.json()["userId"]
    assert mgmt("POST", "users", {"loginId": "pia@example.com"}).json()["error"]["code"] == "user_exists"
    assert mgmt("GET", f"users/{uid}").json()["name"] == "Pia"
    assert mgmt("PATCH", f"users/{uid}", {"givenName": "Pia"}).json()["givenName"] == "Pia"
    assert len(mgmt("GET", "users?text=pia").json()["users"]) == 1
    weak = mgmt("PUT", f"users/{uid}/password", {"password": "short"})
    assert (weak.status_code, weak.json()["error"]["code"]) == (400, "weak_password")
    assert mgmt("PUT", f"users/{uid}/password", {"password": "a long management password"}).status_code == 204
    assert mgmt("POST", f"users/{uid}/sign-out-everywhere").status_code == 204

    rotated = mgmt("POST", "keys/rotate", {"alg": "ES256", "prepublish": 0})
    assert rotated.status_code == 201, rotated.text
    jwks = requests.get(mgmt_server.url("/e2e/.well-known/jwks.json"), timeout=HTTP_TIMEOUT).json()
    assert jwks["keys"][0]["kid"] == rotated.json()["kid"] and len(jwks["keys"]) == 2

    assert mgmt("DELETE", f"users/{uid}").status_code == 204
    gone = mgmt("GET", f"users/{uid}")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "user_not_found")
