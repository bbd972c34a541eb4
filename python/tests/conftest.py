import json
import pathlib

import pytest

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "vectors"


def load_vectors(name: str):
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


@pytest.fixture
def vectors():
    return load_vectors
