"""Authenticator apps through tests/flows/totp.json, with codes computed by
pyotp (an authenticator's own library) from the enrollment idflow shows:
enrollment on the first sign-in, a code once, a recovery code once, the
lockout, and the users API. Node and Rust run the same flow."""

import json
import pathlib
import time

import pyotp
import pytest

import idflow

FLOWS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "flows"
PASSWORD = "a long enough secret"


@pytest.fixture
def engine():
    doc = json.loads((FLOWS / "password-project.json").read_text())
    doc["flows"] = ["totp.json"]
    e = idflow.FlowEngine(json.dumps(doc), key=idflow.Key.generate("ES256"), base_dir=str(FLOWS))
    e.set_password(e.create_user("ann@example.com")["userId"], PASSWORD)
    return e


def sign_in(engine):
    s = engine.start("totp")
    r = engine.next(s["executionId"], "welcome", "submit", {"email": "ann@example.com", "password": PASSWORD})
    return s["executionId"], r


def amr(done):
    return idflow.jwt.decode_unverified(done["authInfo"]["sessionJwt"])["claims"]["amr"]


def test_an_app_enrolled_by_its_uri_signs_in_once_per_code(engine):
    execution, scan = sign_in(engine)
    assert scan["stepId"] == "scan", scan
    shown = scan["screen"]["totp"]
    app = pyotp.parse_uri(shown["uri"])  # what an app does with the QR code
    assert isinstance(app, pyotp.TOTP) and app.secret == shown["secret"]
    assert app.issuer == "local" and app.name == "ann@example.com"
    assert shown["qrSvg"].startswith("<?xml") and "<svg" in shown["qrSvg"]
    now = time.time()
    wrong = "000000" if app.at(now) != "000000" else "000001"
    r = engine.next(execution, "scan", "submit", {"code": wrong})
    assert r["stepId"] == "scan" and r["error"]["code"] == "invalid_code"
    recovery = engine.next(execution, "scan", "submit", {"code": app.at(now)})
    codes = recovery["screen"]["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    done = engine.next(execution, "recovery", "continue", {})
    assert done["status"] == "completed" and amr(done) == ["pwd", "otp", "mfa"]
    user_id = engine.search_users(text="ann@")[0]["userId"]
    assert engine.has_totp(user_id) and engine.recovery_codes_left(user_id) == 10

    execution, ask = sign_in(engine)
    assert ask["stepId"] == "ask-code"
    assert engine.next(execution, "ask-code", "submit", {"code": app.at(now)})["error"]["code"] == "invalid_code"
    later = app.at(now + 30)
    done = engine.next(execution, "ask-code", "submit", {"code": later})
    assert done["status"] == "completed", done
    execution, _ = sign_in(engine)
    assert engine.next(execution, "ask-code", "submit", {"code": later})["error"]["code"] == "invalid_code"
    done = engine.next(execution, "ask-code", "submit", {"code": codes[5].lower()})
    assert done["status"] == "completed" and engine.recovery_codes_left(user_id) == 9

    engine.remove_totp(user_id)
    assert not engine.has_totp(user_id)
    _, scan = sign_in(engine)
    assert scan["stepId"] == "scan", "with the app removed, the next sign-in enrolls again"
    with pytest.raises(idflow.IdflowError) as e:
        engine.has_totp("U-nobody")
    assert e.value.code == "user_not_found"


def test_guessing_codes_locks_the_user(engine):
    execution, scan = sign_in(engine)
    app = pyotp.parse_uri(scan["screen"]["totp"]["uri"])
    engine.next(execution, "scan", "submit", {"code": app.now()})
    engine.next(execution, "recovery", "continue", {})
    execution, _ = sign_in(engine)
    answers = [engine.next(execution, "ask-code", "submit", {"code": "99999"})["error"]["code"] for _ in range(3)]
    assert answers == ["invalid_code", "invalid_code", "user_locked"]
    r = engine.next(execution, "ask-code", "submit", {"code": app.at(time.time() + 30)})
    assert r["error"]["code"] == "user_locked"
