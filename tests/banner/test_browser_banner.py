"""The banner in a real headless Chromium, served by a real uvicorn process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from browser_support import run_axe, screenshot_dir

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BANNER = "[data-consent-banner]"


@pytest.fixture
def context(browser: Browser, site: str) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=site)
    ctx.request.delete("/_test/posts")
    ctx.request.delete("/_test/fragments")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    p = context.new_page()
    p.set_default_timeout(5000)
    return p


def posts(context: BrowserContext) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = context.request.get("/_test/posts").json()
    return found


def fragments(context: BrowserContext) -> list[str]:
    """The ``/_consent/banner`` URLs consent.js fetched, in order."""
    found: list[str] = context.request.get("/_test/fragments").json()
    return found


def focused(page: Page) -> str:
    """A short description of the focused element: tag, then value or text."""
    desc: str = page.evaluate(
        """() => { const e = document.activeElement;
            return e.tagName.toLowerCase() + ':' + (e.value || e.textContent.trim()); }"""
    )
    return desc


def focus_in_banner(page: Page) -> bool:
    inside: bool = page.evaluate("() => !!document.activeElement.closest('[data-consent-banner]')")
    return inside


def test_banner_shows_and_focus_moves_in(page: Page) -> None:
    page.goto("/page")
    page.wait_for_function("() => document.activeElement.value === 'reject_all'")
    assert page.locator(BANNER).is_visible()
    assert focus_in_banner(page)
    assert not page.locator("[data-consent-open]").is_visible()


def test_keyboard_reaches_every_control(page: Page, context: BrowserContext) -> None:
    page.goto("/page")
    page.wait_for_function("() => document.activeElement.value === 'reject_all'")
    seen = [focused(page)]
    for _ in range(6):
        page.keyboard.press("Tab")
        seen.append(focused(page))
    assert "button:reject_all" in seen and "button:accept_all" in seen
    assert "summary:Customise" in seen
    page.locator("summary").focus()
    page.keyboard.press("Enter")  # opens the settings layer
    for _ in range(8):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        if seen[-1] == "input:analytics":
            page.keyboard.press("Space")
        if seen[-1] == "button:save":
            break
    assert seen[-1] == "button:save"
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__ran === true")
    assert posts(context)[-1]["categories"] == ["analytics"]


def test_escape_never_grants(page: Page, context: BrowserContext) -> None:
    page.goto("/page")
    page.wait_for_function("() => document.activeElement.value === 'reject_all'")
    page.locator("summary").click()
    assert page.locator("details").get_attribute("open") is not None
    page.locator("input[value=analytics]").check()
    page.keyboard.press("Escape")  # closes the settings layer...
    assert page.locator("details").get_attribute("open") is None
    assert focused(page) == "summary:Customise"
    page.keyboard.press("Escape")  # ...then the banner, without a choice
    assert not page.locator(BANNER).is_visible()
    assert page.locator("[data-consent-open]").is_visible()
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran") is None
    assert page.evaluate("window.__events") == []
    assert posts(context) == []
    page.reload()  # still undecided: the banner is back
    assert page.locator(BANNER).is_visible()


def test_gated_script_runs_only_after_accepting(page: Page, context: BrowserContext) -> None:
    page.goto("/page")
    page.wait_for_function("() => document.activeElement.value === 'reject_all'")
    assert page.evaluate("window.__ran") is None
    assert page.locator("iframe").get_attribute("src") is None
    page.locator("button[value=accept_all]").click()
    page.wait_for_function("() => window.__ran === true && window.__both === true")
    page.wait_for_function(
        "() => window.__module === 'object'"
    )  # data-type="module" became a module
    assert page.locator("iframe").get_attribute("src") == "/frame"
    events = page.evaluate("window.__events")
    assert len(events) == 1 and events[0]["granted"] == [
        "analytics",
        "marketing",
        "necessary",
        "preferences",
    ]
    assert not page.locator(BANNER).is_visible()
    assert page.locator("[data-consent-open]").is_visible()
    (post,) = posts(context)
    assert post == {"json": True, "action": "accept_all", "categories": [], "source": "banner"}
    update = page.evaluate(
        "() => Array.from(dataLayer).filter(a => a[0] === 'consent').map(a => [a[1], a[2]])"
    )
    assert update[0][0] == "default" and update[0][1]["analytics_storage"] == "denied"
    assert update[-1] == [
        "update",
        {
            "security_storage": "granted", "analytics_storage": "granted", "ad_storage": "granted",
            "ad_user_data": "granted", "ad_personalization": "granted",
            "functionality_storage": "granted", "personalization_storage": "granted",
        },
    ]  # fmt: skip


def test_reject_runs_nothing(page: Page, context: BrowserContext) -> None:
    page.goto("/page")
    page.locator("button[value=reject_all]").click()
    page.wait_for_function("() => window.__events.length === 1")
    assert page.evaluate("window.__ran") is None
    assert page.locator("iframe").get_attribute("src") is None
    assert page.evaluate("window.__events[0].granted") == ["necessary"]
    page.reload()
    assert page.locator(BANNER).count() == 0  # a decided visitor: only the settings control


def test_decided_visitor_runs_granted_scripts_on_load_and_reopens_settings(
    page: Page, context: BrowserContext, site: str
) -> None:
    context.add_cookies([{"name": "fake_consent", "value": "analytics", "url": site}])
    page.goto("/page")
    page.wait_for_function("() => window.__ran === true")
    assert page.evaluate("window.__both") is None
    assert page.locator(BANNER).count() == 0
    assert page.locator("template").count() == 0  # no inert copy of the banner either
    manage = page.locator("[data-consent-open]")
    manage.click()
    banner = page.locator(BANNER)
    banner.wait_for()  # fetched from /_consent/banner, then opened
    assert fragments(context) == ["/_consent/banner?next=%2Fpage"]
    assert banner.is_visible()
    assert page.locator("details").get_attribute("open") is not None
    assert page.locator("input[value=analytics]").is_checked()
    assert not page.locator("input[value=marketing]").is_checked()
    page.wait_for_function("() => !!document.activeElement.closest('[data-consent-banner]')")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    assert not banner.is_visible()
    assert page.evaluate("document.activeElement.hasAttribute('data-consent-open')")
    assert posts(context) == []
    manage.click()  # a second time: the fetched banner is reused
    page.wait_for_function("() => !!document.activeElement.closest('[data-consent-banner]')")
    assert banner.is_visible()
    assert page.locator(BANNER).count() == 1 and len(fragments(context)) == 1


def test_reopened_settings_in_a_modal_trap_focus_and_return_to_the_page(
    page: Page, context: BrowserContext, site: str
) -> None:
    context.add_cookies([{"name": "fake_consent", "value": "analytics", "url": site}])
    page.goto("/page?layout=modal&x=1")
    page.wait_for_function("() => window.__ran === true")
    page.locator("[data-consent-open]").focus()
    page.keyboard.press("Enter")  # the keyboard opens it as a click does
    page.wait_for_function("() => !!document.activeElement.closest('[data-consent-banner]')")
    assert page.locator(BANNER).get_attribute("aria-modal") == "true"
    # The form of the fetched layer returns to this page, query included.
    assert (
        page.locator(f"{BANNER} input[name=next]").get_attribute("value")
        == "/page?layout=modal&x=1"
    )
    for _ in range(14):
        page.keyboard.press("Tab")
        assert focus_in_banner(page), focused(page)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    assert not page.locator(BANNER).is_visible()
    assert page.evaluate("document.activeElement.hasAttribute('data-consent-open')")
    assert posts(context) == []


def test_reopened_settings_fall_back_to_the_form_post_back_to_the_page(
    page: Page, context: BrowserContext, site: str
) -> None:
    context.add_cookies([{"name": "fake_consent", "value": "analytics", "url": site}])
    page.route(
        "**/_consent",
        lambda route: (
            route.abort() if route.request.resource_type == "fetch" else route.continue_()
        ),
    )
    page.goto("/page?x=2")
    page.locator("[data-consent-open]").click()
    page.locator("input[value=marketing]").check()
    with page.expect_navigation():
        page.locator("button[value=save]").click()
    assert page.url.endswith("/page?x=2")
    post = posts(context)[-1]
    assert post["json"] is False and post["next"] == "/page?x=2"
    assert post["categories"] == ["analytics", "marketing"] and post["source"] == "settings"


def test_failed_banner_fetch_follows_the_settings_link(
    page: Page, context: BrowserContext, site: str
) -> None:
    context.add_cookies([{"name": "fake_consent", "value": "analytics", "url": site}])
    page.route("**/_consent/banner*", lambda route: route.abort())
    page.goto("/page")
    with page.expect_navigation():
        page.locator("[data-consent-open]").click()
    assert page.url.endswith("/_consent/policy")  # the page that works without JavaScript
    assert page.locator("input[value=analytics]").is_checked()


def test_withdraw_reloads_so_running_scripts_stop(
    page: Page, context: BrowserContext, site: str
) -> None:
    context.add_cookies([{"name": "fake_consent", "value": "analytics", "url": site}])
    page.goto("/page")
    page.wait_for_function("() => window.__ran === true")
    page.locator("[data-consent-open]").click()
    with page.expect_navigation():
        page.locator("button[value=withdraw]").click()
    assert page.evaluate("window.__ran") is None
    assert posts(context)[-1]["action"] == "withdraw"
    assert posts(context)[-1]["source"] == "settings"


def test_failed_fetch_falls_back_to_the_form_post(page: Page, context: BrowserContext) -> None:
    page.route(
        "**/_consent",
        lambda route: (
            route.abort() if route.request.resource_type == "fetch" else route.continue_()
        ),
    )
    page.goto("/page?x=1")
    with page.expect_navigation():
        page.locator("button[value=accept_all]").click()
    assert page.url.endswith("/page?x=1")
    assert posts(context)[-1]["json"] is False and posts(context)[-1]["action"] == "accept_all"
    page.wait_for_function("() => window.__ran === true")


def test_works_without_javascript(browser: Browser, site: str) -> None:
    ctx = browser.new_context(base_url=site, java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto("/page?from=nojs")
        assert page.locator(BANNER).is_visible()
        assert page.locator("button[value=accept_all]").is_visible()
        assert page.locator("button[value=reject_all]").is_visible()
        assert not page.locator("button[value=save]").is_visible()
        page.locator("summary").click()  # <details>: no script needed
        assert page.locator("button[value=save]").is_visible()
        page.locator("input[value=analytics]").check()
        page.locator("input[value=preferences]").check()
        with page.expect_navigation():
            page.locator("button[value=save]").click()
        assert page.url.endswith("/page?from=nojs")
        cookie = {c["name"]: c["value"] for c in ctx.cookies()}["fake_consent"]
        assert cookie == "analytics.preferences"
        assert page.locator("[data-consent-open]").is_visible()  # the persistent control
        assert page.locator(BANNER).count() == 0
        page.locator("[data-consent-open]").click()  # without JS: the policy page
        assert page.url.endswith("/_consent/policy")
        assert page.locator("input[value=analytics]").is_checked()
    finally:
        ctx.close()


def test_gpc_signal_shows_the_note(browser: Browser, site: str) -> None:
    ctx = browser.new_context(base_url=site)
    ctx.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    try:
        page = ctx.new_page()
        page.goto("/page")
        note = page.locator("[data-consent-gpc]")
        note.wait_for(state="visible")
        assert "Marketing" in note.inner_text()
    finally:
        ctx.close()


@pytest.mark.parametrize("layout", ["bar", "box", "modal"])
def test_320px_wide_fits_and_targets_are_big_and_equal(
    browser: Browser, site: str, layout: str
) -> None:
    ctx = browser.new_context(base_url=site, viewport={"width": 320, "height": 640})
    try:
        page = ctx.new_page()
        page.goto(f"/page?layout={layout}")
        page.locator("summary").click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        overflow = page.evaluate(
            """() => [...document.querySelectorAll('[data-consent-banner] *')]
                .filter(e => e.getClientRects().length)
                .filter(e => { const r = e.getBoundingClientRect(); return r.right > 320.5 || r.left < -0.5; })
                .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert overflow == []
        boxes = {}
        for value in ("accept_all", "reject_all", "save"):
            box = page.locator(f"button[value={value}]").bounding_box()
            assert box is not None
            assert box["width"] >= 24 and box["height"] >= 24, (value, box)
            boxes[value] = box
        for box in page.locator(f"{BANNER} input[type=checkbox]").all():
            b = box.bounding_box()
            assert b is not None and b["width"] >= 24 and b["height"] >= 24
        a, r = boxes["accept_all"], boxes["reject_all"]
        assert abs(a["width"] - r["width"]) <= 0.1 * max(a["width"], r["width"])
        assert abs(a["height"] - r["height"]) <= 0.1 * max(a["height"], r["height"])
    finally:
        ctx.close()


