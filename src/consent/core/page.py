"""What is injected into a page: the snippets for one response, in its charset."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from ..state import ConsentState
from .memo import remember

__all__ = ["PageBanner", "PageSnippets", "csp_nonce", "nonce_of", "page_snippets"]

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


def csp_nonce(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The script nonce of the response's Content-Security-Policy, if it has one."""
    for k, v in headers:
        if len(k) == 23 and k.lower() == b"content-security-policy":
            nonce = nonce_of(v)
            if nonce is not None:
                return nonce
    return None


def nonce_of(policy: bytes) -> str | None:
    """The first script nonce in one Content-Security-Policy value, if any."""
    m = _NONCE.search(policy)
    return m.group(1).decode() if m else None


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
    nonce: str | None = None,
) -> tuple[bytes, bytes]:
    """``(head, body)`` snippets for one page, encoded in the page's ``charset``.

    Characters the charset lacks become character references, so any
    ASCII-compatible charset takes the snippets unchanged in meaning. The script
    nonce is ``nonce`` if given, else the one of the response's CSP header.
    """
    if nonce is None:
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


def _overrides_language(query: str | bytes) -> bool:
    if isinstance(query, bytes):
        return query.find(b"consent_lang=") >= 0  # not ``in``: slow on bytes
    return "consent_lang=" in query


class PageSnippets:
    """:func:`page_snippets` with a bounded memo: what the shells call per page.

    Sites serve the same few pages to visitors in the same few states, so most
    pages reuse snippets made before: one dict lookup instead of negotiating the
    language and filling the templates. The key holds every input the snippets
    depend on, with one shortcut: a decided visitor's snippet has no form, hence
    no return URL, so their key leaves the path and query out (only a language
    override in the query counts). A page with a CSP nonce is never stored: its
    nonce is new on every response.

    The memo is a dict whose lookups and stores are atomic, cleared when full:
    safe to share between the threads of a WSGI server.
    """

    def __init__(self, banner: PageBanner, prefix: str, size: int = 1024) -> None:
        self.banner = banner
        self.prefix = prefix
        self._memo: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
        self._size = size

    def get(
        self,
        state: ConsentState,
        charset: str,
        nonce: str | None,
        accept_language: str | bytes | None,
        query: str | bytes,
        root_path: str,
        path: str,
    ) -> tuple[bytes, bytes]:
        """``(head, body)`` for one page; the arguments as :func:`page_snippets` takes them.

        ``accept_language`` and ``query`` may also be the raw bytes of an ASGI
        request (Latin-1, decoded only when the memo misses). The shells pass the
        arguments by position (a keyword call costs more per page).
        """
        decided = state.decided
        # A decided visitor's snippet depends on the query only for a language override.
        if decided and not (query and _overrides_language(query)):
            query = ""
        key = (
            accept_language,
            root_path,
            None if decided else path,
            query,
            decided,
            state.granted,
            state.gpc,
            charset,
        )
        if nonce is None:
            found = self._memo.get(key)
            if found is not None:
                return found
        if isinstance(accept_language, bytes):
            accept_language = accept_language.decode("latin-1")
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        head, body = page_snippets(
            self.banner,
            state,
            [],
            charset=charset,
            accept_language=accept_language,
            query=query,
            root_path=root_path,
            path=path,
            prefix=self.prefix,
            nonce=nonce,
        )
        if nonce is None:
            remember(self._memo, key, (head, body), self._size)
        return head, body
