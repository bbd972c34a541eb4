"""idflow as seen by Authlib's requests client (a typical Python relying party)."""

from __future__ import annotations

import html.parser
import json
import secrets
import time
from urllib.parse import parse_qs, urlencode

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import BadSignatureError, InvalidClaimError
from authlib.oauth2.rfc6749.errors import MissingCodeException
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc.errors import InvalidClaimError as JoserfcInvalidClaimError
from joserfc.errors import MissingClaimError
from joserfc.jwk import ECKey

from conftest import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    HTTP_TIMEOUT,
    PARTNER_CLIENT,
    PARTNER_KEY,
    PARTNER_REDIRECT,
    POST_CLIENT,
    POST_REDIRECT,
    POST_SECRET,
    PROJECT_ID,
    PUBLIC_CLIENT,
    PUBLIC_REDIRECT,
    WEB_CLIENT,
    WEB_REDIRECT,
    WEB_SECRET,
    login,
    new_email,
    query_params,
)

# Authlib 1.9's claims validation is joserfc underneath and raises its errors.
CLAIM_ERRORS = (InvalidClaimError, JoserfcInvalidClaimError)

# ------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def metadata(server):
    """Discovery, loaded once the way an RP would: GET the well-known URL."""
    r = requests.get(f"{server.issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    return r.json()


@pytest.fixture(scope="module")
def key_set(metadata):
    r = requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    return JsonWebKey.import_key_set(r.json())


def session_for(metadata, client_id, client_secret=None, *, redirect_uri, scope, **kw) -> OAuth2Session:
    return OAuth2Session(
        client_id,
        client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint=metadata["token_endpoint"],
        default_timeout=HTTP_TIMEOUT,
        **kw,
    )


def sign_in(server, metadata, client: OAuth2Session, email=None, browser=None, answer=None, **authorize_params):
    """create_authorization_url → flow API → fetch_token(authorization_response)."""
    verifier = generate_token(64)
    nonce = generate_token(20)
    state = generate_token(20)
    url, got_state = client.create_authorization_url(
        metadata["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier, **authorize_params
    )
    assert got_state == state
    assert "code_challenge_method=S256" in url and "code_challenge=" in url
    result = login(server, url, email, browser, answer)
    assert result.params["state"] == state
    assert result.params["iss"] == metadata["issuer"]  # RFC 9207
    token = client.fetch_token(authorization_response=result.callback_url, code_verifier=verifier, state=state)
    return token, nonce, result


def validate_id_token(metadata, key_set, id_token, *, client_id, nonce, access_token=None, acr=None):
    """Authlib's id_token validation; with `acr`, the claim is essential and must equal it."""
    options = {
        "iss": {"essential": True, "value": metadata["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "nonce": {"essential": True, "value": nonce},
        "sub": {"essential": True},
    }
    if acr is not None:
        options["acr"] = {"essential": True, "value": acr}
    claims = jwt.decode(
        id_token,
        key_set,
        claims_cls=CodeIDToken,
        claims_options=options,
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate()
    assert claims.header["alg"] == "RS256"
    assert claims.header["kid"] in {k["kid"] for k in requests.get(metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json()["keys"]}
    return claims


def decode_access_token(metadata, key_set, access_token, **extra_options):
    claims = jwt.decode(
        access_token,
        key_set,
        claims_options={
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": PROJECT_ID},
            "sub": {"essential": True},
            "jti": {"essential": True},
            **extra_options,
        },
    )
    claims.validate()
    assert claims.header["typ"] == "at+jwt"
    return claims


def public_client(metadata, scope="openid profile email offline_access"):
    return session_for(metadata, PUBLIC_CLIENT, redirect_uri=PUBLIC_REDIRECT, scope=scope)


def userinfo(client: OAuth2Session, metadata) -> requests.Response:
    return client.get(metadata["userinfo_endpoint"])


@pytest.fixture(scope="module")
def partner_key():
    return ECKey.import_key(json.loads(PARTNER_KEY.read_text()))


def partner_client(metadata, partner_key, auth_cls=PrivateKeyJWT) -> OAuth2Session:
    client = session_for(
        metadata, PARTNER_CLIENT, partner_key, redirect_uri=PARTNER_REDIRECT, scope="openid email",
        token_endpoint_auth_method="private_key_jwt", revocation_endpoint_auth_method="private_key_jwt",
    )
    client.register_client_auth_method(auth_cls(metadata["token_endpoint"], alg="ES256"))
    return client


# ------------------------------------------------------------------ discovery


def test_discovery_metadata_validates(server, metadata):
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == f"{server.base_url}/{PROJECT_ID}"
    assert metadata["authorization_endpoint"] == server.url("/oauth2/v1/authorize")
    assert metadata["token_endpoint"] == server.url("/oauth2/v1/token")
    assert metadata["userinfo_endpoint"] == server.url("/oauth2/v1/userinfo")
    assert metadata["revocation_endpoint"] == server.url("/oauth2/v1/revoke")
    assert metadata["end_session_endpoint"] == server.url("/oauth2/v1/logout")
    assert metadata["jwks_uri"] == f"{metadata['issuer']}/.well-known/jwks.json"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    for m in ("client_secret_basic", "client_secret_post", "private_key_jwt", "none"):
        assert m in metadata["token_endpoint_auth_methods_supported"]
    for g in ("authorization_code", "refresh_token", "client_credentials"):
        assert g in metadata["grant_types_supported"]
    for s in ("openid", "offline_access", "descope.custom_claims", "descope.claims"):
        assert s in metadata["scopes_supported"]
    # applications' claimsSupported are merged in
    assert {"plan", "loginEmail"} <= set(metadata["claims_supported"])
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_jwks_imports_into_authlib(key_set):
    keys = key_set.as_dict()["keys"]
    assert keys and all(k["kty"] == "RSA" and k.get("kid") for k in keys)
    assert all("d" not in k and "p" not in k for k in keys), "private key material in the JWKS"


# ------------------------------------------------------------------ public client + PKCE


def test_public_client_code_flow_with_pkce(server, metadata, key_set):
    client = public_client(metadata)
    email = new_email()
    token, nonce, _ = sign_in(server, metadata, client, email)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 600
    assert set(token["scope"].split()) == {"openid", "profile", "email", "offline_access"}
    assert token.get("refresh_token")

    id_claims = validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce,
                                  access_token=token["access_token"])
    # An access token is issued, so the scopes' claims are at userinfo only (OIDC Core §5.4).
    assert not {"email", "email_verified", "name", "preferred_username", "updated_at"} & set(id_claims)
    assert id_claims["azp"] == PUBLIC_CLIENT
    assert id_claims.get("at_hash")
    assert abs(id_claims["auth_time"] - time.time()) < 120

    at = decode_access_token(metadata, key_set, token["access_token"])
    assert at["client_id"] == PUBLIC_CLIENT
    assert at["sub"] == id_claims["sub"]
    assert at["scope"] == token["scope"]

    r = userinfo(client, metadata)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["sub"] == id_claims["sub"]
    assert info["email"] == email
    assert info["email_verified"] is True
    assert info["name"] == info["preferred_username"] == email
    # userinfo over POST, token in the body (RFC 6750 §2.2)
    r2 = requests.post(metadata["userinfo_endpoint"], data={"access_token": token["access_token"]}, timeout=HTTP_TIMEOUT)
    assert r2.status_code == 200 and r2.json()["sub"] == info["sub"]


def test_fetch_token_with_explicit_code_and_verifier(server, metadata, key_set):
    client = public_client(metadata, scope="openid")
    verifier = generate_token(48)
    nonce = generate_token(16)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier)
    result = login(server, url)
    assert result.params["state"] == state
    token = client.fetch_token(code=result.code, code_verifier=verifier)
    validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce,
                      access_token=token["access_token"])
    # no offline_access: a public client gets no refresh token
    assert "refresh_token" not in token
    # openid only: no email claims
    assert "email" not in userinfo(client, metadata).json()


def test_id_token_with_wrong_nonce_is_refused_by_authlib(server, metadata, key_set):
    client = public_client(metadata, scope="openid")
    token, nonce, _ = sign_in(server, metadata, client)
    with pytest.raises(CLAIM_ERRORS):
        validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce + "x")
    with pytest.raises(CLAIM_ERRORS):
        validate_id_token(metadata, key_set, token["id_token"], client_id="someone-else", nonce=nonce)


def test_tampered_id_token_fails_authlib_signature_check(server, metadata, key_set):
    client = public_client(metadata, scope="openid")
    token, nonce, _ = sign_in(server, metadata, client)
    head, payload, sig = token["id_token"].split(".")
    forged = ".".join([head, payload, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")])
    with pytest.raises(BadSignatureError):
        validate_id_token(metadata, key_set, forged, client_id=PUBLIC_CLIENT, nonce=nonce)


def test_wrong_code_verifier_is_refused(server, metadata):
    client = public_client(metadata, scope="openid")
    verifier = generate_token(48)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    result = login(server, url)
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=result.callback_url, code_verifier=generate_token(48), state=state)
    assert e.value.error == "invalid_grant"


def test_authorize_without_pkce_is_refused_for_public_client(server, metadata):
    client = public_client(metadata, scope="openid")
    url, state = client.create_authorization_url(metadata["authorization_endpoint"])  # no code_verifier
    assert "code_challenge" not in url
    r = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302
    q = query_params(r.headers["Location"])
    assert r.headers["Location"].startswith(PUBLIC_REDIRECT)
    assert q["error"] == "invalid_request"
    assert q["state"] == state
    assert q["iss"] == metadata["issuer"]



class _FormPostPage(html.parser.HTMLParser):
    """The auto-submitting form of a form_post page: method, action and hidden fields."""

    def __init__(self, text: str):
        super().__init__()
        self.forms: list[dict] = []
        self.fields: dict[str, str] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(a)
        elif tag == "input" and a.get("type") == "hidden":
            assert a.get("name") not in self.fields, f"the form repeats {a.get('name')}"
            self.fields[a["name"]] = a["value"]


# An unsigned request object (OIDC Core §6.1) from an application that did not opt in to them.
UNSIGNED_REQUEST_OBJECT = "eyJhbGciOiJub25lIn0.e30."


def test_authorization_error_comes_back_by_form_post(server, metadata):
    """response_mode=form_post (Form Post Response Mode §2) carries an
    authorization error too (RFC 6749 §4.1.2.1): an auto-posting form to the
    redirect URI, not a redirect. Authlib's client cannot take a form_post
    error in: fetch_token(authorization_response=...) only parses a response
    containing "code=", and otherwise guesses a grant type."""
    client = public_client(metadata, scope="openid")
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(16),
        response_mode="form_post", request=UNSIGNED_REQUEST_OBJECT,
    )
    sent = query_params(url)
    assert (sent["response_mode"], sent["request"]) == ("form_post", UNSIGNED_REQUEST_OBJECT)

    r = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:500]
    assert "Location" not in r.headers, "a form_post answer is not a redirect"
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Cache-Control"] == "no-store"
    page = _FormPostPage(r.text)
    assert len(page.forms) == 1, r.text
    assert page.forms[0].get("method", "").lower() == "post"
    assert page.forms[0].get("action") == PUBLIC_REDIRECT
    assert page.fields["error"] == "invalid_request_object"
    assert page.fields["state"] == state
    assert page.fields["iss"] == metadata["issuer"]  # RFC 9207
    assert "code" not in page.fields

    # The same request without response_mode: a 302 with the error in the query.
    plain, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], state=state, code_verifier=verifier, request=UNSIGNED_REQUEST_OBJECT,
    )
    redirected = requests.get(plain, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert redirected.status_code == 302
    assert redirected.headers["Location"].startswith(PUBLIC_REDIRECT + "?")
    q = query_params(redirected.headers["Location"])
    assert (q["error"], q["state"], q["iss"]) == ("invalid_request_object", state, metadata["issuer"])

    # What the browser posts, as the redirect URI with those fields.
    callback = f"{page.forms[0]['action']}?{urlencode(page.fields)}"
    # Authlib's RFC 6749 parser refuses it as a code response ...
    with pytest.raises(MissingCodeException) as e:
        parse_authorization_code_response(callback, state=state)
    assert e.value.error == "missing_code"
    # ... but OAuth2Session.fetch_token does not parse it at all (no "code=" in
    # it): it falls back to grant_type=client_credentials, which the provider
    # refuses for this public app. The error authlib raises is therefore the
    # token endpoint's, not the authorization response's.
    token_requests = []
    client.hooks["response"].append(lambda resp, *a, **kw: token_requests.append(resp.request))
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=callback, code_verifier=verifier, state=state)
    assert e.value.error == "unauthorized_client", (e.value.error, e.value.description)
    assert [req.url for req in token_requests] == [metadata["token_endpoint"]]
    body = parse_qs(token_requests[0].body)
    assert body["grant_type"] == ["client_credentials"]
    assert "code" not in body


