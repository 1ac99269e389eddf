"""What is injected into a page: the snippets for one response, in its charset."""

from __future__ import annotations

import re
from typing import Protocol

from ..state import ConsentState

__all__ = ["PageBanner", "csp_nonce", "page_snippets"]

Headers = list[tuple[bytes, bytes]]
_NONCE = re.compile(rb"'nonce-([A-Za-z0-9+/=_-]{1,128})'")


class PageBanner(Protocol):
    """What page injection needs from :class:`consent.banner.Banner`."""

    def negotiate(self, accept_language: str | None, override: str | None = None) -> str: ...
    def snippet_bytes(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        charset: str,
        next_url: str = "/",
        nonce: str | None = None,
    ) -> bytes: ...
    def head_snippet_bytes(
        self, state: ConsentState, *, charset: str, nonce: str | None = None
    ) -> bytes: ...


def csp_nonce(headers: Headers) -> str | None:
    """The script nonce of the response's Content-Security-Policy, if it has one."""
    for k, v in headers:
        if len(k) == 23 and k.lower() == b"content-security-policy":
            m = _NONCE.search(v)
            if m:
                return m.group(1).decode()
    return None


def page_snippets(
    banner: PageBanner,
    state: ConsentState,
    response_headers: Headers,
    *,
    charset: str,
    accept_language: str | None,
    query: str,
    root_path: str,
    path: str,
    prefix: str,
) -> tuple[bytes, bytes]:
    """``(head, body)`` snippets for one page, encoded in the page's ``charset``.

    Characters the charset lacks become character references, so any
    ASCII-compatible charset takes the snippets unchanged in meaning.
    """
    nonce = csp_nonce(response_headers)
    override = None
    if "consent_lang=" in query:
        for part in query.split("&"):
            if part.startswith("consent_lang="):
                override = part[13:]
    locale = banner.negotiate(accept_language, override)
    next_url = root_path + path + ("?" + query if query else "")
    body = banner.snippet_bytes(
        state, locale, prefix=root_path + prefix, charset=charset, next_url=next_url, nonce=nonce
    )
    return banner.head_snippet_bytes(state, charset=charset, nonce=nonce), body
