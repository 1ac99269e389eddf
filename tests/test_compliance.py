"""Checklist items (shared/COMPLIANCE.md) that no other test checks directly."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from consent import ConsentMiddleware

from .conftest import make_config
from .harness import call

pytestmark = pytest.mark.anyio

PAGE = (
    b"<!doctype html><html><head><title>Shop</title></head><body>"
    b"<h1>Products</h1><p>Everything a visitor came for.</p></body></html>"
)


async def page(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(PAGE)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": PAGE})


def without_injection(app: ConsentMiddleware, body: bytes, cookie: bytes) -> bytes:
    """The page as the app sent it: the exact injected snippets taken out."""
    state = app.policy.read_header(cookie).state
    head = app.banner.head_snippet_bytes(state, charset="utf-8")
    snippet = app.banner.snippet_bytes(
        state, "en", prefix="/_consent", charset="utf-8", next_url="/"
    )
    assert body.count(snippet) == 1
    return body.replace(head, b"", 1).replace(snippet, b"", 1)


def consent_cookie(app: ConsentMiddleware, *keys: str) -> tuple[bytes, bytes]:
    from consent.state import ConsentState

    state = ConsentState(granted=frozenset(keys) | app.policy.required, decided=True, revision=1)
    return (b"cookie", f"consent={app.policy.codec.encode(state)}".encode())


async def test_item_9_no_cookie_wall_the_same_page_whatever_the_choice() -> None:
    app = ConsentMiddleware(page, config=make_config())
    bodies = []
    for headers in (
        [],
        [consent_cookie(app)],
        [consent_cookie(app, "analytics", "marketing", "preferences")],
    ):
        r = await call(app, headers=headers)
        assert r.status == 200
        bodies.append(without_injection(app, r.body, headers[0][1] if headers else b""))
    assert bodies[0] == bodies[1] == bodies[2] == PAGE


async def test_item_6_navigating_without_a_click_is_no_consent() -> None:
    app = ConsentMiddleware(page, config=make_config())
    # A visitor who ignores the banner and browses on: every page is served, none
    # decides anything, and the banner stays.
    for path in ("/", "/products", "/products?page=2", "/about"):
        r = await call(app, path=path)
        assert r.status == 200
        assert b"data-consent-banner" in r.body
        assert [v for v in r.header_values("set-cookie") if v.startswith("consent=")] == []


class _Form(HTMLParser):
    """Collects the controls inside the banner's form."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.controls: list[dict[str, str | None]] = []
        self.forms = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and a.get("action", "").endswith("/_consent"):
            self.forms += 1
            self.depth = 1
        elif self.depth and tag in ("input", "button", "select", "textarea"):
            self.controls.append({"tag": tag, **a})

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.depth = 0


async def test_item_11_the_request_is_its_own_form_with_consent_controls_only() -> None:
    app = ConsentMiddleware(page, config=make_config())
    r = await call(app)
    form = _Form()
    form.feed(r.body.decode())
    assert form.forms == 1
    names = {c.get("name") for c in form.controls}
    assert names <= {"action", "categories", "next", "source"}, names
    actions = {c.get("value") for c in form.controls if c.get("name") == "action"}
    assert {"accept_all", "reject_all", "save"} <= actions
    assert actions <= {"accept_all", "reject_all", "save", "withdraw"}
    # Nothing else is agreed to by that form: no terms, no newsletter, no account.
    assert not any(
        c.get("type") == "checkbox" and c.get("name") != "categories" for c in form.controls
    )
