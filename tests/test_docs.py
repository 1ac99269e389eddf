"""The documentation: every Python sample runs, the config reference is current,
and every relative link points at a file that exists.

The site itself is built by ``make docs`` (``mkdocs build --strict``). A fenced
```` ```python ```` block runs as a script in a scratch directory that holds a valid
``consent.toml``, with ``CONSENT_SECRET_KEY`` set. On the line right before a block:

- ``<!-- excerpt: examples/flask/app.py -->`` checks instead that every line of the
  block is a line of that (tested) file, so excerpts cannot drift from the code;
- ``<!-- no-test: the reason -->`` skips a fragment (keep those rare).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from consent.demo import config_path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.rglob("*.md"), ROOT / "README.md"])
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
NO_TEST = re.compile(r"<!--\s*no-test\b.*?-->")
EXCERPT = re.compile(r"<!--\s*excerpt:\s*(\S+)\s*-->")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""")


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def code_blocks(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """``(line, language, code, the HTML comment before it)`` for each fenced block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        language = m["info"].strip().split(" ")[0].lower().lstrip(".{")
        previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        start = i + 1
        i += 1
        body: list[str] = []
        while i < len(lines) and not re.match(
            rf"^[ \t]*{fence[0]}{{{len(fence)},}}[ \t]*$", lines[i]
        ):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        yield start, language, "\n".join(body) + "\n", previous.strip()


def python_blocks() -> Iterator[tuple[str, str, str]]:
    """``(id, code, comment before it)`` of every Python block of the docs and README."""
    for page in PAGES:
        for line, language, code, comment in code_blocks(page):
            if language in ("python", "py", "python3"):
                yield f"{rel(page)}:{line}", code, comment


def python_samples() -> list[pytest.param]:  # type: ignore[valid-type]
    params = []
    for ident, code, comment in python_blocks():
        if EXCERPT.search(comment):
            continue
        marks = [pytest.mark.skip(reason=comment)] if NO_TEST.search(comment) else []
        params.append(pytest.param(code, id=ident, marks=marks))
    return params


def excerpts() -> list[pytest.param]:  # type: ignore[valid-type]
    params = []
    for ident, code, comment in python_blocks():
        m = EXCERPT.search(comment)
        if m:
            params.append(pytest.param(code, m.group(1), id=ident))
    return params


@pytest.fixture
def sample_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory holding a valid ``consent.toml``, with a secret key set."""
    shutil.copy(config_path(), tmp_path / "consent.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONSENT_SECRET_KEY", "docs-sample-secret-0123456789abcdef")
    return tmp_path


@pytest.mark.parametrize("code", python_samples())
def test_python_sample_runs(code: str, sample_dir: Path) -> None:
    compiled = compile(code, "<docs sample>", "exec")
    namespace: dict[str, object] = {"__name__": "docs_sample"}
    exec(compiled, namespace)


@pytest.mark.parametrize(("code", "source"), excerpts())
def test_excerpt_matches_its_source(code: str, source: str) -> None:
    path = ROOT / source
    assert path.is_file(), f"the excerpt names {source}, which does not exist"
    lines = {ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()}
    drifted = [ln for ln in code.splitlines() if ln.strip() and ln.strip() not in lines]
    assert drifted == [], f"lines not in {source}: {drifted}"


def test_there_are_samples_to_run() -> None:
    assert len(python_samples()) >= 4


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_config_reference", DOCS / "gen_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current() -> None:
    gen = load_generator()
    current = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert current == gen.generate(), (
        "docs/reference/configuration.md is stale: run .venv/bin/python docs/gen_config_reference.py"
    )


def test_configuration_reference_lists_every_setting() -> None:
    from consent.config import Category, ConsentConfig, CookieRule, Theme

    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    for model in (ConsentConfig, Category, CookieRule, Theme):
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name} missing from the reference"


def strip_code(text: str) -> str:
    """The text without fenced blocks and inline code, where links are not links."""
    text = re.sub(r"(?ms)^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", "", text)
    return re.sub(r"`[^`\n]+`", "", text)


def relative_links(page: Path) -> Iterator[str]:
    text = strip_code(page.read_text(encoding="utf-8"))
    for m in [*LINK.finditer(text), *HTML_LINK.finditer(text)]:
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            continue  # http:, mailto:, an anchor, or a path on the running site
        yield target


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_exist(page: Path) -> None:
    missing = []
    for target in relative_links(page):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and not (page.parent / path).exists():
            missing.append(target)
    assert missing == [], f"{rel(page)} links to missing files: {missing}"


def test_link_checker_sees_links() -> None:
    found = list(relative_links(DOCS / "index.md"))
    assert "img/demo.png" in found
    assert "getting-started.md#the-demo" in found


def test_docs_claim_no_feature_of_another_project() -> None:
    # The mkdocs config must not pull in plugins that fetch from the internet.
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "font: false" in config
    for plugin in ("social", "privacy", "git-revision"):
        assert f"- {plugin}" not in config
    assert os.path.exists(ROOT / "docs" / "img" / "demo.png")


TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)")


def test_every_cited_test_exists() -> None:
    """The docs and README name tests as proof; each named test must exist."""
    cited: set[tuple[str, str]] = set()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        cited.update(TEST_REF.findall(path.read_text(encoding="utf-8")))
    assert len(cited) > 20
    missing = []
    for file, name in sorted(cited):
        source = ROOT / file
        if not source.is_file() or not re.search(
            rf"^\s*(async\s+)?def {name}\(", source.read_text(), re.M
        ):
            missing.append(f"{file}::{name}")
    assert not missing, f"cited but not found: {missing}"