def test_form_post_error_with_idflow_client(server, metadata):
    """idflow's own client takes the posted body of a form_post error as it is."""
    idflow = pytest.importorskip("idflow", reason="the idflow wheel is not installed in this venv")
    oidc = idflow.OidcClient.discover(f"{server.issuer}/.well-known/openid-configuration",
                                      client_id=PUBLIC_CLIENT, redirect_uri=PUBLIC_REDIRECT, scopes=["openid"])
    request = oidc.authorization_request(params={"response_mode": "form_post", "request": UNSIGNED_REQUEST_OBJECT})
    r = requests.get(request["url"], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and "Location" not in r.headers, r.text[:500]
    page = _FormPostPage(r.text)
    assert page.forms[0].get("action") == PUBLIC_REDIRECT
    assert (page.fields["error"], page.fields["state"]) == ("invalid_request_object", request["state"])
    body = urlencode(page.fields)  # the application/x-www-form-urlencoded POST body
    with pytest.raises(idflow.OAuthError) as e:
        oidc.parse_callback(body, request["state"])
    # idflow maps error codes it has no own code for to invalid_request; the
    # provider's error is kept in the message.
    assert e.value.code == "invalid_request"
    assert "invalid_request_object" in e.value.message
    # The state is checked before the error is believed.
    with pytest.raises(idflow.OAuthError) as e:
        oidc.parse_callback(body, request["state"] + "x")
    assert e.value.code == "invalid_request" and "state mismatch" in e.value.message

def test_code_is_single_use_and_replay_revokes_tokens(server, metadata):
    client = public_client(metadata, scope="openid offline_access")
    verifier = generate_token(48)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    result = login(server, url)
    token = client.fetch_token(authorization_response=result.callback_url, code_verifier=verifier, state=state)
    assert userinfo(client, metadata).status_code == 200
    replay = public_client(metadata, scope="openid offline_access")
    with pytest.raises(OAuthError) as e:
        replay.fetch_token(authorization_response=result.callback_url, code_verifier=verifier, state=state)
    assert e.value.error == "invalid_grant"
    # RFC 6749 §4.1.2: tokens issued from the replayed code are revoked
    r = userinfo(client, metadata)
    assert r.status_code == 401
    assert "invalid_token" in r.headers.get("WWW-Authenticate", "")
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=token["refresh_token"])
    assert e.value.error == "invalid_grant"


