"""The banner's HTML contract, parsed with the standard library's html.parser."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from banner_dom import Node, parse
from banner_helpers import DECIDED, UNDECIDED, make_config

from consent.banner import Banner
from consent.config import Category, CookieRule, Theme

PREFIX = "/_consent"


def render(banner: Banner, state=UNDECIDED, locale: str = "en", **kw: object) -> Node:
    return parse(banner.snippet(state, locale, prefix=PREFIX, **kw))  # type: ignore[arg-type]


def the_banner(root: Node) -> Node:
    (b,) = root.find_all(data_consent_banner=True)
    return b


def first_layer_buttons(b: Node) -> dict[str, Node]:
    details = b.find("details")
    return {
        n.get("value") or "": n
        for n in b.find_all("button", name="action")
        if details not in n.ancestors()
    }


def test_root_is_a_labelled_non_modal_dialog(banner: Banner) -> None:
    b = the_banner(render(banner))
    assert b.get("role") == "dialog"
    assert not b.has("aria-modal")
    label = b.get("aria-labelledby")
    assert label
    assert b.find(id=label).text == "Cookies and your privacy"
    assert (b.get("lang"), b.get("dir")) == ("en", "ltr")


def test_modal_layout_is_aria_modal() -> None:
    modal = Banner(make_config(theme=Theme(layout="modal")))
    b = the_banner(render(modal))
    assert b.get("aria-modal") == "true"
    assert "cc-modal" in b.classes


def test_banner_is_a_real_form_posting_to_the_prefix(banner: Banner) -> None:
    form = the_banner(render(banner, next_url="/shop?page=2")).find("form")
    assert (form.get("method"), form.get("action")) == ("post", PREFIX)
    nxt = form.find("input", name="next")
    assert (nxt.get("type"), nxt.get("value")) == ("hidden", "/shop?page=2")


def test_accept_and_reject_on_first_layer_with_equal_prominence(banner: Banner) -> None:
    b = the_banner(render(banner))
    buttons = first_layer_buttons(b)
    accept, reject = buttons["accept_all"], buttons["reject_all"]
    for btn in (accept, reject):
        assert btn.tag == "button"
        assert btn.get("type") == "submit"
        assert not any(a.tag == "p" for a in btn.ancestors())
    assert accept.classes == reject.classes
    assert accept.parent is reject.parent


def test_settings_layer_opens_without_javascript(banner: Banner) -> None:
    b = the_banner(render(banner))
    details = b.find("details", data_consent_settings=True)
    assert details.children and details.find("summary").text == "Customise"
    save = details.find("button", value="save")
    assert (save.get("name"), save.get("type")) == ("action", "submit")
    assert details.find_all("input", name="categories")


def test_no_optional_category_is_pre_checked_for_an_undecided_visitor(banner: Banner) -> None:
    boxes = the_banner(render(banner)).find_all("input", name="categories")
    optional = {n.get("value"): n for n in boxes if not n.has("disabled")}
    assert set(optional) == {"analytics", "marketing", "preferences"}
    assert not any(n.has("checked") for n in optional.values())
    for n in optional.values():
        assert n.get("type") == "checkbox"


def test_required_category_is_checked_and_disabled(banner: Banner) -> None:
    b = the_banner(render(banner))
    box = b.find("input", name="categories", value="necessary")
    assert box.has("checked") and box.has("disabled")
    label = b.find("label", **{"for": box.get("id") or ""})
    assert "Always active" in label.text


def test_each_category_lists_its_title_description_and_cookies(banner: Banner) -> None:
    b = the_banner(render(banner))
    desc = b.find(id="cc-d-analytics")
    assert "_ga" in desc.text and "_ga_*" in desc.text
    assert b.find("label", **{"for": "cc-c-analytics"}).text == "Analytics"


def test_first_layer_informs_before_the_choice(banner: Banner) -> None:
    """COMPLIANCE B10: controller, purposes, third parties, withdrawal, declaration link."""
    b = the_banner(render(banner))
    details = b.find("details")
    first = " ".join(
        n.text for n in b.find("form").children if isinstance(n, Node) and n is not details
    )
    assert "Example Shop GmbH" in first
    for purpose in ("Analytics", "Marketing", "Preferences"):
        assert purpose in first
    assert "third parties: Google, Meta" in first
    assert "withdraw" in first
    hrefs = {a.get("href") for a in b.find_all("a") if details not in a.ancestors()}
    assert {f"{PREFIX}/policy", "https://example.com/privacy"} <= hrefs


def test_no_third_party_sentence_without_third_parties() -> None:
    cfg = make_config(
        categories=[
            Category(key="necessary", required=True),
            Category(key="analytics", cookies=["_pk_id"]),
        ]
    )
    html = Banner(cfg).snippet(UNDECIDED, "en", prefix=PREFIX)
    assert "third parties" not in html


def test_privacy_link_only_when_configured() -> None:
    html = Banner(make_config(privacy_policy_url=None)).snippet(UNDECIDED, "en", prefix=PREFIX)
    assert "Privacy policy" not in html


def test_assets_are_linked_with_the_nonce(banner: Banner) -> None:
    root = render(banner, nonce="r4nd0m+/=")
    link = root.find("link", rel="stylesheet")
    script = root.find("script")
    assert link.get("href") == banner.static_url("consent.css", PREFIX)
    assert script.get("src") == banner.static_url("consent.js", PREFIX)
    assert script.has("defer")
    assert link.get("nonce") == script.get("nonce") == "r4nd0m+/="
    assert not render(banner).find("script").has("nonce")


def test_decided_visitor_gets_only_the_settings_control(banner: Banner) -> None:
    html = banner.snippet(DECIDED, "en", prefix=PREFIX, next_url="/shop?page=2", nonce="n0nce")
    assert len(html.encode()) < 1024, len(html.encode())
    assert "<template" not in html and "data-consent-banner" not in html and "<form" not in html
    assert "/shop" not in html  # no form, so no page URL to return to
    root = parse(html)
    control = root.find(data_consent_open=True)
    assert control.text == "Cookie settings"
    assert not control.has("hidden")
    assert control.get("href") == f"{PREFIX}/policy"  # without JavaScript: the settings page
    data = root.find(data_consent_root=True)
    assert data.get("data-consent-granted") == "analytics necessary"
    assert data.get("data-consent-prefix") == PREFIX  # where consent.js fetches the banner
    assert json.loads(data.get("data-consent-modes") or "")["analytics"] == ["analytics_storage"]
    assert root.find("link", rel="stylesheet").get("nonce") == "n0nce"
    assert root.find("script").get("nonce") == "n0nce"


def test_decided_snippet_stays_small_in_every_locale_and_charset(banner: Banner) -> None:
    for locale in banner.locales:
        for charset in ("utf-8", "iso8859-1"):
            data = banner.snippet_bytes(
                DECIDED, locale, prefix=PREFIX, charset=charset, nonce="A" * 24
            )
            assert len(data) < 1024, (locale, charset, len(data))


def test_banner_fragment_is_the_banner_alone_with_the_grants_checked(banner: Banner) -> None:
    html = banner.banner_fragment(DECIDED, "en", prefix=PREFIX, next_url="/shop?page=2")
    root = parse(html)
    b = the_banner(root)
    assert html.startswith("<div") and not root.find_all("script") and "cc-manage" not in html
    form = b.find("form")
    assert (form.get("method"), form.get("action")) == ("post", PREFIX)
    assert form.find("input", name="next").get("value") == "/shop?page=2"
    checked = {n.get("value") for n in b.find_all("input", name="categories", checked=True)}
    assert checked == {"necessary", "analytics"}
    withdraw = b.find("button", value="withdraw")
    assert not withdraw.has("hidden")
    assert b.find("input", name="source").get("value") == "settings"


def test_banner_fragment_equals_the_undecided_banner(banner: Banner) -> None:
    """For an undecided visitor the fragment is exactly the banner the page carries."""
    page = banner.snippet(UNDECIDED, "de", prefix=PREFIX, next_url="/a")
    fragment = banner.banner_fragment(UNDECIDED, "de", prefix=PREFIX, next_url="/a")
    assert fragment in page


def test_banner_fragment_escapes_next_and_is_rendered_once(
    banner: Banner, monkeypatch: pytest.MonkeyPatch
) -> None:
    banner.banner_fragment(DECIDED, "fr", prefix="/frag")
    monkeypatch.setattr(banner, "_env", None)  # a second render would crash
    nasty = '/x?a="><script>alert(1)</script>'
    html = banner.banner_fragment(DECIDED, "fr", prefix="/frag", next_url=nasty)
    assert "<script>" not in html
    assert the_banner(parse(html)).find("input", name="next").get("value") == nasty
    assert the_banner(parse(html)).get("lang") == "fr"


def test_withdraw_is_hidden_for_an_undecided_visitor(banner: Banner) -> None:
    assert the_banner(render(banner)).find("button", value="withdraw").has("hidden")


def test_undecided_page_carries_a_hidden_settings_control(banner: Banner) -> None:
    control = render(banner).find(data_consent_open=True)
    assert control.has("hidden")  # consent.js shows it once the banner is closed


def test_category_description_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    cfg = make_config(
        categories=[
            Category(key="necessary", required=True),
            Category(key="analytics", title='A "quoted" <b>title</b>', description=evil),
        ],
        controller="<img src=x onerror=alert(1)>",
    )
    html = Banner(cfg).snippet(UNDECIDED, "en", prefix=PREFIX)
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "<b>" not in html
    assert len(parse(html).find_all("script")) == 1


def test_next_url_with_quotes_is_escaped(banner: Banner) -> None:
    nasty = "/x?a=\"><script>alert(1)</script>&b='1'"
    html = banner.snippet(UNDECIDED, "en", prefix=PREFIX, next_url=nasty)
    assert "<script>alert" not in html
    assert the_banner(parse(html)).find("input", name="next").get("value") == nasty


def test_nonce_is_escaped(banner: Banner) -> None:
    html = banner.snippet(UNDECIDED, "en", prefix=PREFIX, nonce='"><x')
    assert '"><x' not in html


def test_per_call_values_do_not_leak_into_the_cache(banner: Banner) -> None:
    a = banner.snippet(UNDECIDED, "en", prefix=PREFIX, next_url="/a", nonce="n1")
    b = banner.snippet(UNDECIDED, "en", prefix=PREFIX, next_url="/b")
    assert 'value="/a"' in a and 'nonce="n1"' in a
    assert 'value="/b"' in b and 'nonce="' not in b and 'value="/a"' not in b


def test_snippet_is_rendered_once_per_key(banner: Banner, monkeypatch: pytest.MonkeyPatch) -> None:
    banner.snippet(UNDECIDED, "fr", prefix="/once")
    monkeypatch.setattr(banner, "_env", None)  # a second render would crash
    assert "Example Shop" in banner.snippet(UNDECIDED, "fr", prefix="/once", next_url="/z")


def test_prefix_is_part_of_the_key(banner: Banner) -> None:
    form = the_banner(parse(banner.snippet(UNDECIDED, "en", prefix="/sub/_consent"))).find("form")
    assert form.get("action") == "/sub/_consent"


def test_gpc_note_shown_when_the_signal_is_present(banner: Banner) -> None:
    gpc = replace(UNDECIDED, gpc=True)
    note = the_banner(render(banner, gpc)).find(data_consent_gpc=True)
    assert not note.has("hidden")
    assert (
        note.text == "Your Global Privacy Control signal was honoured. These stay off: Marketing."
    )
    assert the_banner(render(banner)).find(data_consent_gpc=True).has("hidden")


def test_gpc_note_is_translated(banner: Banner) -> None:
    note = the_banner(render(banner, replace(UNDECIDED, gpc=True), "de")).find(
        data_consent_gpc=True
    )
    assert "Global-Privacy-Control" in note.text and "Marketing" in note.text
    assert "honoured" not in note.text


def test_arabic_is_right_to_left(banner: Banner) -> None:
    assert banner.is_rtl("ar") and banner.is_rtl("ar-EG") and not banner.is_rtl("en")
    b = the_banner(render(banner, locale="ar"))
    assert (b.get("lang"), b.get("dir")) == ("ar", "rtl")


def test_consent_mode_mapping_is_serialized(banner: Banner) -> None:
    raw = render(banner).find(data_consent_root=True).get("data-consent-modes")
    modes = json.loads(raw or "")
    assert modes["marketing"] == ["ad_storage", "ad_user_data", "ad_personalization"]
    assert modes["analytics"] == ["analytics_storage"]


def test_no_consent_mode_mapping_when_disabled() -> None:
    html = Banner(make_config(google_consent_mode=False)).snippet(UNDECIDED, "en", prefix=PREFIX)
    assert "data-consent-modes" not in html


def test_layout_classes(banner: Banner) -> None:
    for layout, position in (("bar", "top"), ("box", "bottom")):
        b = Banner(make_config(theme=Theme(layout=layout, position=position)))
        assert {f"cc-{layout}", f"cc-{position}"} <= the_banner(render(b)).classes


def test_category_overrides_and_config_texts() -> None:
    cfg = make_config(
        categories=[
            Category(key="necessary", required=True),
            Category(
                key="analytics",
                title={"en": "Reach measurement", "de": "Reichweite"},
                description="Counts.",
            ),
            Category(key="video", cookies=["yt"]),
        ],
        texts={"en": {"accept_all": "Allow all"}, "de": {"title": "Datenschutz"}},
    )
    b = Banner(cfg)
    en = the_banner(render(b))
    assert en.find("label", **{"for": "cc-c-analytics"}).text == "Reach measurement"
    assert en.find(id="cc-d-analytics").text == "Counts."
    assert en.find("label", **{"for": "cc-c-video"}).text == "Video"
    assert en.find("button", value="accept_all").text == "Allow all"
    de = the_banner(render(b, locale="de"))
    assert de.find("label", **{"for": "cc-c-analytics"}).text == "Reichweite"
    assert de.find(id="cc-title").text == "Datenschutz"


def test_unknown_locale_falls_back_to_the_default(banner: Banner) -> None:
    assert the_banner(render(banner, locale="xx-YY")).get("lang") == "en"


def test_template_override_through_templates_dir(tmp_path: Path) -> None:
    (tmp_path / "categories.html").write_text(
        '<p class="mine">{% for c in cats %}{{ c.key }};{% endfor %}</p>', encoding="utf-8"
    )
    b = Banner(make_config(templates_dir=str(tmp_path)))
    html = b.snippet(UNDECIDED, "en", prefix=PREFIX)
    assert '<p class="mine">necessary;analytics;marketing;preferences;</p>' in html
    assert 'value="accept_all"' in html  # the rest still comes from the package


def test_broken_override_fails_at_construction(tmp_path: Path) -> None:
    (tmp_path / "snippet.html").write_text("{% if %}", encoding="utf-8")
    with pytest.raises(Exception, match="Expected an expression"):
        Banner(make_config(templates_dir=str(tmp_path)))


# -- head snippet -------------------------------------------------------------------------
def _calls(head: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (m[0], json.loads(m[1])) for m in re.findall(r"gtag\('consent','(\w+)',(\{[^}]*\})\)", head)
    ]


def test_head_snippet_defaults_everything_denied_but_security(banner: Banner) -> None:
    head = banner.head_snippet(UNDECIDED, nonce="abc")
    assert head.startswith('<script nonce="abc">') and head.endswith("</script>")
    ((kind, default),) = _calls(head)
    assert kind == "default"
    assert default.pop("wait_for_update") == 500
    assert default.pop("security_storage") == "granted"
    assert set(default.values()) == {"denied"}
    assert len(default) == 6


def test_head_snippet_updates_from_the_stored_choice(banner: Banner) -> None:
    calls = _calls(banner.head_snippet(DECIDED))
    assert [k for k, _ in calls] == ["default", "update"]
    update = calls[1][1]
    assert update["analytics_storage"] == "granted"
    assert update["ad_storage"] == "denied"
    assert calls[0][1]["analytics_storage"] == "denied"


def test_head_snippet_empty_without_consent_mode() -> None:
    assert Banner(make_config(google_consent_mode=False)).head_snippet(UNDECIDED) == ""


def test_head_snippet_wait_for_update_from_config() -> None:
    b = Banner(make_config(consent_mode_wait_for_update=1200))
    assert _calls(b.head_snippet(UNDECIDED))[0][1]["wait_for_update"] == 1200


def test_cookie_rules_listed_apart_from_their_category_are_shown() -> None:
    cfg = make_config(
        cookies=[
            CookieRule(name="_hjid", category="analytics", provider="Hotjar", third_party=True)
        ]
    )
    desc = the_banner(parse(Banner(cfg).snippet(UNDECIDED, "en", prefix=PREFIX))).find(
        id="cc-d-analytics"
    )
    assert "_hjid" in desc.text


def test_long_urls_are_escaped_but_not_memoised(banner: Banner) -> None:
    long_url = "/search?q=" + "a&b" * 400
    html = banner.snippet(UNDECIDED, "en", prefix=PREFIX, next_url=long_url)
    assert the_banner(parse(html)).find("input", name="next").get("value") == long_url
    assert long_url not in banner._urls
