"""Configuration: validation names the field and the fix."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from consent.config import Category, ConsentConfig, CookieRule, is_css_colour
from consent.errors import ConfigError

from .conftest import SECRET


def build(**kw: Any) -> ConsentConfig:
    data: dict[str, Any] = {
        "secret_key": SECRET,
        "categories": [
            {"key": "necessary", "required": True, "cookies": ["session"]},
            {"key": "analytics"},
        ],
    }
    data.update(kw)
    return ConsentConfig.from_mapping(data)


def problems(**kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as exc:
        build(**kw)
    return exc.value.problems


def test_a_valid_config_and_its_derived_values() -> None:
    c = build(cookies=[{"name": "_ga", "category": "analytics", "domain": ".example.com"}])
    assert c.required_keys == {"necessary"}
    assert c.optional_keys == ("analytics",)
    assert [(k, r.name) for k, r in c.rules()] == [("necessary", "session"), ("analytics", "_ga")]
    assert c.max_age == 180 * 86400 and c.unknown_cookies == "block" and c.prefix == "/_consent"


def test_secret_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENT_SECRET_KEY", "new-key-0123456789abc, old-key-0123456789abc")
    c = ConsentConfig(categories=[Category(key="necessary", required=True)])
    assert c.secret_keys() == ["new-key-0123456789abc", "old-key-0123456789abc"]


def test_no_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENT_SECRET_KEY", raising=False)
    [(loc, msg)] = problems(secret_key=[])
    assert loc == "secret_key" and "consent keygen" in msg and "CONSENT_SECRET_KEY" in msg


def test_short_secret_key() -> None:
    [(loc, msg)] = problems(secret_key="short")
    assert loc == "secret_key[0]" and "16 characters" in msg


def test_duplicate_category_keys() -> None:
    [(loc, msg)] = problems(categories=[{"key": "analytics"}, {"key": "analytics"}])
    assert loc == "categories[1].key" and "categories[0]" in msg


def test_category_key_must_be_a_slug() -> None:
    [(loc, msg)] = problems(categories=[{"key": "Analytics Stuff"}])
    assert loc == "categories[0].key" and "lowercase slug" in msg


def test_cookie_claimed_by_two_categories() -> None:
    [(_, msg)] = problems(
        categories=[{"key": "a", "cookies": ["x"]}, {"key": "b", "cookies": ["x"]}]
    )
    assert "'x' is claimed by categories 'a' and 'b'" in msg


def test_exact_name_matched_by_another_categorys_glob() -> None:
    [(_, msg)] = problems(
        categories=[{"key": "a", "cookies": ["_ga_1"]}, {"key": "b", "cookies": ["_ga_*"]}]
    )
    assert "also matches pattern '_ga_*'" in msg


def test_rule_naming_an_unknown_category() -> None:
    [(loc, msg)] = problems(cookies=[{"name": "x", "category": "ads"}])
    assert (
        loc == "cookies[0].category"
        and "unknown category 'ads'" in msg
        and "known: necessary" in msg
    )


def test_rule_without_a_category() -> None:
    [(loc, _)] = problems(cookies=[{"name": "x"}])
    assert loc == "cookies[0].category"


def test_rule_listed_under_one_category_naming_another() -> None:
    [(loc, msg)] = problems(
        categories=[{"key": "a", "cookies": [{"name": "x", "category": "b"}]}, {"key": "b"}]
    )
    assert loc == "categories[0].cookies[0].category" and "remove one" in msg


def test_tracking_category_cannot_be_required_without_justification() -> None:
    [(loc, msg)] = problems(categories=[{"key": "analytics", "required": True}])
    assert loc == "categories[0]" and "justification" in msg
    ok = build(
        categories=[
            {
                "key": "analytics",
                "required": True,
                "justification": "CNIL-exempt audience measurement",
            }
        ]
    )
    assert ok.required_keys == {"analytics"}


def test_legitimate_interest_is_refused_for_optional_categories() -> None:
    [(_, msg)] = problems(categories=[{"key": "marketing", "legal_basis": "legitimate_interest"}])
    assert "need consent" in msg


def test_max_age_over_395_days_is_refused() -> None:
    [(loc, msg)] = problems(max_age=400 * 86400)
    assert loc == "max_age" and "less than or equal to 34128000" in msg


def test_unknown_setting_is_named() -> None:
    [(loc, msg)] = problems(colour="red")
    assert loc == "colour" and "unknown setting" in msg


def test_bad_log_url() -> None:
    [(loc, msg)] = problems(log="mysql://x")
    assert loc == "log" and "sqlite:///" in msg


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ({"name": "a b"}, "not a valid cookie name"),
        ({"name": "(", "match": "regex"}, "not a valid regular expression"),
        ({"name": "x", "domain": "evil.com; Path=/"}, "not a host name"),
        ({"name": "x", "path": "nope"}, "must start with '/'"),
    ],
)
def test_cookie_rule_errors(rule: dict[str, str], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        CookieRule.model_validate(rule)


def test_glob_and_regex_rules_match() -> None:
    assert CookieRule(name="_ga_*").matches("_ga_ABC")
    assert not CookieRule(name="_ga_*").matches("_gat")
    assert CookieRule(name="^ads_[0-9]+$", match="regex").matches("ads_1")


def test_theme_values_cannot_break_out_of_css() -> None:
    [(loc, msg)] = problems(theme={"color_primary": "red;} body{display:none"})
    assert loc == "theme" and "may not contain" in msg


def test_gpc_and_consent_mode_defaults() -> None:
    c = build(
        categories=[
            {"key": "marketing"},
            {"key": "analytics"},
            {"key": "video", "gpc_opt_out": True},
        ]
    )
    by_key = {cat.key: cat for cat in c.categories}
    assert by_key["marketing"].opts_out_on_gpc and not by_key["analytics"].opts_out_on_gpc
    assert by_key["video"].opts_out_on_gpc
    assert by_key["marketing"].consent_mode_types == (
        "ad_storage",
        "ad_user_data",
        "ad_personalization",
    )
    [(_, msg)] = problems(categories=[{"key": "x", "consent_mode": ["tracking_storage"]}])
    assert "Consent Mode v2 type" in msg


def test_from_toml(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "consent.toml"
    path.write_text(
        f"""