# ------------------------------------------------------------------ refresh + revoke


def test_refresh_token_rotates(server, metadata, key_set):
    client = public_client(metadata)
    token, _, _ = sign_in(server, metadata, client)
    first_rt, first_at = token["refresh_token"], token["access_token"]
    sub = decode_access_token(metadata, key_set, first_at)["sub"]

    new = client.refresh_token(refresh_token=first_rt)
    assert new["refresh_token"] and new["refresh_token"] != first_rt
    assert new["access_token"] != first_at
    assert decode_access_token(metadata, key_set, new["access_token"])["sub"] == sub
    assert new.get("id_token")  # openid is still granted
    assert userinfo(client, metadata).json()["sub"] == sub

    # narrowing scope on refresh is allowed, widening is not
    narrowed = client.refresh_token(refresh_token=new["refresh_token"], scope="openid offline_access")
    assert set(narrowed["scope"].split()) == {"openid", "offline_access"}
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=narrowed["refresh_token"], scope="openid offline_access phone")
    assert e.value.error == "invalid_scope"


def test_reused_refresh_token_revokes_the_family(server, metadata):
    client = public_client(metadata)
    token, _, _ = sign_in(server, metadata, client)
    old = token["refresh_token"]
    new = client.refresh_token(refresh_token=old)["refresh_token"]
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=old)
    assert e.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=new)
    assert e.value.error == "invalid_grant"


