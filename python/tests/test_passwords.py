"""Passwords: the shared flows of tests/flows (password.json,
change-password.json) as Node runs them too, and hashes that argon2-cffi and
bcrypt make and check."""

import base64
import hashlib
import pathlib

import argon2
import bcrypt
import pytest

import idflow

FLOWS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "flows"
PASSWORD = "correct horse battery"


@pytest.fixture
def engine():
    return idflow.FlowEngine.from_file(str(FLOWS / "password-project.json"), key=idflow.Key.generate("ES256"))


def answer(engine, interaction, email, password):
    s = engine.start("password")
    return engine.next(s["executionId"], "welcome", interaction, {"email": email, "password": password})


def shown(r):
    """The error a failed step showed on the screen the flow went back to."""
    assert r["status"] == "waiting" and r["stepId"] == "welcome", r
    return r["error"]["code"]


def amr(r):
    return idflow.jwt.decode_unverified(r["authInfo"]["sessionJwt"])["claims"].get("amr")


def test_sign_up_sign_in_and_every_refusal_has_its_code(engine):
    up = answer(engine, "signUp", "ann@example.com", PASSWORD)
    assert up["status"] == "completed" and amr(up) == ["pwd"]
    assert shown(answer(engine, "signUp", "ANN@example.com", PASSWORD)) == "user_exists"
    weak = answer(engine, "signUp", "bob@example.com", "password123")
    assert shown(weak) == "weak_password" and "common" in weak["error"]["message"]
    assert shown(answer(engine, "signUp", "bob@example.com", "bob@example.com")) == "weak_password"
    assert engine.search_users(text="bob") == [], "a refused sign-up creates nobody"
    signed_in = answer(engine, "signIn", "Ann@Example.com", PASSWORD)
    assert signed_in["status"] == "completed" and amr(signed_in) == ["pwd"]
    wrong = answer(engine, "signIn", "ann@example.com", "correct horse batterz")
    unknown = answer(engine, "signIn", "nobody@example.com", PASSWORD)
    assert shown(wrong) == shown(unknown) == "invalid_credentials"
    assert wrong["error"]["message"] == unknown["error"]["message"], "an unknown login id looks like a wrong password"
    user = engine.search_users(text="ann")[0]
    assert "password" not in str(user).lower() and "argon2" not in str(user)


def test_lockout_counts_known_and_unknown_login_ids(engine):
    answer(engine, "signUp", "ann@example.com", PASSWORD)
    for login in ("ann@example.com", "nobody@example.com"):
        codes = [shown(answer(engine, "signIn", login, f"wrong password {i}")) for i in range(3)]
        assert codes == ["invalid_credentials", "invalid_credentials", "user_locked"], login
        assert shown(answer(engine, "signIn", login, PASSWORD)) == "user_locked"
    engine.unlock_login_id("ann@example.com")
    assert answer(engine, "signIn", "ann@example.com", PASSWORD)["status"] == "completed"


def test_change_password_flow(engine):
    answer(engine, "signUp", "ann@example.com", PASSWORD)

    def change(current, new):
        s = engine.start("change-password")
        return engine.next(s["executionId"], "form", "submit", {"email": "ann@example.com", "password": current, "newPassword": new})

    assert change("not my password", "a brand new secret")["error"]["code"] == "invalid_credentials"
    assert change(PASSWORD, "qwertyuiop")["error"]["code"] == "weak_password"
    assert change(PASSWORD, "a brand new secret")["status"] == "completed"
    assert shown(answer(engine, "signIn", "ann@example.com", PASSWORD)) == "invalid_credentials"
    assert answer(engine, "signIn", "ann@example.com", "a brand new secret")["status"] == "completed"


def test_idflow_hashes_are_argon2id_that_argon2_cffi_checks():
    h = idflow.password.hash(PASSWORD, memory_kib=8192, iterations=1)
    assert h.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert argon2.PasswordHasher().verify(h, PASSWORD)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(h, "correct horse batterz")
    default = idflow.password.hash(PASSWORD)
    assert default.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), "OWASP's cost by default"
    assert not argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).check_needs_rehash(default)


@pytest.mark.parametrize("kind", ["argon2id", "argon2i", "argon2d", "bcrypt-2b", "bcrypt-2a", "bcrypt-2y", "pbkdf2-phc", "pbkdf2-django"])
def test_hashes_from_other_systems_verify_import_and_upgrade(engine, kind):
    secret = PASSWORD.encode()
    if kind.startswith("argon2"):
        t = {"argon2id": argon2.Type.ID, "argon2i": argon2.Type.I, "argon2d": argon2.Type.D}[kind]
        theirs = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2, type=t).hash(PASSWORD)
    elif kind.startswith("bcrypt"):
        prefix = kind.split("-")[1]
        theirs = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=4, prefix=b"2b" if prefix == "2y" else prefix.encode())).decode()
        if prefix == "2y":
            theirs = "$2y$" + theirs[4:]
    elif kind == "pbkdf2-phc":
        salt = b"0123456789abcdef"
        out = hashlib.pbkdf2_hmac("sha256", secret, salt, 1000)
        b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
        theirs = f"$pbkdf2-sha256$i=1000,l=32${b64(salt)}${b64(out)}"
    else:
        out = hashlib.pbkdf2_hmac("sha256", secret, b"saltysalt", 1000)
        theirs = f"pbkdf2_sha256$1000$saltysalt${base64.b64encode(out).decode()}"
    assert idflow.password.verify(PASSWORD, theirs)
    assert not idflow.password.verify("correct horse batterz", theirs)
    user = engine.create_user("old@example.com")
    engine.import_password_hash(user["userId"], theirs)
    assert engine.has_password(user["userId"])
    assert answer(engine, "signIn", "old@example.com", PASSWORD)["status"] == "completed"
    assert answer(engine, "signIn", "old@example.com", PASSWORD)["status"] == "completed", "the upgraded hash works"


def test_malformed_hashes_and_policy_refusals_raise_with_codes(engine):
    for bad in ["", "plain text", "$2b$99$abcdefghijklmnopqrstuu", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "pbkdf2_sha256$10$s$aGFzaA=="]:
        with pytest.raises(idflow.IdflowError) as e:
            idflow.password.verify(PASSWORD, bad)
        assert e.value.code == "invalid_request", bad
    user = engine.create_user("ann@example.com")
    assert not engine.has_password(user["userId"])
    with pytest.raises(idflow.FlowError) as e:
        engine.set_password(user["userId"], "short")
    assert e.value.code == "weak_password"
    engine.set_password(user["userId"], PASSWORD)
    assert answer(engine, "signIn", "ann@example.com", PASSWORD)["status"] == "completed"
    engine.remove_password(user["userId"])
    assert shown(answer(engine, "signIn", "ann@example.com", PASSWORD)) == "invalid_credentials"
    with pytest.raises(idflow.IdflowError) as e:
        engine.import_password_hash(user["userId"], "$1$md5$nope")
    assert e.value.code == "invalid_request"
    with pytest.raises(idflow.FlowError) as e:
        engine.has_password("U-nobody")
    assert e.value.code == "user_not_found"
