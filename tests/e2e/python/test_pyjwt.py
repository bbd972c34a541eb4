"""idflow's tokens as a resource server checks them with PyJWT + PyJWKClient.

The tokens come from a sign-in done with plain `requests` (conftest's
code_flow_tokens), so nothing here depends on Authlib.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import jwt
import pytest
import requests
from jwt import PyJWKClient

from conftest import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    HTTP_TIMEOUT,
    PROJECT_ID,
    PUBLIC_CLIENT,
    WEB_CLIENT,
    WEB_REDIRECT,
    WEB_SECRET,
    b64url,
    b64url_json,
    code_flow_tokens,
)


@pytest.fixture(scope="module")
def jwks_client(server):
    return PyJWKClient(server.metadata["jwks_uri"], timeout=HTTP_TIMEOUT)


@pytest.fixture(scope="module")
def public_tokens(server):
    return code_flow_tokens(server, scope="openid profile email offline_access")


@pytest.fixture(scope="module")
def web_tokens(server):
    return code_flow_tokens(server, client_id=WEB_CLIENT, redirect_uri=WEB_REDIRECT, secret=WEB_SECRET,
                            scope="openid email descope.custom_claims")


def verify(jwks_client, token, *, issuer, audience, **kw):
    key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["RS256"], issuer=issuer, audience=audience,
                      options={"require": ["iss", "sub", "aud", "exp", "iat"]}, **kw)


def left_half_sha256(token: str) -> str:
    return b64url(hashlib.sha256(token.encode()).digest()[:16])


def test_jwks_is_served_for_pyjwk_client(server, jwks_client):
    keys = jwks_client.get_signing_keys()
    assert keys, "no signing keys"
    for k in keys:
        assert k.key_type == "RSA"
        assert k.algorithm_name == "RS256"
        assert k.key_id
    r = requests.get(server.metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    assert r.headers["Content-Type"].startswith("application/json")
    assert all(set(k) >= {"kty", "n", "e", "kid"} and "d" not in k for k in r.json()["keys"])


def test_id_token_verifies(server, jwks_client, public_tokens):
    id_token = public_tokens["id_token"]
    header = jwt.get_unverified_header(id_token)
    assert header["alg"] == "RS256"
    assert header["kid"] in {k.key_id for k in jwks_client.get_signing_keys()}
    claims = verify(jwks_client, id_token, issuer=server.issuer, audience=PUBLIC_CLIENT)
    assert claims["nonce"] == public_tokens["_nonce"]
    assert "email" not in claims  # with an access token, scope claims are at userinfo (OIDC Core §5.4)
    assert claims["azp"] == PUBLIC_CLIENT
    assert claims["exp"] > time.time() and claims["iat"] <= time.time() + 5
    assert claims["at_hash"] == left_half_sha256(public_tokens["access_token"])


def test_access_token_verifies_as_rfc9068(server, jwks_client, public_tokens):
    at = public_tokens["access_token"]
    header = jwt.get_unverified_header(at)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    claims = verify(jwks_client, at, issuer=server.issuer, audience=PROJECT_ID)
    assert claims["client_id"] == PUBLIC_CLIENT
    assert claims["jti"]
    assert set(claims["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    id_claims = verify(jwks_client, public_tokens["id_token"], issuer=server.issuer, audience=PUBLIC_CLIENT)
    assert claims["sub"] == id_claims["sub"]
    # an id_token is not an access token
    assert jwt.get_unverified_header(public_tokens["id_token"]).get("typ") != "at+jwt"


def test_custom_claims_in_confidential_client_tokens(server, jwks_client, web_tokens):
    at = verify(jwks_client, web_tokens["access_token"], issuer=server.issuer, audience=PROJECT_ID)
    idt = verify(jwks_client, web_tokens["id_token"], issuer=server.issuer, audience=WEB_CLIENT)
    for claims in (at, idt):
        assert claims["plan"] == "pro"
        assert claims["loginEmail"] == web_tokens["_email"]
    assert at["client_id"] == WEB_CLIENT


def test_access_key_token_verifies(server, jwks_client):
    r = requests.post(server.metadata["token_endpoint"], data={"grant_type": "client_credentials"},
                      auth=(ACCESS_KEY_ID, ACCESS_KEY_SECRET), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    at = r.json()["access_token"]
    assert jwt.get_unverified_header(at)["typ"] == "at+jwt"
    claims = verify(jwks_client, at, issuer=server.issuer, audience=PROJECT_ID)
    assert (claims["sub"], claims["client_id"], claims["team"]) == (ACCESS_KEY_ID, ACCESS_KEY_ID, "data")


def test_wrong_audience_or_issuer_fails(server, jwks_client, public_tokens):
    at = public_tokens["access_token"]
    with pytest.raises(jwt.InvalidAudienceError):
        verify(jwks_client, at, issuer=server.issuer, audience=WEB_CLIENT)
    with pytest.raises(jwt.InvalidAudienceError):
        verify(jwks_client, public_tokens["id_token"], issuer=server.issuer, audience=WEB_CLIENT)
    with pytest.raises(jwt.InvalidIssuerError):
        verify(jwks_client, at, issuer=server.base_url, audience=PROJECT_ID)


def _tamper_payload(token: str, **changes) -> str:
    head, payload, sig = token.split(".")
    claims = b64url_json(payload)
    claims.update(changes)
    return ".".join([head, b64url(json.dumps(claims, separators=(",", ":")).encode()), sig])


@pytest.mark.parametrize("which", ["id_token", "access_token"])
def test_tampered_payload_fails(server, jwks_client, public_tokens, which):
    token = public_tokens[which]
    audience = PUBLIC_CLIENT if which == "id_token" else PROJECT_ID
    forged = _tamper_payload(token, sub="someone-else")
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwks_client, forged, issuer=server.issuer, audience=audience)
    # the original still verifies
    verify(jwks_client, token, issuer=server.issuer, audience=audience)


def test_tampered_signature_and_alg_tricks_fail(server, jwks_client, public_tokens):
    at = public_tokens["access_token"]
    head, payload, sig = at.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0x01
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwks_client, ".".join([head, payload, b64url(bytes(raw))]), issuer=server.issuer, audience=PROJECT_ID)

    header = jwt.get_unverified_header(at)
    none_head = b64url(json.dumps({**header, "alg": "none"}).encode())
    with pytest.raises(jwt.InvalidTokenError):
        verify(jwks_client, f"{none_head}.{payload}.", issuer=server.issuer, audience=PROJECT_ID)

    # HS256 signed with the RSA public key (key confusion) is refused too
    hs_head = b64url(json.dumps({**header, "alg": "HS256"}).encode())
    with pytest.raises(jwt.InvalidTokenError):
        verify(jwks_client, f"{hs_head}.{payload}.{sig}", issuer=server.issuer, audience=PROJECT_ID)

    # an unknown kid is not found in the JWKS
    kid_head = b64url(json.dumps({**header, "kid": "no-such-kid"}).encode())
    with pytest.raises(jwt.PyJWKClientError):
        jwks_client.get_signing_key_from_jwt(f"{kid_head}.{payload}.{sig}")


def test_provider_refuses_tampered_access_token(server, public_tokens):
    userinfo = server.metadata["userinfo_endpoint"]
    ok = requests.get(userinfo, headers={"Authorization": f"Bearer {public_tokens['access_token']}"}, timeout=HTTP_TIMEOUT)
    assert ok.status_code == 200, ok.text
    forged = _tamper_payload(public_tokens["access_token"], scope="openid profile email phone")
    r = requests.get(userinfo, headers={"Authorization": f"Bearer {forged}"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # an id_token is not accepted as an access token
    r = requests.get(userinfo, headers={"Authorization": f"Bearer {public_tokens['id_token']}"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