def test_revoke_refresh_token_then_refresh_fails(server, metadata):
    client = public_client(metadata)
    token, _, _ = sign_in(server, metadata, client)
    rt = token["refresh_token"]
    r = client.revoke_token(metadata["revocation_endpoint"], token=rt, token_type_hint="refresh_token")
    assert r.status_code == 200, r.text
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=rt)
    assert e.value.error == "invalid_grant"
    # revoking the refresh token revokes its grant, access tokens included
    assert userinfo(client, metadata).status_code == 401
    # revoking again (or an unknown token) still answers 200 (RFC 7009 §2.2)
    assert client.revoke_token(metadata["revocation_endpoint"], token=rt).status_code == 200
    assert client.revoke_token(metadata["revocation_endpoint"], token="not-a-token").status_code == 200


def test_revoke_access_token(server, metadata):
    client = public_client(metadata)
    token, _, _ = sign_in(server, metadata, client)
    assert userinfo(client, metadata).status_code == 200
    r = client.revoke_token(metadata["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token")
    assert r.status_code == 200
    assert userinfo(client, metadata).status_code == 401
    # only that access token: the refresh token still works
    new = client.refresh_token(refresh_token=token["refresh_token"])
    assert userinfo(client, metadata).status_code == 200
    assert new["access_token"] != token["access_token"]


# ------------------------------------------------------------------ sessions


def test_prompt_none_uses_the_provider_session(server, metadata, key_set):
    browser = requests.Session()
    client = public_client(metadata, scope="openid")
    token, _, first = sign_in(server, metadata, client, browser=browser)
    sub = jwt.decode(token["id_token"], key_set)["sub"]

    again = public_client(metadata, scope="openid")
    verifier = generate_token(48)
    url, state = again.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, prompt="none")
    r = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(PUBLIC_REDIRECT), r.headers["Location"]
    silent = again.fetch_token(authorization_response=r.headers["Location"], code_verifier=verifier, state=state)
    assert userinfo(again, metadata).json()["sub"] == sub
    assert silent["access_token"] != token["access_token"]

    # without the cookie: login_required
    r = requests.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    q = query_params(r.headers["Location"])
    assert q["error"] == "login_required" and q["state"] == state