def test_accept_and_reject_look_the_same(page: Page) -> None:
    page.goto("/page")
    style = """b => { const s = getComputedStyle(b);
        return [s.color, s.backgroundColor, s.fontSize, s.fontWeight, s.borderColor, s.borderWidth]; }"""
    accept = page.locator("button[value=accept_all]").evaluate(style)
    reject = page.locator("button[value=reject_all]").evaluate(style)
    assert accept == reject


def test_modal_traps_focus_and_escape_closes_it(page: Page, context: BrowserContext) -> None:
    page.goto("/page?layout=modal")
    page.wait_for_function("() => document.activeElement.value === 'reject_all'")
    assert page.locator(BANNER).get_attribute("aria-modal") == "true"
    for _ in range(12):
        page.keyboard.press("Tab")
        assert focus_in_banner(page), focused(page)
    page.locator(f"{BANNER} a").first.focus()
    page.keyboard.press("Shift+Tab")  # wraps from the first control to the last
    assert focus_in_banner(page)
    assert focused(page) == "summary:Customise"
    page.keyboard.press("Escape")
    assert not page.locator(BANNER).is_visible()
    assert posts(context) == []
    assert page.evaluate("window.__ran") is None


def test_bar_keeps_the_focused_element_visible(browser: Browser, site: str) -> None:
    """WCAG 2.4.11: tabbing through the page never hides the focus under the bar."""
    ctx = browser.new_context(base_url=site, viewport={"width": 800, "height": 500})
    try:
        page = ctx.new_page()
        page.goto("/page?long=40")
        page.wait_for_function("() => document.activeElement.value === 'reject_all'")
        page.locator("a[href='/page?p=3']").focus()
        for _ in range(4):
            page.keyboard.press("Tab")
            hidden = page.evaluate(
                """() => { const e = document.activeElement;
                    if (e.closest('[data-consent-banner]')) return false;
                    const r = e.getBoundingClientRect(),
                          b = document.querySelector('[data-consent-banner]').getBoundingClientRect();
                    return r.top >= b.top && r.bottom <= b.bottom; }"""
            )
            assert not hidden, focused(page)
    finally:
        ctx.close()


def test_arabic_banner_is_right_to_left(page: Page) -> None:
    page.goto("/page?lang=ar")
    banner = page.locator(BANNER)
    assert banner.get_attribute("dir") == "rtl"
    assert banner.evaluate("b => getComputedStyle(b).direction") == "rtl"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("layout", ["bar", "box", "modal"])
def test_axe_and_screenshots(browser: Browser, site: str, layout: str, scheme: str) -> None:
    ctx = browser.new_context(
        base_url=site,
        color_scheme=scheme,  # type: ignore[arg-type]
        viewport={"width": 1280, "height": 800},
        reduced_motion="reduce",
        bypass_csp=True,  # axe-core is injected as an inline script
    )
    try:
        page = ctx.new_page()
        page.goto(f"/page?layout={layout}")
        page.wait_for_function("() => document.activeElement.value === 'reject_all'")
        page.locator("button[value=reject_all]").blur()
        page.screenshot(path=str(screenshot_dir() / f"banner-{layout}-{scheme}.png"))
        closed = run_axe(page)
        page.locator("summary").click()
        opened = run_axe(page)
        assert closed == [] and opened == [], closed or opened
    finally:
        ctx.close()
