"""consent.js / consent.css: budget, fingerprints, theme, and the policy page."""

from __future__ import annotations

import gzip
import re
from dataclasses import replace

import pytest
from banner_dom import parse
from banner_helpers import DECIDED, UNDECIDED, make_config

from consent.banner import Banner
from consent.config import Category, CookieRule, Theme

BUDGET = 4096


def test_js_and_css_fit_in_4_kb_gzipped(banner: Banner) -> None:
    js, css = banner.static("consent.js"), banner.static("consent.css")
    assert js is not None and css is not None
    size = len(gzip.compress(js[0], 9)) + len(gzip.compress(css[0], 9))
    assert size <= BUDGET, f"consent.js + consent.css = {size} bytes gzipped (budget {BUDGET})"


def test_static_types_and_etags(banner: Banner) -> None:
    js = banner.static("consent.js")
    css = banner.static("consent.css")
    assert js is not None and css is not None
    assert js[1] == "text/javascript; charset=utf-8"
    assert css[1] == "text/css; charset=utf-8"
    for _, _, etag in (js, css):
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert banner.static("../config.py") is None
    assert banner.static("consent.js.map") is None
    assert banner.static("") is None


def test_static_url_is_fingerprinted(banner: Banner) -> None:
    url = banner.static_url("consent.js", "/_consent")
    assert re.fullmatch(r"/_consent/static/consent\.js\?v=[0-9a-f]{12}", url)


def test_fingerprint_changes_with_the_content() -> None:
    a = Banner(make_config())
    b = Banner(make_config(theme=Theme(color_primary="#0b5e2a")))
    assert a.static_url("consent.css", "") != b.static_url("consent.css", "")
    assert a.static_url("consent.js", "") == b.static_url("consent.js", "")
    css_b = b.static("consent.css")
    assert css_b is not None and b"--cc-p:#0b5e2a" in css_b[0]


def test_css_is_scoped() -> None:
    css = Banner(make_config()).static("consent.css")
    assert css is not None
    body = re.sub(r"/\*.*?\*/", "", css[0].decode(), flags=re.S)
    for block in re.findall(r"([^{}]+)\{[^{}]*\}", body):
        for selector in block.split(","):
            sel = selector.strip()
            if sel.startswith("@") or sel in {"from", "to"} or not sel:
                continue
            assert sel.startswith(".cc"), f"unscoped selector {sel!r}"


def test_color_scheme_auto_light_dark() -> None:
    def css(scheme: str) -> str:
        found = Banner(make_config(theme=Theme(color_scheme=scheme))).static("consent.css")  # type: ignore[arg-type]
        assert found is not None
        return found[0].decode()

    assert "prefers-color-scheme:dark" in css("auto")
    assert "prefers-color-scheme" not in css("light") and "#ffffff" in css("light")
    assert "prefers-color-scheme" not in css("dark") and "#111827" in css("dark")
    assert "#ffffff" not in css("dark").split("}")[0]


def _luminance(hex_color: str) -> float:
    rgb = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("p", ["", "dark_"])
def test_default_theme_contrast(p: str) -> None:
    """COMPLIANCE C14 / H36: button text 4.5:1, text 4.5:1, borders 3:1, light and dark."""
    t = Theme()

    def get(name: str) -> str:
        return str(getattr(t, f"{p}color_{name}"))

    assert contrast(get("primary_text"), get("primary")) >= 4.5
    assert contrast(get("text"), get("background")) >= 4.5
    assert contrast(get("secondary"), get("background")) >= 4.5  # the outline buttons
    assert contrast(get("secondary_text"), get("secondary")) >= 4.5
    assert contrast(get("border"), get("background")) >= 3
    assert contrast(get("primary"), get("background")) >= 3  # checkboxes, GPC mark


def test_js_is_an_es2017_iife_without_dependencies(banner: Banner) -> None:
    js = banner.static("consent.js")
    assert js is not None
    src = js[0].decode()
    assert re.search(r"^\(\(\) => \{", src, re.M) and src.rstrip().endswith("})();")
    assert "import " not in src and "require(" not in src
    assert "?." not in src and "??" not in src  # ES2020 syntax
    assert "'Content-Type': 'application/json'" in src


# -- policy page ---------------------------------------------------------------------------
def test_policy_page_lists_every_cookie_with_its_duration(banner: Banner) -> None:
    page = parse(banner.policy_page(UNDECIDED, "en", prefix="/_consent"))
    rows = {
        r.find_all("td")[0].text: [c.text for c in r.find_all("td")]
        for r in page.find_all("tr")
        if r.find_all("td")
    }
    assert set(rows) == {"session", "_ga", "_ga_*", "_fbp", "theme"}
    assert rows["_ga"] == [
        "_ga",
        "Google",
        "Distinguishes visitors",
        "2 years",
        "Third party",
        "Cookie",
    ]
    assert rows["session"][3] == "Until the browser is closed"
    assert rows["_fbp"][3] == "90 days"
    assert rows["theme"][4:] == ["First party", "Local storage"]


def test_policy_page_is_a_full_document_with_the_settings_form(banner: Banner) -> None:
    html = banner.policy_page(UNDECIDED, "en", prefix="/_consent")
    assert html.startswith("<!doctype html>")
    page = parse(html)
    assert page.find("html").get("lang") == "en"
    form = page.find("form", method="post", action="/_consent")
    assert form.find("input", name="next").get("value") == "/_consent/policy"
    values = {b.get("value") for b in form.find_all("button", name="action")}
    assert values == {"accept_all", "reject_all", "save"}
    optional = [i for i in form.find_all("input", name="categories") if not i.has("disabled")]
    assert optional and not any(i.has("checked") for i in optional)
    assert "You have not made a choice yet" in page.text
    assert page.find("link", rel="stylesheet").get("href") == banner.static_url(
        "consent.css", "/_consent"
    )


def test_policy_page_shows_the_current_choice_and_withdraw(banner: Banner) -> None:
    page = parse(
        banner.policy_page(DECIDED, "en", prefix="/_consent", nonce="xyz", next_url="/back")
    )
    text = page.text
    assert "Allowed: Strictly necessary, Analytics" in text
    assert "AAAAAAAAAAAAAAAAAAAAAA" in text and "2023-11-14" in text
    form = page.find("form")
    assert form.find("button", value="withdraw")
    assert form.find("input", name="next").get("value") == "/back"
    checked = {i.get("value") for i in form.find_all("input", name="categories", checked=True)}
    assert checked == {"necessary", "analytics"}
    assert page.find("link").get("nonce") == "xyz"


def test_policy_page_escapes_and_translates() -> None:
    cfg = make_config(
        categories=[
            Category(
                key="necessary",
                required=True,
                justification="<b>login</b>",
                cookies=[CookieRule(name="sid", purpose="<script>x</script>", max_age=3600)],
            ),
        ]
    )
    b = Banner(cfg)
    html = b.policy_page(replace(UNDECIDED, gpc=True), "fr", prefix="/c")
    assert "<script>x" not in html and "&lt;script&gt;x" in html and "<b>" not in html
    assert "1 heure" in html and 'lang="fr"' in html
    assert "No cookies" not in html
    assert parse(b.policy_page(UNDECIDED, "ar", prefix="/c")).find("html").get("dir") == "rtl"
