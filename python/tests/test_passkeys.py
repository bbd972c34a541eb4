"""Passkeys through the flow API (tests/flows/passkey.json): the ceremony
options a page or an app hands to WebAuthn, and the refusals. The full
ceremonies, with a real (virtual) authenticator, run in Chromium
(tests/e2e/node/test/passkey-login.test.js); Node checks the same here."""

import json
import pathlib

import pytest

import idflow

FLOWS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "flows"


@pytest.fixture
def engine():
    doc = json.loads((FLOWS / "password-project.json").read_text())
    doc["flows"] = ["passkey.json"]
    doc["baseUrl"] = "https://id.example.com"
    return idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))


def test_registration_options_ask_for_a_discoverable_verified_credential(engine):
    s = engine.start("passkey")
    up = engine.next(s["executionId"], "welcome", "signUp", {"email": "pia@example.com", "password": "a long enough secret"})
    create = engine.next(s["executionId"], up["stepId"], "add", {})
    assert create["stepId"] == "create"
    ceremony = create["screen"]["passkey"]
    assert ceremony["ceremony"] == "create"
    options = ceremony["publicKey"]
    assert options["rp"]["id"] == "id.example.com"
    assert options["user"]["name"] == "pia@example.com" and options["user"]["id"]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert len(options["challenge"]) >= 43
    user_id = engine.search_users(text="pia@")[0]["userId"]
    # A forged answer is refused, shown on the same screen, and stores nothing.
    r = engine.next(s["executionId"], "create", "create", {"credential": json.dumps({"id": "x", "rawId": "eA", "type": "public-key", "response": {"clientDataJSON": "e30", "attestationObject": "oA"}})})
    assert r["stepId"] == "create" and r["error"]["code"] == "invalid_credentials", r
    assert engine.list_passkeys(user_id) == []
    r = engine.next(s["executionId"], "create", "create", {"credential": "not json"})
    assert r["error"]["code"] in ("invalid_credentials", "expired_code")


def test_sign_in_options_are_username_less_and_bad_answers_have_codes(engine):
    s = engine.start("passkey")
    get = engine.next(s["executionId"], "welcome", "usePasskey", {})
    ceremony = get["screen"]["passkey"]
    assert ceremony["ceremony"] == "get"
    assert ceremony["publicKey"]["rpId"] == "id.example.com"
    assert ceremony["publicKey"].get("allowCredentials", []) == [], "username-less: the passkey names its user"
    assert "mediation" not in ceremony["publicKey"]
    r = engine.next(s["executionId"], "get", "use", {"credential": "{}"})
    assert r["stepId"] == "get" and r["error"]["code"] == "invalid_credentials"
    assert r["screen"]["passkey"]["publicKey"]["challenge"] != ceremony["publicKey"]["challenge"], "a new ceremony, a new challenge"
    r = engine.next(s["executionId"], "get", "use", {})
    assert r["error"]["code"] == "invalid_credentials"


def test_users_api_lists_and_removes_passkeys(engine):
    user = engine.create_user("kai@example.com")
    assert engine.list_passkeys(user["userId"]) == []
    with pytest.raises(idflow.IdflowError) as e:
        engine.remove_passkey(user["userId"], "no-such-passkey")
    assert e.value.code == "invalid_request"
    with pytest.raises(idflow.IdflowError) as e:
        engine.list_passkeys("U-nobody")
    assert e.value.code == "user_not_found"


def test_passkeys_need_a_base_url_a_browser_takes_as_an_rp_id():
    doc = json.loads((FLOWS / "password-project.json").read_text())
    doc["flows"] = ["passkey.json"]
    doc["baseUrl"] = "http://127.0.0.1:8080"
    engine = idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))
    s = engine.start("passkey")
    r = engine.next(s["executionId"], "welcome", "usePasskey", {})
    assert r["status"] == "failed" and r["error"]["code"] == "config", r