def _silent_authorize(browser, metadata, **params):
    client = public_client(metadata, scope="openid")
    url, _ = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=generate_token(48), **params)
    r = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302
    return r.headers["Location"]


def test_prompt_login_and_stale_max_age_force_a_new_login(server, metadata):
    browser = requests.Session()
    sign_in(server, metadata, public_client(metadata, scope="openid"), browser=browser)
    assert "code=" in _silent_authorize(browser, metadata)
    assert "code=" in _silent_authorize(browser, metadata, max_age="60")
    assert "/login/" in _silent_authorize(browser, metadata, prompt="login")
    time.sleep(2.1)
    assert "/login/" in _silent_authorize(browser, metadata, max_age="1")
    assert "/login/" in _silent_authorize(browser, metadata, max_age="0")
    assert query_params(_silent_authorize(browser, metadata, prompt="none", max_age="1"))["error"] == "login_required"


def test_max_age_zero_always_forces_a_new_login(server, metadata):
    # Start just after a second boundary so the sign-in and the next
    # authorize fall in the same second of the provider's clock.
    time.sleep(1.02 - (time.time() % 1))
    browser = requests.Session()
    sign_in(server, metadata, public_client(metadata, scope="openid"), browser=browser)
    location = _silent_authorize(browser, metadata, max_age="0")
    assert "/login/" in location, f"max_age=0 was answered without a login: {location}"


def test_logout_ends_session_and_revokes_its_grants(server, metadata):
    browser = requests.Session()
    client = public_client(metadata)
    token, _, _ = sign_in(server, metadata, client, browser=browser)
    state = secrets.token_urlsafe(8)
    r = browser.get(metadata["end_session_endpoint"], params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://127.0.0.1/logged-out", "state": state,
    }, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302
    assert r.headers["Location"] == f"http://127.0.0.1/logged-out?state={state}"
    assert "idflow_session=;" in r.headers.get("Set-Cookie", "")
    with pytest.raises(OAuthError):
        client.refresh_token(refresh_token=token["refresh_token"])
    assert userinfo(client, metadata).status_code == 401
    url, _ = public_client(metadata, scope="openid").create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48), prompt="none")
    r = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert query_params(r.headers["Location"])["error"] == "login_required"


# ------------------------------------------------------------------ acr


def test_acr_names_the_flow_only_when_it_verified_the_user(server, metadata, key_set):
    assert metadata["acr_values_supported"] == ["sign-up-or-in", "claims", "password"]
    # e2e may run sign-up-or-in (its default), which only looks a user up
    # by the email typed: no acr, and Authlib refuses the token to an RP that
    # requires one.
    client = public_client(metadata, scope="openid email")
    token, nonce, _ = sign_in(server, metadata, client)
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert "acr" not in idt
    with pytest.raises(MissingClaimError):
        validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce, acr="sign-up-or-in")
    assert "acr" not in decode_access_token(metadata, key_set, token["access_token"])
    # acr_values=password runs e2e's password flow, which checks one:
    # Authlib checks acr (essential, this value) with the signature and the rest.
    email = new_email()
    answer = {"interactionId": "signUp", "input": {"email": email, "password": "correct horse battery staple"}}
    token, nonce, _ = sign_in(server, metadata, public_client(metadata, scope="openid email"), email,
                              answer=answer, acr_values="password")
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce,
                            access_token=token["access_token"], acr="password")
    assert (idt["acr"], idt["amr"]) == ("password", ["pwd"])
    with pytest.raises(CLAIM_ERRORS):
        validate_id_token(metadata, key_set, token["id_token"], client_id=PUBLIC_CLIENT, nonce=nonce, acr="claims")
    assert decode_access_token(metadata, key_set, token["access_token"])["acr"] == "password"


def test_an_essential_acr_a_flow_cannot_give_is_a_failed_sign_in(server, metadata):
    # OIDC Core §5.5.1.1: sign-up-or-in verifies nothing, so it cannot give
    # an essential acr; the RP receives the error, never a code.
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["sign-up-or-in"]}}})
    client = public_client(metadata, scope="openid")
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=generate_token(48),
                                                 claims=essential)
    result = login(server, url)
    assert result.params["error"] == "unmet_authentication_requirements"
    assert result.params["state"] == state and "code" not in result.params
    with pytest.raises(MissingCodeException):
        parse_authorization_code_response(result.callback_url, state=state)


