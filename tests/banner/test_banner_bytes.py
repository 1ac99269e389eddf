"""The encoded snippets the middleware injects equal the text snippets, encoded."""

from __future__ import annotations

import pytest
from banner_helpers import make_config

from consent.banner import Banner
from consent.state import ConsentState

REQUIRED = frozenset({"necessary"})
STATES = [
    ConsentState(granted=REQUIRED),
    ConsentState(granted=REQUIRED | {"analytics"}, decided=True, consent_id="x" * 22),
    ConsentState(granted=REQUIRED, gpc=True, gpc_denied=frozenset({"marketing"})),
]


@pytest.mark.parametrize("charset", ["utf-8", "iso8859-1", "ascii", "cp1252"])
@pytest.mark.parametrize("nonce", [None, "abc123=="])
@pytest.mark.parametrize("locale", ["en", "el", "ar"])
@pytest.mark.parametrize("state", STATES)
def test_snippet_bytes_equal_the_encoded_snippet(
    banner: Banner, state: ConsentState, locale: str, nonce: str | None, charset: str
) -> None:
    text = banner.snippet(state, locale, prefix="/_consent", next_url="/a?b=1&c=\"'<", nonce=nonce)
    data = banner.snippet_bytes(
        state, locale, prefix="/_consent", charset=charset, next_url="/a?b=1&c=\"'<", nonce=nonce
    )
    assert data == text.encode(charset, "xmlcharrefreplace")
    head = banner.head_snippet(state, nonce=nonce)
    assert banner.head_snippet_bytes(state, charset=charset, nonce=nonce) == head.encode(
        charset, "xmlcharrefreplace"
    )


def test_head_snippet_bytes_empty_without_consent_mode() -> None:
    banner = Banner(make_config(google_consent_mode=False))
    assert banner.head_snippet_bytes(STATES[0], charset="utf-8") == b""
