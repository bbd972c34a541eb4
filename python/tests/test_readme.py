"""The README's Python example is run as written, so it cannot rot."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run():
    # The repository's README and the package's (python/README.md, on the package index).
    for readme in (README, README.parent / "python" / "README.md"):
        blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
        assert blocks, f"{readme} has a Python example"
        for block in blocks:
            exec(compile(block, str(readme), "exec"), {})


def test_readme_social_login_snippets_are_the_tested_files():
    text = README.read_text(encoding="utf-8")
    examples = README.parent / "examples" / "flask"
    for name in ("social_login.py", "session_manager.py"):
        assert f"```py\n{(examples / name).read_text(encoding='utf-8')}```" in text, f"README shows examples/flask/{name} as it is"


def test_readme_social_login_project_example_is_a_valid_project(monkeypatch):
    import idflow

    text = README.read_text(encoding="utf-8")
    section = text.split("### Social login with any OAuth provider", 1)[1]
    example = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    monkeypatch.setenv("ACME_SECRET", "acme-secret-from-the-environment")
    provider = idflow.Provider(example)
    assert provider.issuer == "https://auth.myapp.example/myapp"


def test_readme_and_docs_links_stay_in_the_repository():
    root = README.parent
    pages = [README, *sorted((root / "docs").glob("*.md")), root / "swift" / "README.md", root / "python" / "README.md", root / "node" / "README.md", root / "android" / "README.md", root / "SECURITY.md", root / "CHANGELOG.md"]
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            assert not re.match(r"[a-z][a-z0-9+.-]*:", target), f"{page.name} links outside the repository: {target}"
            path = target.split("#", 1)[0]
            if path:
                resolved = (page.parent / path).resolve()
                assert resolved.is_relative_to(root.resolve()), f"{page.name} links outside the repository: {target}"
                assert resolved.exists(), f"{page.name} links to a missing file: {target}"


def test_readme_maven_dependency_is_the_one_the_consumer_project_uses():
    # dist/check.sh builds dist/consumer/jvm, which depends on idflow by these coordinates.
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```xml\n(.*?)```", text, re.S).group(1)
    pom = (README.parent / "dist" / "consumer" / "jvm" / "pom.xml").read_text(encoding="utf-8")
    version = re.search(r'^version = "(.*)"$', (README.parent / "Cargo.toml").read_text(encoding="utf-8"), re.M).group(1)
    flat = lambda xml: re.sub(r"\s+", "", xml)
    assert flat(block.replace(version, "${idflow.version}")) in flat(pom)
    assert f"<version>{version}</version>" in block