def test_acr_values_run_another_flow_of_the_application(server, metadata, key_set):
    # web-post may run sign-up-or-in (its default), claims and password.
    client = session_for(metadata, POST_CLIENT, POST_SECRET, redirect_uri=POST_REDIRECT,
                         scope="openid email descope.custom_claims", token_endpoint_auth_method="client_secret_post")
    email = new_email()
    token, nonce, _ = sign_in(server, metadata, client, email, acr_values="claims")
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=POST_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert (idt["plan"], idt["loginEmail"]) == ("pro", email)  # set by the claims flow only
    assert "acr" not in idt  # the claims flow verifies nothing either
    # Without acr_values, the default flow (sign-up-or-in) runs: no plan.
    plain = session_for(metadata, POST_CLIENT, POST_SECRET, redirect_uri=POST_REDIRECT,
                        scope="openid email descope.custom_claims", token_endpoint_auth_method="client_secret_post")
    token, nonce, _ = sign_in(server, metadata, plain)
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=POST_CLIENT, nonce=nonce)
    assert "plan" not in idt and "acr" not in idt


def test_claims_parameter_asks_for_single_claims(server, metadata, key_set):
    # OIDC Core §5.5: name as an essential userinfo claim, email and a custom
    # claim in the id_token; with scope openid alone nothing else is released.
    assert metadata["claims_parameter_supported"] is True
    client = session_for(metadata, WEB_CLIENT, WEB_SECRET, redirect_uri=WEB_REDIRECT, scope="openid")
    email = new_email()
    asked = {"userinfo": {"name": {"essential": True}, "address": None},
             "id_token": {"email": None, "plan": {"essential": True}}}
    token, nonce, _ = sign_in(server, metadata, client, email, claims=json.dumps(asked))
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=WEB_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert (idt["email"], idt["plan"]) == (email, "pro")
    assert "name" not in idt and "address" not in idt
    info = userinfo(client, metadata).json()
    assert set(info) == {"sub", "name", "address"}, info
    assert info["address"]["locality"] == "Paris" and info["name"] == email
    # The refreshed id_token answers the same request.
    refreshed = client.refresh_token(refresh_token=token["refresh_token"])
    assert jwt.decode(refreshed["id_token"], key_set)["email"] == email


# ------------------------------------------------------------------ client_credentials


def test_client_credentials_with_access_key(server, metadata, key_set):
    client = OAuth2Session(ACCESS_KEY_ID, ACCESS_KEY_SECRET, token_endpoint_auth_method="client_secret_basic",
                           default_timeout=HTTP_TIMEOUT)
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == {"reports:read", "reports:write"}
    assert "refresh_token" not in token and "id_token" not in token
    at = decode_access_token(metadata, key_set, token["access_token"])
    assert at["sub"] == ACCESS_KEY_ID
    assert at["client_id"] == ACCESS_KEY_ID
    assert at["team"] == "data"

    narrow = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", scope="reports:read")
    assert narrow["scope"] == "reports:read"

    # not an OpenID token: userinfo refuses it
    r = client.get(metadata["userinfo_endpoint"])
    assert r.status_code == 403
    assert "insufficient_scope" in r.headers["WWW-Authenticate"]


def test_client_credentials_refusals(server, metadata):
    bad = OAuth2Session(ACCESS_KEY_ID, "wrong-secret-0123456789", token_endpoint_auth_method="client_secret_basic")
    with pytest.raises(OAuthError) as e:
        bad.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert e.value.error == "invalid_client"
    good = OAuth2Session(ACCESS_KEY_ID, ACCESS_KEY_SECRET, token_endpoint_auth_method="client_secret_basic")
    with pytest.raises(OAuthError) as e:
        good.fetch_token(metadata["token_endpoint"], grant_type="client_credentials", scope="reports:delete")
    assert e.value.error == "invalid_scope"


# ------------------------------------------------------------------ confidential clients


def test_confidential_client_secret_basic_with_custom_claims(server, metadata, key_set):
    client = session_for(metadata, WEB_CLIENT, WEB_SECRET, redirect_uri=WEB_REDIRECT,
                         scope="openid email profile descope.custom_claims")
    assert client.token_endpoint_auth_method == "client_secret_basic"
    email = new_email()
    token, nonce, result = sign_in(server, metadata, client, email)
    assert result.flow_response["status"] == "completed"
    # a confidential client gets a refresh token without offline_access
    assert token.get("refresh_token")

    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=WEB_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert idt["plan"] == "pro"
    assert idt["loginEmail"] == email
    assert "email" not in idt and "given_name" not in idt  # at userinfo (OIDC Core §5.4)
    at = decode_access_token(metadata, key_set, token["access_token"])
    assert at["client_id"] == WEB_CLIENT
    assert (at["plan"], at["loginEmail"]) == ("pro", email)
    info = userinfo(client, metadata).json()
    assert (info["plan"], info["loginEmail"], info["email"]) == ("pro", email, email)
    # The claims flow gives its users every standard profile claim.
    assert (info["given_name"], info["family_name"], info["nickname"], info["birthdate"], info["locale"]) == (
        "Ann", "Example", "annie", "1990-04-01", "fr-FR")

    refreshed = client.refresh_token(refresh_token=token["refresh_token"])
    at2 = decode_access_token(metadata, key_set, refreshed["access_token"])
    assert (at2["plan"], at2["loginEmail"]) == ("pro", email)

    r = client.revoke_token(metadata["revocation_endpoint"], token=refreshed["refresh_token"])
    assert r.status_code == 200
    with pytest.raises(OAuthError):
        client.refresh_token(refresh_token=refreshed["refresh_token"])


