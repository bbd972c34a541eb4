"""Every shared RFC vector, through the Python binding."""

import base64
import json

import idflow
import pytest

from conftest import load_vectors

JWS_FILES = ["jws_rfc7515.json", "jws_rfc7520.json", "jws_rfc8037.json", "jws_rfc7797.json"]
ANY_KEY = idflow.Key.from_secret(b"k" * 64)


def jws_vectors():
    for name in JWS_FILES:
        for vec in load_vectors(name)["vectors"]:
            yield pytest.param(vec, id=vec["id"])


def is_json_object(text):
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@pytest.mark.parametrize("vec", list(jws_vectors()))
def test_jws_vector(vec):
    alg = vec["alg"]
    if vec["expected"] == "reject":
        with pytest.raises(idflow.TokenError) as info:
            idflow.jwt.verify_jws(vec["compact"], ANY_KEY, algorithms=["HS256"])
        assert info.value.code == "unsupported_algorithm"
        return
    key = idflow.Key.from_jwk(vec["key"])
    if vec["expected"] == "reject_unless_b64_supported":
        with pytest.raises(idflow.TokenError) as info:
            idflow.jwt.verify_jws(vec["compact"], key, algorithms=[alg])
        assert info.value.code == "invalid_token"
        return
    assert vec["expected"] == "valid"
    keys = [key] + ([idflow.Key.from_jwk(vec["public_key"])] if vec.get("public_key") else [])
    if vec.get("jwk_thumbprint_sha256"):
        assert key.thumbprint() == vec["jwk_thumbprint_sha256"]
    compact = vec.get("compact")
    if compact and not vec.get("detached_payload"):
        for k in keys:
            header, payload = idflow.jwt.verify_jws(compact, k, algorithms=[alg])
            assert payload == vec["payload"].encode("utf-8")
            assert header["alg"] == alg
        # The token is signed by this key, so a different allowed list refuses it.
        with pytest.raises(idflow.TokenError) as info:
            idflow.jwt.verify_jws(compact, key, algorithms=["HS512" if alg != "HS512" else "HS256"])
        assert info.value.code == "unsupported_algorithm"
        # JWT level: claims payloads verify with a pinned clock, others are refused.
        if is_json_object(vec["payload"]):
            claims = json.loads(vec["payload"])
            now = claims["exp"] - 10 if "exp" in claims else None
            required = ["exp"] if "exp" in claims else []
            got = idflow.jwt.verify(compact, keys[-1], algorithms=[alg], now=now, required_claims=required)
            assert got == claims
            if "exp" in claims:
                with pytest.raises(idflow.TokenError) as info:
                    idflow.jwt.verify(compact, keys[-1], algorithms=[alg])
                assert info.value.code == "expired_token"
        else:
            with pytest.raises(idflow.TokenError) as info:
                idflow.jwt.verify(compact, keys[-1], algorithms=[alg], required_claims=[])
            assert info.value.code == "invalid_token"
    signing_input = vec["signing_input"].encode("utf-8")
    signature = b64u(vec["signature_b64u"])
    # The raw primitive checks every entry, also those with no compact form
    # (alg only in the unprotected header) and detached payloads.
    for k in keys:
        k.verify_bytes(alg, signing_input, signature)
    with pytest.raises(idflow.TokenError) as info:
        keys[-1].verify_bytes(alg, signing_input + b"x", signature)
    assert info.value.code == "invalid_signature"
    if vec["deterministic"]:
        assert key.sign_bytes(alg, signing_input) == signature


def b64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("vec", load_vectors("jwk_thumbprint_rfc7638.json")["vectors"], ids=lambda v: v["id"])
def test_thumbprint_vector(vec):
    key = idflow.Key.from_jwk(vec["jwk"])
    assert key.thumbprint() == vec["thumbprint_sha256"]
    # Optional members do not change the thumbprint.
    jwk = dict(vec["jwk"], kid="other", use="sig")
    assert idflow.Key.from_jwk(jwk).thumbprint() == vec["thumbprint_sha256"]
