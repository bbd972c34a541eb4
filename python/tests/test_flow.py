import json
import pathlib

import idflow

FLOWS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "flows"


def test_valid_flows_have_no_problems():
    for name in ("random-user.json", "sign-up-or-in.json"):
        assert idflow.validate_flow((FLOWS / name).read_text()) == [], name


def test_every_problem_is_reported_with_step_and_field():
    problems = idflow.validate_flow((FLOWS / "invalid.json").read_text())
    expected = json.loads((FLOWS / "invalid.expected.json").read_text())["problems"]
    assert sorted((p["step"] or "", p["field"]) for p in problems) == sorted((s or "", f) for s, f in expected)
    assert all(p["message"] for p in problems)


def test_garbage_is_one_problem_not_an_exception():
    assert idflow.validate_flow("{not json")[0]["message"].startswith("the flow is not valid JSON")
