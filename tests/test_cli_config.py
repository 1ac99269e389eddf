"""``consent check-config`` and ``consent keygen``: locations, fixes, exit codes."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.cli import _TomlLines, build_parser, main
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


# -- every problem in one run -------------------------------------------------------------

EVERYTHING = """\
secret_key = ["change-me: consent keygen prints a good one", "short"]
revision = "two"
controler = "Example Ltd"
log = "mysql://consent:pw@db/consent"
max_age = 30

[theme]
color_primary = "blue-ish"
color_text = "#777777"
color_border = "red;"

[[categories]]
key = "necessary"
required = true
cookies = ["session", "consent"]

[[categories]]
key = "analytics"
required = true
cookies = ["_ga", { name = "bad name" }, { name = "(", match = "regex" }]

[[categories]]
key = "marketing"
legal_basis = "legitimate_interest"
cookies = ["_ga", { name = "_fbp", max_age = -1 }]

[[categories]]
key = "marketing"

[[cookies]]
name = "x"
category = "ads"
"""

#: What ``consent check-config`` says about EVERYTHING: "line: key: start of the message".
EVERYTHING_SAYS = [
    "1: secret_key[0]: this is the example key of the documentation",
    "1: secret_key[1]: must be at least 16 characters long",
    "2: revision: Input should be a valid integer",
    "3: controler: unknown setting; did you mean 'controller'?",
    "4: log: 'mysql://consent:***@db/consent' is not a log URL",
    "5: max_age: Input should be greater than or equal to 60",
    "8: theme.color_primary: 'blue-ish' is not a CSS colour",
    "9: theme.color_text: theme.color_text #777777 on theme.color_background #ffffff has a "
    "contrast of 4.48:1",
    "10: theme.color_border: theme.color_border = 'red;' may not contain",
    "15: cookie_name: 'consent' is the consent cookie; do not list it in a category",
    "17: categories[1]: category 'analytics' is a tracking purpose and cannot be 'required'",
    "20: categories[1].cookies[1]: name 'bad name' is not a valid cookie name",
    "20: categories[1].cookies[2]: name '(' is not a valid regular expression",
    "22: categories[2]: category 'marketing': cookies that are not strictly necessary need consent",
    "25: categories[2].cookies[1].max_age: Input should be greater than or equal to 0",
    "25: cookie '_ga' is claimed by categories 'analytics' and 'marketing'",
    "28: categories[3].key: 'marketing' is already the key of categories[2]",
    "32: cookies[0].category: unknown category 'ads'; known: necessary, analytics, marketing",
]


def test_one_run_lists_every_problem_sorted_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = check(tmp_path, EVERYTHING, capsys)
    assert code == 1
    assert out == ""
    assert err[-1] == f"F: {len(EVERYTHING_SAYS)} problem(s) found"
    assert len(err) == len(EVERYTHING_SAYS) + 1, err
    for line, expected in zip(err, EVERYTHING_SAYS, strict=False):
        assert line.startswith(f"F:{expected}"), (line, expected)
    numbers = [int(line.split(":")[1]) for line in err[:-1]]
    assert numbers == sorted(numbers)
    assert "pw@" not in "\n".join(err)  # the log URL's password is not echoed


def test_a_missing_secret_key_shows_with_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONSENT_SECRET_KEY", raising=False)
    code, err, _ = check(tmp_path, EVERYTHING.split("\n", 1)[1], capsys)
    assert code == 1
    assert err[-1] == f"F: {len(EVERYTHING_SAYS) - 1} problem(s) found"
    assert any(line.startswith("F:1: secret_key: no secret key") for line in err)
    assert any("cookie '_ga' is claimed by categories" in line for line in err)
    assert any("theme.color_primary: 'blue-ish' is not a CSS colour" in line for line in err)


SECRET_LINE = 'secret_key = "0123456789abcdef0123456789abcdef"\n'
CONTROLLER_LINE = 'controller = "Example Ltd"\n'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param(
            GOOD.replace(CONTROLLER_LINE, CONTROLLER_LINE + 'controler = "X"\n'),
            "3: controler: unknown setting; did you mean 'controller'?",
            id="unknown-setting",
        ),
        pytest.param(
            GOOD.replace(CONTROLLER_LINE, CONTROLLER_LINE + 'revision = "two"\n'),
            "3: revision: Input should be a valid integer, unable to parse string as an integer",
            id="bad-type",
        ),
        pytest.param(
            GOOD.replace(SECRET_LINE, ""),
            "1: secret_key: no secret key; set 'secret_key' or the CONSENT_SECRET_KEY",
            id="missing-secret",
        ),
        pytest.param(
            GOOD.replace(
                SECRET_LINE, 'secret_key = "change-me: consent keygen prints a good one"\n'
            ),
            "1: secret_key[0]: this is the example key of the documentation, which anyone can "
            "read; generate the site's own key with `consent keygen`",
            id="readme-placeholder-secret",
        ),
        pytest.param(
            GOOD.replace(SECRET_LINE, 'secret_key = "example-only-secret-change-me-0123456789"\n'),
            "1: secret_key[0]: this is the example key of the documentation",
            id="examples-placeholder-secret",
        ),
        pytest.param(
            GOOD + '\n[[categories]]\nkey = "marketing"\ncookies = ["_ga"]\n',
            "20: cookie '_ga' is claimed by categories 'analytics' and 'marketing'; a cookie "
            "belongs to one category",
            id="cookie-claimed-twice",
        ),
        pytest.param(
            GOOD + '\n[theme]\ncolor_primary = "blue-ish"\n',
            "19: theme.color_primary: 'blue-ish' is not a CSS colour; use a hex colour such as "
            "'#1d4ed8', rgb(...), hsl(...) or a CSS colour name such as 'navy'",
            id="bad-colour",
        ),
        pytest.param(
            GOOD.replace(CONTROLLER_LINE, CONTROLLER_LINE + 'log = "mysql://db/consent"\n'),
            "3: log: 'mysql://db/consent' is not a log URL; use 'sqlite:///path/to/consent.db'",
            id="bad-log-url",
        ),
    ],
)
def test_each_problem_alone_gives_its_precise_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    says: str,
) -> None:
    monkeypatch.delenv("CONSENT_SECRET_KEY", raising=False)
    code, err, out = check(tmp_path, text, capsys)
    assert code == 1
    assert out == ""
    assert len(err) == 2, err
    assert err[0].startswith(f"F:{says}")
    assert err[1] == "F: 1 problem(s) found"


def test_the_placeholder_secret_may_come_from_the_environment_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENT_SECRET_KEY", "example-only-secret-change-me-0123456789")
    code, err, _ = check(tmp_path, GOOD.replace(SECRET_LINE, ""), capsys)
    assert code == 1
    assert err[0].startswith("F:1: secret_key[0]: this is the example key of the documentation")
    monkeypatch.setenv("CONSENT_SECRET_KEY", "a-real-key-from-consent-keygen-0123")
    assert check(tmp_path, GOOD.replace(SECRET_LINE, ""), capsys)[0] == 0


# -- installed users are pointed at things they have ---------------------------------------

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "consent"
#: A path of the source tree, unless the text says it is one ("docs/x.md in the source").
SOURCE_PATH = re.compile(r"(?<![\w./-])(?:docs|src)/[\w./-]*(?! in the source)(?=[^\w./-]|$)")


def all_help(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
    """``(command, --help text)`` of ``parser`` and of every sub-command under it."""
    yield parser.prog, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_help(sub)


def test_source_path_pattern() -> None:
    assert SOURCE_PATH.search("see docs/auditors.md.")
    assert SOURCE_PATH.search("consent check-config src/consent/demo/consent.toml")
    assert not SOURCE_PATH.search("page (docs/auditors.md in the source)")
    assert not SOURCE_PATH.search("/_consent/docs/x and mydocs/x")


def test_help_texts_name_no_path_of_the_source_tree() -> None:
    helps = dict(all_help(build_parser()))
    assert {"consent", "consent audit", "consent audit verify", "consent check-config"} <= set(
        helps
    )
    for command, text in helps.items():
        flat = " ".join(text.split())  # argparse wraps lines anywhere
        assert not SOURCE_PATH.search(flat), f"{command} --help: {SOURCE_PATH.search(flat)}"
    assert "consent audit COMMAND --help" in " ".join(helps["consent audit"].split())


def test_packaged_files_name_no_path_of_the_source_tree() -> None:
    # Everything that is installed besides Python modules: templates, the demo's
    # consent.toml, scripts, styles, locales.
    files = [
        p
        for p in sorted(PACKAGE.rglob("*"))
        if p.is_file() and p.suffix in {".toml", ".html", ".js", ".css", ".json", ".svg"}
    ]
    assert config_path() in files
    for path in files:
        flat = " ".join(path.read_text(encoding="utf-8").split())
        found = SOURCE_PATH.search(flat)
        assert found is None, f"{path.relative_to(PACKAGE)} names {found[0]!r}"


def test_the_demo_config_says_how_to_check_it(capsys: pytest.CaptureFixture[str]) -> None:
    text = config_path().read_text(encoding="utf-8")
    assert "consent check-config PATH --no-secret" in text
    command = re.search(r'python -c "([^"]+)"', text)
    assert command is not None
    done = subprocess.run(
        [sys.executable, "-c", command[1]], capture_output=True, text=True, timeout=60, check=True
    )
    assert Path(done.stdout.strip()) == config_path()