def test_confidential_client_may_skip_pkce(server, metadata, key_set):
    client = OAuth2Session(WEB_CLIENT, WEB_SECRET, scope="openid", redirect_uri=WEB_REDIRECT,
                           token_endpoint=metadata["token_endpoint"], default_timeout=HTTP_TIMEOUT)
    nonce = generate_token(16)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], nonce=nonce)
    assert "code_challenge" not in url
    result = login(server, url)
    token = client.fetch_token(authorization_response=result.callback_url, state=state)
    validate_id_token(metadata, key_set, token["id_token"], client_id=WEB_CLIENT, nonce=nonce,
                      access_token=token["access_token"])
    # a verifier for a request that had no challenge is refused
    url, state = client.create_authorization_url(metadata["authorization_endpoint"])
    result = login(server, url)
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=result.callback_url, state=state, code_verifier=generate_token(48))
    assert e.value.error == "invalid_grant"


def test_custom_claims_need_their_scope(server, metadata, key_set):
    client = session_for(metadata, WEB_CLIENT, WEB_SECRET, redirect_uri=WEB_REDIRECT, scope="openid email")
    token, nonce, _ = sign_in(server, metadata, client)
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=WEB_CLIENT, nonce=nonce)
    assert "plan" not in idt and "loginEmail" not in idt
    assert "plan" not in userinfo(client, metadata).json()


def test_confidential_client_wrong_secret_or_method(server, metadata):
    wrong = session_for(metadata, WEB_CLIENT, "web-secret-wrong-wrong-wrong", redirect_uri=WEB_REDIRECT, scope="openid")
    with pytest.raises(OAuthError) as e:
        sign_in(server, metadata, wrong)
    assert e.value.error == "invalid_client"
    # web is registered for client_secret_basic; client_secret_post is refused
    post = session_for(metadata, WEB_CLIENT, WEB_SECRET, redirect_uri=WEB_REDIRECT, scope="openid",
                       token_endpoint_auth_method="client_secret_post")
    with pytest.raises(OAuthError) as e:
        sign_in(server, metadata, post)
    assert e.value.error == "invalid_client"


def test_confidential_client_secret_post(server, metadata, key_set):
    client = session_for(metadata, POST_CLIENT, POST_SECRET, redirect_uri=POST_REDIRECT, scope="openid email",
                         token_endpoint_auth_method="client_secret_post",
                         revocation_endpoint_auth_method="client_secret_post")
    email = new_email()
    token, nonce, _ = sign_in(server, metadata, client, email)
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=POST_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert "email" not in idt
    assert userinfo(client, metadata).json()["email"] == email
    new = client.refresh_token(refresh_token=token["refresh_token"])
    assert new["refresh_token"] != token["refresh_token"]
    assert client.revoke_token(metadata["revocation_endpoint"], token=new["refresh_token"]).status_code == 200
    with pytest.raises(OAuthError):
        client.refresh_token(refresh_token=new["refresh_token"])
    # client_secret_basic is refused for a client_secret_post client
    basic = session_for(metadata, POST_CLIENT, POST_SECRET, redirect_uri=POST_REDIRECT, scope="openid")
    with pytest.raises(OAuthError) as e:
        sign_in(server, metadata, basic)
    assert e.value.error == "invalid_client"


# ------------------------------------------------------------------ private_key_jwt


def test_private_key_jwt_client(server, metadata, key_set, partner_key):
    client = partner_client(metadata, partner_key)
    email = new_email()
    # The claims parameter (OIDC Core §5.5) asks for the email in the id_token.
    token, nonce, _ = sign_in(server, metadata, client, email, claims=json.dumps({"id_token": {"email": None}}))
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=PARTNER_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert idt["email"] == email
    assert decode_access_token(metadata, key_set, token["access_token"])["client_id"] == PARTNER_CLIENT
    # each request signs a fresh assertion (new jti): refresh twice, then revoke
    new = client.refresh_token(refresh_token=token["refresh_token"])
    newer = client.refresh_token(refresh_token=new["refresh_token"])
    r = client.revoke_token(metadata["revocation_endpoint"], token=newer["refresh_token"])
    assert r.status_code == 200
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=newer["refresh_token"])
    assert e.value.error == "invalid_grant"


