"""Locales: negotiation, shipped translations, plural forms and the texts bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest
from banner_helpers import make_config

from consent.banner import Banner
from consent.banner._i18n import format_duration, placeholders, plural, plural_forms
from consent.config import Category

EU = [
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fi",
    "fr",
    "ga",
    "hr",
    "hu",
    "it",
    "lt",
    "lv",
    "mt",
    "nl",
    "pl",
    "pt",
    "ro",
    "sk",
    "sl",
    "sv",
]
LOCALES = resources.files("consent.banner") / "locales"


def _load(code: str) -> dict[str, str]:
    data = json.loads((LOCALES / f"{code}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# -- negotiate ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-AT,de;q=0.9,en;q=0.8", "de"),
        ("fr;q=0.2, it;q=0.9", "it"),
        ("en;q=0.5, sv;q=0.5", "en"),  # equal weights keep the header's order
        ("xx, nl;q=0.1", "nl"),
        ("PT-br", "pt"),
        ("de;q=0, fr", "fr"),  # q=0: not acceptable
        ("*", "en"),
        ("zh-Hant-TW, ja", "en"),
        ("ar-EG,ar;q=0.9", "ar"),
        ("  es-419 ;  q=0.7 , ca;q=0.8", "es"),
    ],
)
def test_negotiate_q_values(banner: Banner, header: str, expected: str) -> None:
    assert banner.negotiate(header) == expected


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        ";;;",
        ",,,",
        "q=1",
        "de;q=abc",
        "de;q=2",
        "de;q=-1",
        "de;q=nan",
        "\x00\xff\u2603",
        "a" * 10_000,
        ",".join(["xx"] * 5000) + ",de",
        "de;;q=0.5;x=y",
        "en-",
        "-en",
        "e n",
    ],
)
def test_negotiate_never_raises(banner: Banner, garbage: str | None) -> None:
    assert banner.negotiate(garbage) in banner.locales


def test_negotiate_ignores_entries_past_the_first_64(banner: Banner) -> None:
    assert banner.negotiate(",".join(["xx"] * 64) + ",de") == "en"


def test_override_wins_when_known(banner: Banner) -> None:
    assert banner.negotiate("de", override="fr") == "fr"
    assert banner.negotiate("de", override="fr-CA") == "fr"
    assert banner.negotiate("de", override="klingon") == "de"
    assert banner.negotiate("de", override="") == "de"
    assert banner.negotiate(None, override="<script>") == "en"


def test_configured_locales_and_default() -> None:
    b = Banner(make_config(locales=["de", "fr", "pt-BR"], default_locale="fr"))
    assert b.locales == ("de", "fr", "pt-BR")
    assert b.negotiate("en-GB") == "fr"
    assert b.negotiate("pt-PT,pt;q=0.9") == "pt-BR"
    assert b.negotiate("pt-br") == "pt-BR"
    html = b.snippet(make_state(), "pt-BR", prefix="/_consent")
    assert 'lang="pt-BR"' in html and "Aceitar tudo" in html


def make_state():  # type: ignore[no-untyped-def]
    from consent.state import ConsentState

    return ConsentState(granted=frozenset({"necessary"}))


# -- shipped translations ------------------------------------------------------------------
def test_all_eu_languages_and_arabic_are_shipped(banner: Banner) -> None:
    shipped = {p.name.removesuffix(".json") for p in LOCALES.iterdir() if p.name.endswith(".json")}
    assert shipped == {*EU, "ar"}
    assert set(banner.locales) == shipped


@pytest.mark.parametrize("code", [*EU, "ar"])
def test_locale_has_exactly_the_english_keys_and_placeholders(code: str) -> None:
    en, other = _load("en"), _load(code)
    assert set(other) == set(en), (
        f"{code}: missing {set(en) - set(other)}, extra {set(other) - set(en)}"
    )
    for key, text in en.items():
        assert isinstance(other[key], str) and other[key].strip(), f"{code}.{key} is empty"
        assert placeholders(other[key]) == placeholders(text), f"{code}.{key}: placeholders differ"


@pytest.mark.parametrize("code", [*EU, "ar"])
def test_plural_texts_have_the_language_s_forms(code: str) -> None:
    texts = _load(code)
    for key in ("dur_seconds", "dur_minutes", "dur_hours", "dur_days", "dur_years"):
        forms = texts[key].split("|")
        assert len(forms) == plural_forms(code), f"{code}.{key}"
        assert all(f.strip() for f in forms)


@pytest.mark.parametrize("code", [c for c in EU if c != "en"] + ["ar"])
def test_locale_is_actually_translated(code: str) -> None:
    en, other = _load("en"), _load(code)
    same = [
        k for k in en if en[k] == other[k] and k not in {"list_sep", "storage_cookie", "col_name"}
    ]
    assert len(same) <= 6, f"{code}: untranslated {same}"


# -- plural rules and durations ------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "n", "expected"),
    [
        ("en", 1, "1 day"),
        ("en", 2, "2 days"),
        ("fr", 0, "0 jour"),
        ("fr", 2, "2 jours"),
        ("pl", 1, "1 dzień"),
        ("pl", 3, "3 dni"),
        ("pl", 5, "5 dni"),
        ("pl", 22, "22 dni"),
        ("cs", 3, "3 dny"),
        ("cs", 5, "5 dní"),
        ("lt", 21, "21 diena"),
        ("lt", 12, "12 dienų"),
        ("ru-not-shipped", 2, "2 days"),
    ],
)
def test_plural_days(lang: str, n: int, expected: str) -> None:
    code = lang if lang in EU else "en"
    assert plural(_load(code)["dur_days"], lang, n) == expected


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        (None, "Until the browser is closed"),
        (63_072_000, "2 years"),
        (31_536_000, "1 year"),
        (34_128_000, "395 days"),
        (86_400, "1 day"),
        (7_200, "2 hours"),
        (1_800, "30 minutes"),
        (59, "59 seconds"),
        (0, "0 seconds"),
    ],
)
def test_durations(max_age: int | None, expected: str) -> None:
    assert format_duration(max_age, "en", _load("en")) == expected


# -- texts bundle --------------------------------------------------------------------------
def test_texts_bundle_is_canonical_and_complete(banner: Banner) -> None:
    digest, canonical = banner.texts_bundle("en")
    data = json.loads(canonical)
    assert json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == canonical
    assert len(digest) == 64
    assert data["controller"] == "Example Shop GmbH" and data["revision"] == 1
    assert data["texts"]["accept_all"] == "Accept all"
    analytics = next(c for c in data["categories"] if c["key"] == "analytics")
    assert analytics["title"] == "Analytics"
    assert analytics["cookies"][0] == {
        "name": "_ga",
        "provider": "Google",
        "purpose": "Distinguishes visitors",
        "duration": "2 years",
        "max_age": 63_072_000,
        "third_party": True,
        "storage": "Cookie",
    }


def test_texts_bundle_differs_per_locale_and_with_the_texts(banner: Banner) -> None:
    assert banner.texts_bundle("en")[0] != banner.texts_bundle("de")[0]
    other = Banner(make_config(texts={"en": {"reject_all": "No thanks"}}))
    assert other.texts_bundle("en")[0] != banner.texts_bundle("en")[0]
    assert other.texts_bundle("de")[0] == banner.texts_bundle("de")[0]
    bumped = Banner(make_config(revision=2))
    assert bumped.texts_bundle("en")[0] != banner.texts_bundle("en")[0]


def test_texts_bundle_is_stable_across_processes(banner: Banner) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from banner_helpers import make_config; from consent.banner import Banner;"
        "print(Banner(make_config()).texts_bundle('fr')[0])"
    )
    here = str(__import__("pathlib").Path(__file__).parent)
    runs = {
        subprocess.run(
            [sys.executable, "-c", code, here],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert runs == {banner.texts_bundle("fr")[0]}


def test_category_title_falls_back_sensibly() -> None:
    b = Banner(
        make_config(
            categories=[
                Category(key="necessary", required=True),
                Category(
                    key="analytics", title={"en": "Reach"}
                ),  # no German: the shipped German default
                Category(
                    key="video_embeds", title={"fr": "Vidéos"}
                ),  # nothing else: the only value
            ]
        )
    )
    de = json.loads(b.texts_bundle("de")[1])["categories"]
    assert [c["title"] for c in de] == ["Unbedingt erforderlich", "Analyse", "Vidéos"]
