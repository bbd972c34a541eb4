import idflow
import pytest
from idflow import _idflow

from conftest import load_vectors


def test_error_codes_match_the_shared_list():
    doc = load_vectors("error_codes.json")
    assert idflow.ERROR_CODES == [c["code"] for c in doc["codes"]]


def test_every_code_maps_to_its_family_class():
    doc = load_vectors("error_codes.json")
    for entry in doc["codes"]:
        cls = getattr(idflow, doc["families"][entry["family"]])
        with pytest.raises(cls) as info:
            _idflow._debug_raise(entry["code"])
        assert info.value.code == entry["code"]
        assert isinstance(info.value, idflow.IdflowError)
        assert info.value.message


def test_panics_become_internal_error_not_panic_exception():
    with pytest.raises(idflow.InternalError) as info:
        _idflow._debug_panic()
    assert info.value.code == "internal"


def test_bad_input_is_a_clean_error():
    with pytest.raises(idflow.TokenError) as info:
        idflow.jwt.decode_unverified("not a token")
    assert info.value.code == "invalid_token"
    with pytest.raises(idflow.TokenError) as info:
        idflow.Key.from_pem("garbage")
    assert info.value.code == "invalid_key"
    with pytest.raises(idflow.OAuthError) as info:
        idflow.jwt.sign({"x": float("nan")}, idflow.Key.generate("HS256"))
    assert info.value.code == "invalid_request"
