"""PageSnippets: the snippets of one page, memoised per visitor state and page."""

from __future__ import annotations

from consent.banner import Banner
from consent.core.page import PageSnippets, csp_nonce, page_snippets
from consent.core.response import BlockedCookies, CookiePolicy
from consent.state import ConsentState

from ..conftest import make_config

CONFIG = make_config()
DECIDED = ConsentState(granted=frozenset({"necessary", "analytics"}), decided=True, revision=1)
UNDECIDED = ConsentState(granted=frozenset({"necessary"}))


def snippets() -> PageSnippets:
    return PageSnippets(Banner(CONFIG), CONFIG.prefix)


def test_csp_nonce_skips_other_headers_and_policies_without_one() -> None:
    headers = [
        (b"content-type", b"text/html"),
        (b"content-security-policy", b"default-src 'self'"),
        (b"Content-Security-Policy", b"script-src 'nonce-n2'"),
    ]
    assert csp_nonce(headers) == "n2"


def test_a_language_override_in_the_query_picks_the_banner_language() -> None:
    def body(query: str) -> bytes:
        return page_snippets(
            Banner(CONFIG),
            UNDECIDED,
            [],
            charset="utf-8",
            accept_language="en",
            query=query,
            root_path="",
            path="/",
            prefix="/_consent",
        )[1]

    german, english = body("a=1&consent_lang=de"), body("a=1")
    assert german != english and b'lang="de"' in german


def test_a_decided_visitor_shares_one_memo_entry_across_queries() -> None:
    s = snippets()
    first = s.get(DECIDED, "utf-8", None, b"en", b"page=2", "", "/a")
    assert s.get(DECIDED, "utf-8", None, b"en", b"", "", "/b") == first
    assert len(s._memo) == 1
    # ... but a language override in the query is its own entry.
    other = s.get(DECIDED, "utf-8", None, b"en", b"consent_lang=de", "", "/a")
    assert other != first and len(s._memo) == 2
    assert s.get(DECIDED, "utf-8", None, "en", "consent_lang=de", "", "/a") == other


def test_a_page_with_a_nonce_is_never_memoised() -> None:
    s = snippets()
    head, _ = s.get(UNDECIDED, "utf-8", "n0nce", b"en", b"", "", "/")
    assert b'nonce="n0nce"' in head and s._memo == {}


def test_the_memo_is_bounded() -> None:
    s = PageSnippets(Banner(CONFIG), CONFIG.prefix, size=2)
    for path in ("/a", "/b", "/c"):
        s.get(UNDECIDED, "utf-8", None, None, b"", "", path)
    assert len(s._memo) == 1


def test_blocked_names_are_counted_in_batches() -> None:
    blocked = BlockedCookies(limit=2)
    for _ in range(256):
        blocked.add(["_ga"])
    assert blocked._pending == []  # folded on the 256th response
    blocked.add(["_fbp", "IDE"])
    assert blocked.counts == {"_ga": 256, "_fbp": 1}


def test_the_deletion_verdicts_are_bounded() -> None:
    p = CookiePolicy(CONFIG)
    p._cache_size = 2
    for i in range(3):
        p._deletes(b" Max-Age=%d" % i)
    assert len(p._deletions) == 1
