import time

import idflow
import pytest
from idflow import jwt

ALGS = list(idflow.ALGORITHMS)


def future():
    return int(time.time()) + 600


@pytest.mark.parametrize("alg", ALGS)
def test_round_trip_every_algorithm(alg):
    key = idflow.Key.generate(alg)
    assert key.alg == alg and key.kid == key.thumbprint()
    claims = {"sub": "u1", "exp": future(), "nested": {"a": [1, 2.5, None, True, "x"]}}
    token = jwt.sign(claims, key)
    verifier = key if alg.startswith("HS") else key.public_key()
    assert jwt.verify(token, verifier, algorithms=[alg]) == claims
    decoded = jwt.decode_unverified(token)
    assert decoded["header"] == {"alg": alg, "typ": "JWT", "kid": key.kid}
    assert decoded["claims"] == claims


@pytest.mark.parametrize("alg", [a for a in ALGS if not a.startswith("HS")])
def test_jwk_and_pem_round_trips(alg):
    key = idflow.Key.generate(alg)
    token = jwt.sign({"exp": future()}, key)
    for private in (True, False):
        again = idflow.Key.from_jwk(key.to_jwk(private=private))
        assert again.thumbprint() == key.thumbprint()
        assert again.has_private == private
        jwt.verify(token, again, algorithms=[alg])
        pem = idflow.Key.from_pem(key.to_pem(private=private))
        assert pem.thumbprint() == key.thumbprint()
        jwt.verify(token, pem, algorithms=[alg])
    assert "d" not in key.to_jwk()


def test_keyset_selects_by_kid_without_fallback():
    keys = [idflow.Key.generate("RS256").with_kid(k) for k in "abc"]
    ks = idflow.KeySet([k.public_key() for k in keys])
    assert len(ks) == 3 and ks.kids == ["a", "b", "c"]
    for k in keys:
        assert jwt.verify(jwt.sign({"exp": future(), "k": k.kid}, k), ks, algorithms=["RS256"])["k"] == k.kid
    # kid "zz" is not in the set: refused even though key "a" would verify it.
    forged = jwt.sign({"exp": future()}, keys[0], {"kid": "zz"})
    with pytest.raises(idflow.TokenError) as info:
        jwt.verify(forged, ks, algorithms=["RS256"])
    assert info.value.code == "invalid_key"
    again = idflow.KeySet.from_jwks(ks.to_jwks())
    assert again.kids == ks.kids


def test_strict_defaults():
    key = idflow.Key.generate("HS256")
    now = int(time.time())
    cases = [
        ({"sub": "x"}, {}, "invalid_token"),  # exp required by default
        ({"exp": now - 120}, {}, "expired_token"),
        ({"exp": future(), "nbf": now + 600}, {}, "immature_token"),
        ({"exp": future(), "iat": now + 600}, {}, "immature_token"),
        ({"exp": future(), "iss": "evil"}, {"issuer": "good"}, "invalid_issuer"),
        ({"exp": future(), "aud": "other"}, {"audience": "me"}, "invalid_audience"),
        ({"exp": future(), "aud": "me"}, {}, "invalid_audience"),
        ({"exp": "tomorrow"}, {}, "invalid_token"),
    ]
    for claims, opts, code in cases:
        with pytest.raises(idflow.TokenError) as info:
            jwt.verify(jwt.sign(claims, key), key, algorithms=["HS256"], **opts)
        assert info.value.code == code, (claims, opts)
    assert jwt.verify(jwt.sign({"exp": now - 30}, key), key, algorithms=["HS256"])  # within leeway
    ok = jwt.sign({"exp": future(), "aud": ["x", "me"]}, key)
    assert jwt.verify(ok, key, algorithms=["HS256"], audience=["me"])["aud"] == ["x", "me"]


def test_algorithm_confusion_and_none_are_refused():
    rsa = idflow.Key.generate("RS256")
    with pytest.raises(idflow.TokenError) as info:
        idflow.Key.from_secret(rsa.to_pem())
    assert info.value.code == "invalid_key"
    hs = idflow.Key.generate("HS256")
    token = jwt.sign({"exp": future()}, hs)
    with pytest.raises(idflow.TokenError) as info:
        jwt.verify(token, rsa.public_key(), algorithms=["HS256", "RS256"])
    assert info.value.code == "invalid_key"
    with pytest.raises(idflow.TokenError) as info:
        jwt.verify(token, hs, algorithms=["RS256"])
    assert info.value.code == "unsupported_algorithm"
    header, payload = token.split(".")[:2]
    for none in ("eyJhbGciOiJub25lIn0", "eyJhbGciOiJOb05lIn0"):  # none, NoNe
        with pytest.raises(idflow.TokenError) as info:
            jwt.verify(f"{none}.{payload}.", hs, algorithms=["HS256"])
        assert info.value.code == "unsupported_algorithm"


def test_options_are_checked():
    key = idflow.Key.generate("HS256")
    token = jwt.sign({"exp": future()}, key)
    with pytest.raises(idflow.ConfigError):
        jwt.verify(token, key, algorithms=[])
    with pytest.raises(idflow.ConfigError):
        jwt.verify(token, key, algorithms=["HS256"], leeway=301)
    with pytest.raises(idflow.TokenError) as info:
        jwt.verify(token, key, algorithms=["HS256"], max_token_size=10)
    assert info.value.code == "invalid_token"
    with pytest.raises(TypeError):
        jwt.verify(token, key)  # algorithms is required


def test_malformed_input_never_crashes():
    key = idflow.Key.generate("ES256")
    samples = ["", ".", "..", "a.b.c", "e30.e30.", "\x00" * 10, "é.é.é", "A" * 20000]
    for s in samples:
        with pytest.raises(idflow.IdflowError):
            jwt.verify(s, key, algorithms=["ES256"])
        with pytest.raises(idflow.IdflowError):
            idflow.Key.from_jwk(s if s else "{}")
        with pytest.raises(idflow.IdflowError):
            idflow.KeySet.from_jwks(s if s else "{}")


def test_verifier_binds_key_and_options_once():
    key = idflow.Key.generate("ES256")
    v = jwt.Verifier(key.public_key(), algorithms=["ES256"], issuer="me", audience="api")
    good = jwt.sign({"exp": future(), "iss": "me", "aud": "api", "n": [1, {"x": None}]}, key)
    assert v.verify(good)["n"] == [1, {"x": None}]
    with pytest.raises(idflow.TokenError) as info:
        v.verify(jwt.sign({"exp": future(), "iss": "other", "aud": "api"}, key))
    assert info.value.code == "invalid_issuer"
    ks = jwt.Verifier(idflow.KeySet([key.public_key()]), algorithms=["ES256"], issuer="me", audience=["api"])
    assert ks.verify(good)["iss"] == "me"
    with pytest.raises(idflow.ConfigError):
        jwt.Verifier(key, algorithms=[])
    hs = idflow.Key.generate("HS256")
    assert jwt.Verifier(hs, algorithms=["HS256"]).verify(jwt.sign({"exp": future(), "big": 2**63}, hs))["big"] == 2**63
