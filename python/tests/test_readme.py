"""The README's Python example is run as written, so it cannot rot."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has a Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_social_login_snippets_are_the_tested_files():
    text = README.read_text(encoding="utf-8")
    examples = README.parent / "examples" / "flask"
    for name in ("social_login.py", "session_manager.py"):
        assert f"```py\n{(examples / name).read_text(encoding='utf-8')}```" in text, f"README shows examples/flask/{name} as it is"