def test_signed_request_object_carries_the_parameters(server, metadata, key_set, partner_key):
    # OIDC Core §6.1: the partner signs its authorization parameters with its
    # registered key (joserfc makes the JWT; authlib drives the rest).
    from joserfc import jwt as joserfc_jwt
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    assert metadata["request_parameter_supported"] is True
    assert "ES256" in metadata["request_object_signing_alg_values_supported"]
    client = partner_client(metadata, partner_key)
    state, nonce, verifier = generate_token(20), generate_token(20), generate_token(64)
    params = {
        "iss": PARTNER_CLIENT, "aud": metadata["issuer"], "client_id": PARTNER_CLIENT, "response_type": "code",
        "redirect_uri": PARTNER_REDIRECT, "scope": "openid", "state": state, "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
        "claims": {"id_token": {"email": None}}, "exp": int(time.time()) + 120,
    }
    header = {"alg": "ES256", "kid": "partner-key-1"}
    request = joserfc_jwt.encode(header, params, partner_key)
    url = f"{metadata['authorization_endpoint']}?{urlencode({'client_id': PARTNER_CLIENT, 'request': request})}"
    email = new_email()
    result = login(server, url, email)
    assert result.params["state"] == state
    token = client.fetch_token(authorization_response=result.callback_url, code_verifier=verifier, state=state)
    idt = validate_id_token(metadata, key_set, token["id_token"], client_id=PARTNER_CLIENT, nonce=nonce,
                            access_token=token["access_token"])
    assert idt["email"] == email  # asked for by the object's claims parameter

    # Another key's signature, or an object for another audience: refused
    # with invalid_request_object at the query's registered redirect URI.
    other = ECKey.generate_key("P-256")
    for jwt_, why in [(joserfc_jwt.encode(header, params, other), "another key"),
                      (joserfc_jwt.encode(header, {**params, "aud": "https://elsewhere.example"}, partner_key), "audience")]:
        q = {"client_id": PARTNER_CLIENT, "response_type": "code", "redirect_uri": PARTNER_REDIRECT, "state": "q", "request": jwt_}
        r = requests.get(f"{metadata['authorization_endpoint']}?{urlencode(q)}", allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert r.status_code == 302, why
        back = parse_qs(r.headers["location"].split("?", 1)[1])
        assert (back["error"], back["state"]) == (["invalid_request_object"], ["q"]), why


def test_private_key_jwt_refusals(server, metadata, partner_key):
    token_endpoint = metadata["token_endpoint"]

    def post(assertion):
        return requests.post(token_endpoint, data={
            "grant_type": "authorization_code", "code": "nope", "redirect_uri": PARTNER_REDIRECT,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }, timeout=HTTP_TIMEOUT)

    one = private_key_jwt_sign(partner_key, client_id=PARTNER_CLIENT, token_endpoint=token_endpoint, alg="ES256",
                               expires_in=120)
    first = post(one)
    assert (first.status_code, first.json()["error"]) == (400, "invalid_grant")  # authenticated; the code is bogus
    again = post(one)
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")
    assert "replay" in again.json()["error_description"]

    # a key that is not the registered one
    other = ECKey.generate_key("P-256", parameters={"kid": "partner-key-1"})
    forged = post(private_key_jwt_sign(other, client_id=PARTNER_CLIENT, token_endpoint=token_endpoint, alg="ES256",
                                       expires_in=120))
    assert (forged.status_code, forged.json()["error"]) == (401, "invalid_client")

    # a wrong audience
    wrong_aud = post(private_key_jwt_sign(partner_key, client_id=PARTNER_CLIENT, token_endpoint="https://elsewhere/token",
                                          alg="ES256", expires_in=120))
    assert (wrong_aud.status_code, wrong_aud.json()["error"]) == (401, "invalid_client")

    # a partner without an assertion
    bare = requests.post(token_endpoint, data={"grant_type": "authorization_code", "code": "nope",
                                               "redirect_uri": PARTNER_REDIRECT, "client_id": PARTNER_CLIENT},
                         timeout=HTTP_TIMEOUT)
    assert (bare.status_code, bare.json()["error"]) == (401, "invalid_client")


def test_authlib_default_private_key_jwt_is_accepted(server, metadata, partner_key):
    """Authlib's stock PrivateKeyJWT asserts exp = iat + 3600; idflow accepts
    assertions of up to an hour (remembering each jti for that long)."""
    client = partner_client(metadata, partner_key, auth_cls=PrivateKeyJWT)
    token, _, _ = sign_in(server, metadata, client)
    assert token["token_type"] == "Bearer"
