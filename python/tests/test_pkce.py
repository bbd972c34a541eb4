import idflow
import pytest
from idflow import pkce

from conftest import load_vectors


def test_generate_defaults_and_lengths():
    pair = pkce.generate()
    assert len(pair.verifier) == 64 and pair.method == "S256"
    assert pkce.verify(pair.verifier, pair.challenge)
    assert len(pkce.generate_verifier(43)) == 43
    assert len(pkce.generate_verifier(128)) == 128
    assert pkce.generate_verifier() != pkce.generate_verifier()


@pytest.mark.parametrize("length", [0, 42, 129])
def test_bad_lengths_raise_invalid_request(length):
    with pytest.raises(idflow.OAuthError) as info:
        pkce.generate_verifier(length)
    assert info.value.code == "invalid_request"


def test_plain_needs_opt_in():
    v = "a" * 43
    with pytest.raises(idflow.OAuthError):
        pkce.verify(v, v, "plain")
    assert pkce.verify(v, v, "plain", allow_plain=True)


def test_rfc7636_vectors():
    doc = load_vectors("pkce_rfc7636.json")
    for vec in doc["vectors"]:
        method = vec["code_challenge_method"]
        plain = method == "plain"
        ok = pkce.verify(vec["code_verifier"], vec["code_challenge"], method, allow_plain=plain)
        assert ok == (vec["expected"] == "match"), vec["id"]
        if plain:
            with pytest.raises(idflow.OAuthError):
                pkce.verify(vec["code_verifier"], vec["code_challenge"], method)
        elif vec["expected"] == "match":
            assert pkce.challenge(vec["code_verifier"]) == vec["code_challenge"], vec["id"]
    for syn in doc["verifier_syntax"]:
        if syn["valid"]:
            pkce.challenge(syn["code_verifier"])
        else:
            with pytest.raises(idflow.OAuthError):
                pkce.challenge(syn["code_verifier"])
