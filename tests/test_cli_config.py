"""``consent check-config`` and ``consent keygen``: locations, fixes, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from consent.cli import _TomlLines, main
from consent.demo import config_path

GOOD = """\
secret_key = "0123456789abcdef0123456789abcdef"
controller = "Example Ltd"

[[categories]]
key = "necessary"
required = true
justification = "Sign-in and the cookie choice."

[[categories.cookies]]
name = "session"
provider = "Example"
purpose = "Keeps you signed in"

[[categories]]
key = "analytics"
cookies = [{ name = "_ga", provider = "Example", purpose = "Counts visits" }]
"""


def check(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[str], str]:
    path = tmp_path / "consent.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["check-config", str(path), *args])
    out, err = capsys.readouterr()
    # Problems go to stderr, one per line, as "file:line: key: message".
    return code, [line.replace(str(path), "F") for line in err.splitlines()], out


def test_valid_file_exits_0_with_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = check(tmp_path, GOOD, capsys)
    assert code == 0
    assert err == []
    assert "OK: 2 categories (necessary: necessary; optional: analytics), 2 cookie rules" in out
    assert "revision 1" in out


def test_shipped_demo_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(config_path()), "--no-secret"]) == 0
    out, err = capsys.readouterr()
    assert "OK: 4 categories" in out
    assert err == ""


def test_missing_secret_is_reported_with_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSENT_SECRET_KEY", raising=False)
    code, err, _ = check(tmp_path, GOOD.split("\n", 1)[1], capsys)
    assert code == 1
    assert any(
        line.startswith("F:1: secret_key: no secret key") and "--no-secret" in line for line in err
    )
    code, err, _ = check(tmp_path, GOOD.split("\n", 1)[1], capsys, "--no-secret")
    assert code == 0, err


def test_each_problem_has_its_line_key_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """\
secret_key = "0123456789abcdef0123456789abcdef"
revision = 0
controler = "X"

[theme]
color_text = "red;"

[[categories]]
key = "necessary"
required = true

[[categories]]
key = "Analytics"
cookies = [
  "_ga",
  { name = "bad name" },
]

[[categories]]
key = "marketing"

[[categories.cookies]]
name = "_fbp"
max_agee = 10
"""
    code, err, out = check(tmp_path, text, capsys)
    assert code == 1
    assert out == ""
    assert err == [
        "F:2: revision: Input should be greater than or equal to 1",
        "F:3: controler: unknown setting; did you mean 'controller'?",
        "F:6: theme.color_text: theme.color_text = 'red;' may not contain ; { } < > or \\",
        "F:13: categories[1].key: 'Analytics' is not a lowercase slug; use 1-32 characters "
        "a-z, 0-9, '-' or '_', starting with a letter (e.g. 'analytics')",
        "F:16: categories[1].cookies[1]: name 'bad name' is not a valid cookie name; a cookie "
        "name has no spaces, quotes, commas, semicolons or control characters",
        "F:24: categories[2].cookies[0].max_agee: unknown setting; did you mean 'max_age'?",
        "F: 6 problem(s) found",
    ]


def test_cross_category_problem_points_at_the_second_claim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD + '\n[[categories]]\nkey = "marketing"\ncookies = ["_ga"]\n'
    code, err, _ = check(tmp_path, text, capsys)
    assert code == 1
    last = text.count("\n")
    assert err[0].startswith(f"F:{last}: cookie '_ga' is claimed by categories")
    assert "a cookie belongs to one category" in err[0]


def test_duplicate_category_key_points_at_its_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD + '\n[[categories]]\nkey = "analytics"\n'
    code, err, _ = check(tmp_path, text, capsys)
    assert code == 1
    assert err[0].startswith(f"F:{text.count(chr(10))}: categories[2].key: 'analytics' is already")


def test_missing_categories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err, _ = check(tmp_path, 'secret_key = "0123456789abcdef0123"\n', capsys)
    assert code == 1
    assert err[0] == (
        "F:1: categories: this setting is required; add at least one [[categories]] table"
    )


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('a = 1\nb = "x\n', "F:2:7:", "Illegal character"),
        ("a = 1\n[x\n", "F:2:3:", "TOML syntax error"),
        ("a = 1\nb = [\n", "F:3:", "at the end of the file"),
    ],
)
def test_toml_syntax_errors_show_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, what: str
) -> None:
    code, err, _ = check(tmp_path, text, capsys)
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith(where)
    assert what in err[0]


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 1
    assert "cannot read the file" in capsys.readouterr().err


def test_warnings_keep_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace('justification = "Sign-in and the cookie choice."\n', "").replace(
        'purpose = "Keeps you signed in"\n', "max_age = 63072000\n"
    )
    code, err, out = check(tmp_path, text, capsys)
    assert code == 0
    assert "3 warning(s)" in out
    assert err[0].startswith("F:4: categories[0].justification: warning: strictly necessary")
    assert err[1].startswith(
        "F:8: categories[0].cookies[0]: warning: cookie 'session' has no purpose"
    )
    assert any("lives over 13 months" in line for line in err)


def test_locator_maps_nested_keys_and_elements() -> None:
    lines = _TomlLines(
        """\
# comment
top = 1
nested.key = "a"   # dotted key
doc = \"\"\"
not = "a key"
\"\"\"

[theme]
layout = "box"

[[categories]]
key = "a"
title = { en = "A", de = "B" }

[[categories.cookies]]
name = "x"

[[categories.cookies]]
name = "y"

[[categories]]
key = "b"
cookies = [
  "one", "two",
  { name = "three", provider = "P" },
]
"""
    )
    assert lines.find("top") == 2
    assert lines.find("nested.key") == 3
    assert lines.find("not") is None
    assert lines.find("theme.layout") == 9
    assert lines.find("categories[0].title.de") == 13
    assert lines.find("categories[0].cookies[1].name") == 19
    assert lines.find("categories[1].key") == 22
    assert lines.find("categories[1].cookies[1]") == 24
    assert lines.find("categories[1].cookies[2].provider") == 25
    assert lines.find("categories[1].cookies[2].max_age") == 25  # nearest enclosing
    assert lines.find("categories[1].cookies[9]") == 23


def test_keygen_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(key) >= 43  # 32 bytes, URL-safe base64
    assert main(["keygen"]) == 0
    assert capsys.readouterr().out.strip() != key
    assert main(["keygen", "--bytes", "4"]) == 2


def test_command_line_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("revision = 0\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "consent.cli", "check-config", str(path), "--no-secret"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"{path}:1: revision:" in done.stderr