secret_key = "{SECRET}"
revision = 3
log = "memory://"

[[categories]]
key = "necessary"
required = true
cookies = ["session"]

[[categories]]
key = "analytics"
cookies = ["_ga", {{ name = "_ga_*", provider = "Google" }}]
""",
        encoding="utf-8",
    )
    c = ConsentConfig.from_toml(path)
    assert c.revision == 3 and c.rules()[2][1].provider == "Google"
    assert ConsentConfig.from_toml(path, revision=4).revision == 4


def test_from_toml_errors_say_where(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        ConsentConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("revision = = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 1"):
        ConsentConfig.from_toml(bad)
    invalid = tmp_path / "invalid.toml"
    invalid.write_text(
        f'secret_key = "{SECRET}"\n[[categories]]\nkey = "Bad Key"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as exc:
        ConsentConfig.from_toml(invalid)
    assert str(invalid) in str(exc.value) and exc.value.problems[0][0] == "categories[0].key"


def test_theme_colours_must_keep_wcag_contrast() -> None:
    [(loc, msg)] = problems(theme={"color_primary": "#7fb3ff"})
    assert loc == "theme" and "2.14:1" in msg and "4.5:1" in msg
    [(_, msg)] = problems(theme={"dark_color_text": "#444444", "dark_color_background": "#111827"})
    assert "theme.dark_color_text #444444 on theme.dark_color_background #111827" in msg
    # Colours that are not hex (names, var()) cannot be checked and are accepted.
    assert build(theme={"color_primary": "var(--brand)"}).theme.color_primary == "var(--brand)"


def test_a_bad_log_url_is_refused_without_echoing_its_password() -> None:
    data = {"secret_key": SECRET, "categories": [{"key": "necessary", "required": True}]}
    with pytest.raises(ConfigError) as caught:
        ConsentConfig.from_mapping(
            {**data, "log": "mysql://consent:S3cr3t-pw@db.internal/consent"}, source="test"
        )
    assert "S3cr3t-pw" not in str(caught.value)
    assert "mysql://consent:***@db.internal/consent" in str(caught.value)


@pytest.mark.parametrize(
    "colour",
    [
        "#fff",
        "#FFFA",
        "#1d4ed8",
        "#1d4ed880",
        "navy",
        "RebeccaPurple",
        "transparent",
        "rgb(29, 78, 216)",
        "rgba(29,78,216,0.5)",
        "rgb(29 78 216 / 50%)",
        "rgb(10% 20% 30%)",
        "hsl(220, 80%, 48%)",
        "hsla(220deg 80% 48% / .5)",
        "hsl(0.5turn, 10%, 10%)",
        "var(--brand)",
        "var(--brand, #123456)",
    ],
)
def test_css_colours_are_accepted(colour: str) -> None:
    assert is_css_colour(colour)
    assert build(theme={"color_border": colour}).theme.color_border == colour


@pytest.mark.parametrize(
    "colour",
    [
        "blue-ish",
        "",
        "#12",
        "#12345",
        "#ggg",
        "rgb(300, 0, 0)",
        "rgb(0, 0)",
        "rgb(0, 0, 0, 2)",
        "rgba(0 0 0 /)",
        "hsl(120, 120%, 50%)",
        "hsl(red, 10%, 10%)",
        "rgb(-1 0 0)",
        "var(brand)",
        "var(--brand, blue-ish)",
        "url(x.png)",
    ],
)
def test_what_is_not_a_css_colour_is_refused(colour: str) -> None:
    assert not is_css_colour(colour)
    [(loc, msg)] = problems(theme={"color_border": colour})
    assert loc == "theme.color_border" and "is not a CSS colour" in msg


def test_every_problem_is_reported_at_once() -> None:
    # A field of the wrong type used to hide every check between settings.
    found = problems(
        revision="two",
        secret_key="short",
        categories=[
            {"key": "analytics", "required": True, "cookies": ["_ga"]},
            {"key": "marketing", "cookies": ["_ga"], "title": 5},
            {"key": "marketing"},
        ],
        theme={"color_primary": "blue-ish", "color_text": "#777777", "layout": "side"},
        cookies=[{"name": "x", "category": "ads"}],
    )
    locs = [loc for loc, _ in found]
    assert locs.count("revision") == 1
    assert "secret_key[0]" in locs
    assert "categories[0]" in locs  # tracking purpose made required
    assert "categories[2].key" in locs  # duplicate key
    assert "theme.color_primary" in locs and "theme.layout" in locs
    assert "cookies[0].category" in locs
    messages = [msg for _, msg in found]
    assert any("'_ga' is claimed by categories 'analytics' and 'marketing'" in m for m in messages)
    assert any("#777777 on theme.color_background" in m for m in messages)
    assert len(found) == len(set(found)), found  # nothing twice


def test_placeholder_secret_is_refused_in_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "consent.toml"
    for placeholder in (
        "change-me: consent keygen prints a good one",
        "example-only-secret-change-me-0123456789",
    ):
        path.write_text(
            f'secret_key = "{placeholder}"\n[[categories]]\nkey = "necessary"\nrequired = true\n',
            encoding="utf-8",
        )
        with pytest.raises(ConfigError) as exc:
            ConsentConfig.from_toml(path)
        [(loc, msg)] = exc.value.problems
        assert loc == "secret_key[0]" and "consent keygen" in msg
        assert placeholder not in str(exc.value)
        # Code samples and the framework examples build their configuration in Python.
        assert build(secret_key=placeholder).secret_keys() == [placeholder]
    assert ConsentConfig.from_toml(path, secret_key=SECRET).secret_keys() == [SECRET]


def test_the_demo_may_run_with_the_placeholder_secret() -> None:
    from consent.demo import config_path

    placeholder = "example-only-secret-change-me-0123456789"
    config = ConsentConfig.from_toml(config_path(), secret_key=placeholder, log="memory://")
    assert config.secret_keys() == [placeholder]
