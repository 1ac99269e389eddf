"""The fast paths of the pure core agree with the slow, plain functions they replace.

Each fast path is checked against a reference: the function it stands in for where
that one is an independent implementation (``HTMLInjector``, ``rewrite_headers``,
``page_snippets``, ``csp_nonce``, ``scan_head``), and a plain re-statement of the
documented behaviour where the old function now delegates to the new one
(``filter_headers`` calls ``filter_head``, ``plan_injection`` calls ``plan_page``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import cast

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from consent.banner import Banner
from consent.core.cookies import parse_attributes, parse_set_cookie
from consent.core.inject import (
    Edits,
    HTMLInjector,
    _rfind_close,
    inject_page,
    plan_injection,
    plan_page,
    rewrite_headers,
    rewrite_planned,
)
from consent.core.page import PageSnippets, csp_nonce, nonce_of, page_snippets
from consent.core.response import BlockedCookies, CookiePolicy, scan_head
from consent.state import ConsentState

from ..conftest import make_config

Header = tuple[bytes, bytes]


# -- CookiePolicy.filter_head ---------------------------------------------------------

POLICIES = {
    "block": CookiePolicy(make_config()),
    "allow": CookiePolicy(make_config(unknown_cookies="allow")),
}


def decided(p: CookiePolicy, *keys: str) -> ConsentState:
    return ConsentState(granted=frozenset(keys) | p.required, decided=True, revision=1)


def cookies(
    p: CookiePolicy, headers: Sequence[Header], state: ConsentState
) -> tuple[list[Header], list[str]]:
    """What filter_head keeps and blocks, as lists."""
    out, blocked, _ = p.filter_head(headers, state)
    return list(out), list(blocked)


def reference_filter(
    p: CookiePolicy, headers: Sequence[Header], state: ConsentState, expire: tuple[bytes, ...]
) -> tuple[list[Header], list[str], bool]:
    """filter_head as documented, written plainly: one header at a time."""
    out: list[Header] = []
    blocked: list[str] = []
    ctype = b""
    for k, v in headers:
        name = k.lower()
        if name == b"set-cookie":
            cookie = v.partition(b"=")[0].strip(b" \t").decode("latin-1")
            deletion = parse_attributes(v.partition(b";")[2])[0]
            if not (p.allows(cookie, state) or deletion):
                blocked.append(cookie)
                continue
        elif name == b"content-type":
            ctype = v
        out.append((k, v))
    out.extend((b"set-cookie", e) for e in expire)
    low = ctype.lower()
    return out, blocked, low.startswith((b"text/html", b"application/xhtml"))


COOKIE_NAMES = [
    "session",
    "csrftoken",
    "theme",
    "lang",
    "_ga",
    "_ga_XY12",
    "_gid",
    "_fbp",
    "IDE",
    "ads_42",
    "ads_x",
    "mystery",
    "consent",
    " _ga",
    "_fbp\t",
]
ATTRIBUTES = [
    b"",
    b"; Path=/",
    b"; Max-Age=0",
    b"; max-age=-1",
    b"; Max-Age=3600",
    b"; Max-Age=0; Path=/x",
    b"; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
    b"; expires=Fri, 01 Jan 2038 00:00:00 GMT",
    b"; HttpOnly; Secure",
]
SET_COOKIE = [b"set-cookie", b"Set-Cookie", b"SET-COOKIE"]
CONTENT_TYPE = [b"content-type", b"Content-Type", b"CONTENT-TYPE"]
CONTENT_TYPES = [
    b"text/html",
    b"text/html; charset=utf-8",
    b"TEXT/HTML",
    b"Text/Html; charset=latin-1",
    b"application/xhtml+xml",
    b"text/plain",
    b"application/json",
    b"",
]
OTHER_HEADERS = [
    (b"x-other", b"1"),
    (b"vary", b"Accept"),
    (b"content-length", b"12"),
    (b"Set-Cookie2", b"_ga=1"),
    (b"set-cookies", b"_fbp=1"),
    (b"Content-Types", b"text/html"),
]

set_cookies = st.builds(
    lambda k, name, value, attrs: (k, name.encode() + b"=" + value + attrs),
    st.sampled_from(SET_COOKIE),
    st.sampled_from(COOKIE_NAMES),
    st.sampled_from([b"", b"1", b"GA1.2.3", b" x "]),
    st.sampled_from(ATTRIBUTES),
)
odd_set_cookies = st.tuples(
    st.sampled_from(SET_COOKIE),
    st.one_of(st.sampled_from([b"garbage", b"", b"_ga", b" mystery "]), st.binary(max_size=24)),
)
content_types = st.tuples(st.sampled_from(CONTENT_TYPE), st.sampled_from(CONTENT_TYPES))
response_headers = st.lists(
    st.one_of(set_cookies, odd_set_cookies, content_types, st.sampled_from(OTHER_HEADERS)),
    max_size=10,
)


@st.composite
def states_for(draw: st.DrawFn, p: CookiePolicy) -> ConsentState:
    if draw(st.booleans()):
        return p.undecided
    return decided(p, *draw(st.sets(st.sampled_from(sorted(p.optional)))))


@settings(max_examples=500)
@given(
    mode=st.sampled_from(sorted(POLICIES)),
    headers=response_headers,
    data=st.data(),
    expire=st.booleans(),
    as_tuple=st.booleans(),
)
def test_filter_head_agrees_with_filter_headers_scan_head_and_the_reference(
    mode: str, headers: list[Header], data: st.DataObject, expire: bool, as_tuple: bool
) -> None:
    p = POLICIES[mode]
    state = data.draw(states_for(p))
    expiry = tuple(p.deletions("_ga")) if expire else ()
    given_headers: Sequence[Header] = tuple(headers) if as_tuple else headers
    out, blocked, html = p.filter_head(given_headers, state, expiry)
    ref_out, ref_blocked, ref_html = reference_filter(p, headers, state, expiry)
    assert list(out) == ref_out
    assert list(blocked) == ref_blocked
    assert html is ref_html
    assert html is scan_head(headers)[1]
    old_out, old_blocked = p.filter_headers(list(headers), state, expiry)
    assert (old_out, list(old_blocked)) == (ref_out, ref_blocked)
    if not blocked and not expiry:
        assert out is given_headers
    else:
        assert type(out) is list


def test_filter_head_and_scan_head_find_any_spelling_of_content_type() -> None:
    p = POLICIES["block"]
    for name in (b"content-type", b"Content-Type", b"CONTENT-TYPE", b"cONTENT-tYPE"):
        assert p.filter_head([(name, b"text/html")], p.undecided)[2] is True
        assert p.filter_head([(name, b"text/plain")], p.undecided)[2] is False
        assert scan_head([(name, b"text/html")]) == (False, True)
    for name in (b"set-cookie", b"Set-Cookie", b"sET-cOOKIE"):
        assert scan_head([(name, b"a=1")]) == (True, False)


def test_filter_head_and_scan_head_on_the_usual_spellings() -> None:
    p = POLICIES["block"]
    for headers in (
        [(b"set-cookie", b"_ga=1"), (b"content-type", b"text/html; charset=utf-8")],
        [(b"Content-Type", b"text/plain"), (b"Set-Cookie", b"session=1")],
        [(b"CONTENT-TYPE", b"Application/XHTML+xml"), (b"x-other", b"1")],
        [(b"x-other", b"1")],
    ):
        sets_cookies, html = scan_head(headers)
        assert sets_cookies is any(k.lower() == b"set-cookie" for k, _ in headers)
        assert p.filter_head(headers, p.undecided)[2] is html


def test_filter_head_takes_the_last_content_type() -> None:
    p = POLICIES["block"]
    both = [(b"content-type", b"text/html"), (b"Content-Type", b"text/plain")]
    assert p.filter_head(both, p.undecided)[2] is False
    assert p.filter_head(both[::-1], p.undecided)[2] is True


def test_filter_head_on_a_tuple_returns_it_or_a_new_list() -> None:
    p = POLICIES["block"]
    kept = ((b"set-cookie", b"session=1"), (b"content-type", b"text/html"))
    out, blocked, html = p.filter_head(kept, p.undecided)
    assert out is kept and not blocked and html is True
    dropping = ((b"content-type", b"text/plain"), (b"set-cookie", b"_ga=1"), (b"x", b"y"))
    out, blocked, html = p.filter_head(dropping, p.undecided)
    assert out == [(b"content-type", b"text/plain"), (b"x", b"y")]
    assert list(blocked) == ["_ga"] and html is False


def test_filter_head_takes_header_pairs_as_lists() -> None:
    p = POLICIES["block"]
    # What an ASGI app may send: any two-item iterables, and the spec's examples
    # use lists, [[name, value], ...].
    pairs = cast(
        "list[Header]",
        [[b"content-type", b"text/html"], [b"set-cookie", b"_ga=1"], [b"x-other", b"1"]],
    )
    out, blocked, html = p.filter_head(pairs, p.undecided)
    assert [tuple(h) for h in out] == [(b"content-type", b"text/html"), (b"x-other", b"1")]
    assert list(blocked) == ["_ga"] and html is True


def test_filter_head_keeps_what_precedes_a_drop_and_drops_every_copy() -> None:
    # The first drop copies what came before it; a later equal header is dropped too.
    p = POLICIES["block"]
    headers = [
        (b"x-a", b"1"),
        (b"set-cookie", b"session=1"),
        (b"set-cookie", b"_ga=1"),
        (b"x-b", b"2"),
        (b"set-cookie", b"_ga=1"),
    ]
    out, blocked, _ = p.filter_head(headers, p.undecided)
    assert out == [headers[0], headers[1], headers[3]]
    assert list(blocked) == ["_ga", "_ga"]


def test_a_refused_deletion_passes_and_the_verdict_is_per_attribute_string() -> None:
    p = CookiePolicy(make_config())
    undecided = p.undecided
    first = [(b"set-cookie", b"_ga=; Max-Age=0")]
    out, blocked, html = p.filter_head(first, undecided)
    assert out is first and not blocked and html is False
    # The same attributes on another refused cookie: a deletion as well.
    second = [(b"Set-Cookie", b"_fbp=x; Max-Age=0")]
    assert cookies(p, second, undecided) == (second, [])
    # The same name with other attributes is not a deletion.
    assert cookies(p, [(b"set-cookie", b"_ga=1; Max-Age=100")], undecided) == (
        [],
        ["_ga"],
    )
    assert cookies(p, [(b"set-cookie", b"_fbp=x; Max-Age=0; Path=/")], undecided) == (
        [(b"set-cookie", b"_fbp=x; Max-Age=0; Path=/")],
        [],
    )
    # Attributes that merely mention the words are no deletion.
    for attrs in (b"; Path=/max-age", b"; Comment=expires", b"; Max-Age=soon"):
        assert cookies(p, [(b"set-cookie", b"_gid=1" + attrs)], undecided)[1] == ["_gid"]


def test_the_deletion_cache_is_bounded_and_stays_right() -> None:
    p = CookiePolicy(make_config())
    undecided = p.undecided
    for i in range(4200):  # more distinct attribute strings than the cache holds
        keep = (b"set-cookie", b"_ga=; Max-Age=0; Path=/p%d" % i)
        drop = (b"set-cookie", b"_ga=1; Max-Age=60; Path=/p%d" % i)
        assert cookies(p, [keep, drop], undecided) == ([keep], ["_ga"])


def test_a_set_cookie_without_an_equals_sign_is_named_by_its_whole_value() -> None:
    block, allow = POLICIES["block"], POLICIES["allow"]
    headers = [(b"set-cookie", b" garbage "), (b"set-cookie", b""), (b"set-cookie", b"_ga")]
    assert cookies(block, headers, block.undecided) == ([], ["garbage", "", "_ga"])
    assert cookies(allow, headers, allow.undecided) == ([headers[0], headers[1]], ["_ga"])
    granted = decided(allow, "analytics")
    assert cookies(allow, headers, granted) == (headers, [])


def test_blocked_names_are_reported_stripped_whatever_the_cache_holds() -> None:
    p = CookiePolicy(make_config())
    for value in (b" _ga=1", b"_ga=2", b"_ga\t=3", b" _ga=4"):
        assert cookies(p, [(b"set-cookie", value)], p.undecided)[1] == ["_ga"]


def test_the_html_cache_is_bounded_and_stays_right() -> None:
    p = CookiePolicy(make_config())
    types = [b"text/html; v=%d" % i for i in range(100)]
    types += [b"text/plain; v=%d" % i for i in range(100)]
    for _ in range(2):
        for t in types:
            got = p.filter_head([(b"content-type", t)], p.undecided)[2]
            assert got is t.startswith(b"text/html"), t


# -- BlockedCookies -------------------------------------------------------------------


def tracked(consumed: list[int], i: int, names: list[str]) -> Iterator[str]:
    consumed.append(i)  # runs when the names are first iterated, not when made
    yield from names


def test_blocked_cookies_are_counted_lazily() -> None:
    b = BlockedCookies()
    consumed: list[int] = []
    for i in range(255):
        b.add(tracked(consumed, i, ["_ga"]))
    assert consumed == []
    assert b.counts == Counter({"_ga": 255})
    assert consumed == list(range(255))


def test_blocked_cookies_fold_every_256_additions() -> None:
    b = BlockedCookies()
    consumed: list[int] = []
    for i in range(256):
        b.add(tracked(consumed, i, ["_fbp"]))
    assert consumed == list(range(256))  # folded by add() itself
    b.add(tracked(consumed, 256, ["_fbp"]))
    assert len(consumed) == 256
    assert b.counts == Counter({"_fbp": 257})


@pytest.mark.parametrize("n", [1, 255, 256, 300])
def test_blocked_counts_after_n_additions(n: int) -> None:
    batches = [["_ga", f"x{i % 3}"] + (["_fbp"] if i % 2 else []) for i in range(n)]
    b = BlockedCookies()
    for names in batches:
        b.add(names)
    assert b.counts == Counter(chain.from_iterable(batches))
    assert b.counts == Counter(chain.from_iterable(batches))  # reading twice adds nothing


def test_blocked_counts_read_between_additions() -> None:
    b = BlockedCookies()
    seen: Counter[str] = Counter()
    for i in range(600):
        names = ["_ga"] * (i % 3) + [f"n{i % 7}"]
        b.add(names)
        seen.update(names)
        if i % 97 == 0:
            assert b.counts == seen
    assert b.counts == seen


def test_blocked_limit_holds_across_folds() -> None:
    b = BlockedCookies(limit=5)
    for i in range(300):
        b.add([f"n{i}", "n0"])
        if i == 100:
            assert len(b.counts) <= 5
    # The first five names are kept and keep counting; later ones are not added.
    assert b.counts == Counter({"n0": 301, "n1": 1, "n2": 1, "n3": 1, "n4": 1})
    for _ in range(300):
        b.add(["n9", "n1"])
    assert b.counts == Counter({"n0": 301, "n1": 301, "n2": 1, "n3": 1, "n4": 1})


# -- parse_attributes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        (b"", (False, None, None)),
        (b" ", (False, None, None)),
        (b" HttpOnly; Secure", (False, None, None)),
        (b" Max-Age=0", (True, None, None)),
        (b" max-age = -5 ", (True, None, None)),
        (b" Max-Age=100", (False, None, None)),
        (b" Max-Age=soon", (False, None, None)),
        (b" Max-Age=0; Path=/x; Domain=.example.com", (True, ".example.com", "/x")),
        (b" Expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/", (True, None, "/")),
        (b" Expires=Fri, 01 Jan 2038 00:00:00 GMT", (False, None, None)),
        (b" Max-Age=0; Expires=Fri, 01 Jan 2038 00:00:00 GMT", (True, None, None)),
        (b" Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60", (False, None, None)),
        (b"\tDOMAIN=\xe9.example\t;PATH=", (False, "\xe9.example", "")),
    ],
)
def test_parse_attributes(attrs: bytes, expected: tuple[bool, str | None, str | None]) -> None:
    assert parse_attributes(attrs) == expected


@given(st.binary(max_size=60))
def test_parse_attributes_is_what_parse_set_cookie_reads(attrs: bytes) -> None:
    parsed = parse_set_cookie(b"n=v;" + attrs)
    assert parsed is not None
    assert parse_attributes(attrs) == (parsed.deletion, parsed.domain, parsed.path)


def test_a_positive_max_age_wins_over_a_past_expires() -> None:
    # Browsers give a valid Max-Age precedence over Expires (RFC 6265, 5.3 step 3):
    # this cookie is kept for a year, so it is no deletion and must not pass.
    value = b"_ga=GA1.2.3; Max-Age=31536000; Expires=Thu, 01 Jan 2015 00:00:00 GMT"
    assert parse_attributes(value.partition(b";")[2])[0] is False
    p = CookiePolicy(make_config())
    assert cookies(p, [(b"set-cookie", value)], p.undecided) == ([], ["_ga"])


# -- inject_page and _rfind_close -----------------------------------------------------

HEAD = b"<!--H-->"
BODY = b"<div id=banner></div>"

PAGE_FRAGMENTS = [
    b"<head>",
    b"<HEAD lang=x>",
    b"<head a='>'>",
    b'<head b=">">',
    b"<head/>",
    b"<head",
    b"<!-- <head> -->",
    b"<!--",
    b"-->",
    b"</body>",
    b"</BODY>",
    b"</BoDy>",
    b"<header>",
    b"<body>",
    b"<p>text</p>",
    b"'",
    b">",
    b"x" * 700,
    b"." * 1500,
]
pages = st.lists(
    st.one_of(st.sampled_from(PAGE_FRAGMENTS), st.binary(max_size=16)), max_size=24
).map(b"".join)
windows = st.one_of(
    st.integers(1, 80), st.integers(1024, 4096), st.integers(4096, 70000), st.just(65536)
)


@settings(max_examples=1500)
@given(page=pages, head=st.sampled_from([b"", HEAD]), window=windows)
def test_inject_page_equals_the_injector(page: bytes, head: bytes, window: int) -> None:
    expected = HTMLInjector(BODY, head=head, window=window).finish(page)
    assert inject_page(page, BODY, head, window) == expected


def test_inject_page_default_window_is_the_injectors() -> None:
    page = b"<head></head><body>" + b"x" * 70000 + b"</body>"
    assert inject_page(page, BODY, HEAD) == HTMLInjector(BODY, head=HEAD).finish(page)


PLAIN = b"<html><head><title>t</title></head><body><p>hi</p></BoDy></html>"


@pytest.mark.parametrize(
    ("page", "head", "window", "expected"),
    [
        # No head snippet: the body snippet before the last </body>.
        (PLAIN, b"", 65536, PLAIN.replace(b"</BoDy>", BODY + b"</BoDy>")),
        # The plain page: both placed in one join.
        (
            PLAIN,
            HEAD,
            65536,
            PLAIN.replace(b"<head>", b"<head>" + HEAD).replace(b"</BoDy>", BODY + b"</BoDy>"),
        ),
        # No </body>: the body snippet at the end.
        (b"<head><p>", HEAD, 65536, b"<head>" + HEAD + b"<p>" + BODY),
        # </body> too far back from the end: the body snippet at the end.
        (
            b"<head></body>" + b"x" * 2000,
            HEAD,
            1024,
            b"<head>" + HEAD + b"</body>" + b"x" * 2000 + BODY,
        ),
        # No <head> tag: the head snippet goes with the body snippet.
        (b"<header></body>", HEAD, 65536, b"<header>" + HEAD + BODY + b"</body>"),
        # <head> past the window: as if it had none.
        (
            b"x" * 1100 + b"<head></body>",
            HEAD,
            1024,
            b"x" * 1100 + b"<head>" + HEAD + BODY + b"</body>",
        ),
        # A comment first: the <head> in it does not count.
        (
            b"<!-- <head> --><head></body>",
            HEAD,
            65536,
            b"<!-- <head> --><head>" + HEAD + BODY + b"</body>",
        ),
        # A quote in the tag: the tag ends at the first > outside quotes.
        (b"<head a='>'></body>", HEAD, 65536, b"<head a='>'>" + HEAD + BODY + b"</body>"),
        # <head> after </body>: each snippet in its place.
        (b"</body><head>", HEAD, 65536, BODY + b"</body><head>" + HEAD),
        # An empty page.
        (b"", HEAD, 65536, HEAD + BODY),
    ],
)
def test_inject_page_examples(page: bytes, head: bytes, window: int, expected: bytes) -> None:
    assert inject_page(page, BODY, head, window) == expected
    assert HTMLInjector(BODY, head=head, window=window).finish(page) == expected


CLOSE_FRAGMENTS = [
    b"</body>",
    b"</BODY>",
    b"</Body>",
    b"</bod",
    b"y>",
    b"<",
    b"/",
    b"a",
    b"x" * 300,
    b"y" * 1000,
]
close_data = st.lists(
    st.one_of(st.sampled_from(CLOSE_FRAGMENTS), st.binary(max_size=8)), max_size=16
).map(b"".join)


@settings(max_examples=1000)
@given(close_data)
def test_rfind_close_finds_the_last_close_tag_in_any_case(data: bytes) -> None:
    assert _rfind_close(data) == data.lower().rfind(b"</body>")


@settings(max_examples=500)
@given(
    before=close_data,
    tag=st.sampled_from([b"</body>", b"</BODY>", b"</bOdY>", b""]),
    after=st.integers(0, 2600),
    late=st.sampled_from([b"", b"</body>", b"</BODY>"]),
)
def test_rfind_close_on_long_pages(before: bytes, tag: bytes, after: int, late: bytes) -> None:
    data = before + b"x" * 2100 + tag + b"z" * after + late + b"z" * (after // 3)
    assert _rfind_close(data) == data.lower().rfind(b"</body>")


@pytest.mark.parametrize(
    "data",
    [
        b"x" * 3000 + b"</body>" + b"x" * 10,  # lowercase, in the tail
        b"x" * 3000 + b"</body>" + b"x" * 10 + b"</BODY>",  # another spelling follows
        b"x" * 3000 + b"</BODY>" + b"x" * 10,  # uppercase, in the tail
        b"x" * 3000 + b"</BODY>" + b"x" * 600,  # uppercase, before the tail
        b"</body>" + b"x" * 3000 + b"</BODY>" + b"x" * 600,  # both before the tail
        b"</BODY>" + b"x" * 3000 + b"</body>" + b"x" * 600,  # lowercase last, far back
        b"x" * 3000 + b"</BO" + b"DY>" + b"x" * 509,  # across the tail's seam
        b"x" * 3000 + b"</BODY" + b">" + b"x" * 511,  # ending on the seam
        b"x" * 3000,  # none
        b"</BODY>" + b"x" * 100,  # a short page
    ],
)
def test_rfind_close_examples(data: bytes) -> None:
    assert _rfind_close(data) == data.lower().rfind(b"</body>")


# -- plan_page and rewrite_planned ----------------------------------------------------

SPELLINGS = {
    b"content-type": [b"content-type", b"Content-Type", b"CONTENT-TYPE", b"cOnTeNt-TyPe"],
    b"content-length": [b"content-length", b"Content-Length", b"CONTENT-LENGTH", b"cOnTeNt-LeNgTh"],
    b"vary": [b"vary", b"Vary", b"VARY", b"vArY"],
    b"etag": [b"etag", b"ETag", b"Etag", b"ETAG", b"eTaG"],
    b"content-security-policy": [
        b"content-security-policy",
        b"Content-Security-Policy",
        b"CONTENT-SECURITY-POLICY",
    ],
    b"content-encoding": [b"content-encoding", b"Content-Encoding", b"CONTENT-ENCODING"],
    b"content-range": [b"content-range", b"Content-Range", b"CoNtEnT-rAnGe"],
    b"content-disposition": [b"content-disposition", b"Content-Disposition"],
    # Names as long as one that matters, and names that do not matter.
    b"other": [b"Content-Typo", b"x-other", b"Etags", b"VARIES", b"set-cookie", b"Content-Lengthy"],
}
VALUES = {
    b"content-type": [
        b"text/html",
        b"text/html; charset=utf-8",
        b"text/html; charset=latin-1",
        b'TEXT/HTML; Charset="ISO-8859-1"',
        b"application/xhtml+xml",
        b"text/html; charset=utf-16",
        b"text/plain",
    ],
    b"content-length": [b"123", b" 123 ", b"007", b"0", b"12a", b"", b"-5", b"1 2"],
    b"vary": [b"*", b"Cookie", b"", b" ", b"Accept-Encoding", b"accept-encoding, cookie", b"X, *"],
    b"etag": [b'"abc"', b'W/"abc"', b'w/"x"', b"abc", b' "x" ', b""],
    b"content-security-policy": [
        b"default-src 'self'",
        b"script-src 'nonce-abc123'",
        b"script-src 'nonce-XYZ' 'nonce-second'",
    ],
    b"content-encoding": [b"identity", b"gzip", b"", b"identity, br", b" Identity "],
    b"content-range": [b"bytes 0-1/2"],
    b"content-disposition": [b"inline", b"attachment; filename=x", b" Attachment "],
    b"other": [b"text/html", b"1", b"a=b"],
}
HTML_TYPE = st.tuples(
    st.sampled_from(SPELLINGS[b"content-type"]), st.sampled_from(VALUES[b"content-type"][:5])
)


def headers_of(kinds: list[bytes]) -> st.SearchStrategy[list[Header]]:
    one = st.sampled_from(kinds).flatmap(
        lambda kind: st.tuples(st.sampled_from(SPELLINGS[kind]), st.sampled_from(VALUES[kind]))
    )
    return st.lists(one, max_size=7)


@st.composite
def with_html_type(draw: st.DrawFn, rest: st.SearchStrategy[list[Header]]) -> list[Header]:
    """``rest``, with one HTML Content-Type at some place (or none, sometimes)."""
    headers = draw(rest)
    if draw(st.integers(0, 4)):
        headers.insert(draw(st.integers(0, len(headers))), draw(HTML_TYPE))
    return headers


any_headers = with_html_type(headers_of(list(SPELLINGS)))
# What a page that can be injected may have: plan_page gives a plan for most of these.
page_headers = with_html_type(
    headers_of([b"content-length", b"vary", b"etag", b"content-security-policy", b"other"])
)


def reference_plan(method: str, status: int, headers: Sequence[Header]) -> str | None:
    """plan_injection as documented, written plainly (as it was before plan_page)."""
    if status != 200 or method.upper() != "GET":
        return None
    types = [v for k, v in headers if k.lower() == b"content-type"]
    if len(types) != 1:
        return None
    for k, v in headers:
        name = k.lower()
        if name == b"content-range":
            return None
        codings = {t.strip().lower() for t in v.split(b",")}
        if name == b"content-encoding" and codings - {b"", b"identity"}:
            return None
        if name == b"content-disposition" and v.split(b";")[0].strip().lower() == b"attachment":
            return None
    return plan_injection("GET", 200, [(b"content-type", types[0])])


def reference_edits(headers: Sequence[Header]) -> Edits:
    found: list[int] = []
    for name in (b"content-length", b"vary", b"etag"):
        at = [i for i, (k, _) in enumerate(headers) if k.lower() == name]
        if len(at) > 1:
            return None
        found.append(at[0] if at else -1)
    return found[0], found[1], found[2]


@settings(max_examples=1000)
@given(
    method=st.sampled_from(["GET", "get", "Get", "HEAD", "POST"]),
    status=st.sampled_from([200, 200, 200, 204, 206, 304]),
    headers=any_headers,
)
def test_plan_page_agrees_with_plan_injection_and_csp_nonce(
    method: str, status: int, headers: list[Header]
) -> None:
    plan = plan_page(method, status, headers)
    codec = plan_injection(method, status, headers)
    assert codec == reference_plan(method, status, headers)
    if plan is None:
        assert codec is None
        return
    assert plan[0] == codec
    assert plan[1] == csp_nonce(headers)
    assert plan[2] == reference_edits(headers)


def test_plan_page_examples() -> None:
    headers = [
        (b"Content-Type", b"text/html; charset=latin-1"),
        (b"Etag", b'"a"'),
        (b"CONTENT-SECURITY-POLICY", b"default-src 'self'"),
        (b"content-security-policy", b"script-src 'nonce-n2'"),
        (b"cOnTeNt-LeNgTh", b"10"),
        (b"Content-Security-Policy", b"script-src 'nonce-n3'"),
    ]
    assert plan_page("GET", 200, headers) == ("iso8859-1", "n2", (4, -1, 1))
    assert plan_page("GET", 200, [*headers, (b"vary", b"a"), (b"Vary", b"b")]) == (
        "iso8859-1",
        "n2",
        None,
    )
    assert plan_page(
        "GET", 200, [(b"ETag", b"x"), (b"etag", b"y"), (b"content-type", b"text/html")]
    )
    assert plan_page("GET", 200, [(b"Content-Typo", b"text/html")]) is None
    assert plan_page("POST", 200, headers) is None
    assert plan_page("GET", 206, headers) is None


@settings(max_examples=1000)
@given(headers=page_headers, added=st.integers(0, 5000), trailers=st.booleans())
def test_rewrite_planned_equals_rewrite_headers(
    headers: list[Header], added: int, trailers: bool
) -> None:
    plan = plan_page("GET", 200, headers)
    assume(plan is not None)
    assert plan is not None
    expected = rewrite_headers(headers, added, trailers=trailers)
    assert rewrite_planned(headers, plan[2], added, trailers=trailers) == expected
    assert rewrite_planned(tuple(headers), plan[2], added, trailers=trailers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            [(b"content-length", b"10")],
            [(b"content-length", b"15"), (b"vary", b"Cookie")],
        ),
        (
            [(b"Content-Length", b" 10 "), (b"ETag", b"abc"), (b"Vary", b"Accept")],
            [(b"Content-Length", b"15"), (b"ETag", b'W/"abc"'), (b"Vary", b"Accept, Cookie")],
        ),
        (
            [(b"content-length", b"ten"), (b"vary", b"*"), (b"etag", b'W/"a"')],
            [(b"vary", b"*"), (b"etag", b'W/"a"')],
        ),
        (
            [(b"content-length", b"1"), (b"content-length", b"1"), (b"vary", b" ")],
            [(b"content-length", b"6"), (b"content-length", b"6"), (b"vary", b"Cookie")],
        ),
    ],
)
def test_rewrite_planned_examples(headers: list[Header], expected: list[Header]) -> None:
    page = [(b"content-type", b"text/html"), *headers]
    plan = plan_page("GET", 200, page)
    assert plan is not None
    assert rewrite_planned(page, plan[2], 5) == [page[0], *expected]


# -- PageSnippets, nonce_of -----------------------------------------------------------

CONFIG = make_config()
BANNER = Banner(CONFIG)
REQUIRED = CONFIG.required_keys
UNDECIDED = ConsentState(granted=REQUIRED)
DECIDED = ConsentState(granted=REQUIRED | {"analytics"}, decided=True, consent_id="c" * 22)
STATES = [
    UNDECIDED,
    DECIDED,
    ConsentState(granted=REQUIRED, decided=True),
    ConsentState(granted=REQUIRED, gpc=True, gpc_denied=frozenset({"marketing"})),
]


class CountingBanner:
    """A real Banner that counts how often a body snippet is made."""

    def __init__(self, banner: Banner) -> None:
        self.banner = banner
        self.made = 0

    def negotiate(self, accept_language: str | None, override: str | None = None) -> str:
        return self.banner.negotiate(accept_language, override)

    def snippet_bytes(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        charset: str,
        next_url: str = "/",
        nonce: str | None = None,
    ) -> bytes:
        self.made += 1
        return self.banner.snippet_bytes(
            state, locale, prefix=prefix, charset=charset, next_url=next_url, nonce=nonce
        )

    def head_snippet_bytes(
        self, state: ConsentState, *, charset: str, nonce: str | None = None
    ) -> bytes:
        return self.banner.head_snippet_bytes(state, charset=charset, nonce=nonce)


def direct(
    state: ConsentState,
    *,
    charset: str = "utf-8",
    nonce: str | None = None,
    accept_language: str | None = None,
    query: str = "",
    root_path: str = "",
    path: str = "/",
) -> tuple[bytes, bytes]:
    return page_snippets(
        BANNER,
        state,
        [],
        charset=charset,
        accept_language=accept_language,
        query=query,
        root_path=root_path,
        path=path,
        prefix=CONFIG.prefix,
        nonce=nonce,
    )


def memo(
    snippets: PageSnippets,
    state: ConsentState,
    *,
    charset: str = "utf-8",
    nonce: str | None = None,
    accept_language: str | None = None,
    query: str = "",
    root_path: str = "",
    path: str = "/",
) -> tuple[bytes, bytes]:
    return snippets.get(
        state,
        charset=charset,
        nonce=nonce,
        accept_language=accept_language,
        query=query,
        root_path=root_path,
        path=path,
    )


PLACES = [
    ("", "/"),
    ("", "/a"),
    ("/sub", "/a/b"),
    ("", "/a?"),
]
QUERIES = ["", "x=1", "x=1&consent_lang=fr", "consent_lang=de", "consent_lang=zz"]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("charset", ["utf-8", "iso8859-1", "ascii"])
def test_page_snippets_memo_equals_page_snippets(state: ConsentState, charset: str) -> None:
    snippets = PageSnippets(BANNER, CONFIG.prefix)
    for _ in range(2):  # made, then from the memo
        for root_path, path in PLACES:
            for query in QUERIES:
                for lang in (None, "de-AT,de;q=0.9", "fr", "xx"):
                    kw = {"query": query, "root_path": root_path, "path": path}
                    got = memo(snippets, state, charset=charset, accept_language=lang, **kw)
                    want = direct(state, charset=charset, accept_language=lang, **kw)
                    assert got == want, (root_path, path, query, lang)


@pytest.mark.parametrize("state", STATES)
def test_page_snippets_memo_takes_raw_request_bytes(state: ConsentState) -> None:
    # What the ASGI shell passes: the header and the query string as sent (Latin-1).
    snippets = PageSnippets(BANNER, CONFIG.prefix)
    for query in QUERIES:
        for lang in (None, "de-AT,de;q=0.9", "fr"):
            raw_lang = None if lang is None else lang.encode("latin-1")
            got = snippets.get(state, "utf-8", None, raw_lang, query.encode("latin-1"), "", "/a")
            want = direct(state, charset="utf-8", accept_language=lang, query=query, path="/a")
            assert got == want, (query, lang)


def test_a_decided_visitors_snippet_does_not_depend_on_the_page() -> None:
    # The memo leaves the path and query out of a decided visitor's key: sound only
    # if page_snippets itself gives the same snippets on every page.
    snippets = PageSnippets(BANNER, CONFIG.prefix)
    first = memo(snippets, DECIDED, path="/a", query="x=1")
    for path, query in [("/b", ""), ("/c/d", "y=2&z=3"), ("/a", "x=1")]:
        assert direct(DECIDED, path=path, query=query) == first
        assert memo(snippets, DECIDED, path=path, query=query) == first


def test_an_undecided_visitors_snippet_returns_to_its_page() -> None:
    snippets = PageSnippets(BANNER, CONFIG.prefix)
    a = memo(snippets, UNDECIDED, path="/page-a")
    b = memo(snippets, UNDECIDED, path="/page-b", query="q=1")
    assert a != b
    assert b'value="/page-a"' in a[1]
    assert b'value="/page-b?q=1"' in b[1]
    assert memo(snippets, UNDECIDED, path="/page-a") == a
    assert memo(snippets, UNDECIDED, path="/page-a", query="q=1") != a


def test_a_decided_visitors_language_override_is_honoured() -> None:
    snippets = PageSnippets(BANNER, CONFIG.prefix)
    plain = memo(snippets, DECIDED, accept_language="en")
    german = memo(snippets, DECIDED, accept_language="en", query="consent_lang=de")
    french = memo(snippets, DECIDED, accept_language="en", query="a=1&consent_lang=fr", path="/x")
    assert b'lang="en"' in plain[1]
    assert b'lang="de"' in german[1]
    assert b'lang="fr"' in french[1]
    assert german == direct(DECIDED, accept_language="en", query="consent_lang=de")
    assert memo(snippets, DECIDED, accept_language="en", query="b=2") == plain


def test_a_nonce_is_used_and_never_stored() -> None:
    counting = CountingBanner(BANNER)
    snippets = PageSnippets(counting, CONFIG.prefix)
    for state in (UNDECIDED, DECIDED):
        first = memo(snippets, state, nonce="nonceOne")
        assert first == direct(state, nonce="nonceOne")
        assert b'nonce="nonceOne"' in first[0] and b'nonce="nonceOne"' in first[1]
        second = memo(snippets, state, nonce="nonceTwo")
        assert b'nonce="nonceTwo"' in second[0] and b'nonce="nonceTwo"' in second[1]
        assert b"nonceOne" not in second[0] + second[1]
        plain = memo(snippets, state)
        assert b"nonce" not in plain[0] + plain[1]
        assert plain == direct(state)
        # With a nonce the snippets are made every time, even after a stored call.
        made = counting.made
        memo(snippets, state, nonce="nonceOne")
        assert counting.made == made + 1


def test_the_memo_reuses_snippets_and_is_bounded() -> None:
    counting = CountingBanner(BANNER)
    snippets = PageSnippets(counting, CONFIG.prefix, size=2)
    memo(snippets, UNDECIDED, path="/a")
    memo(snippets, UNDECIDED, path="/b")
    assert counting.made == 2
    assert memo(snippets, UNDECIDED, path="/a") == direct(UNDECIDED, path="/a")
    assert counting.made == 2  # from the memo
    for i in range(10):
        assert memo(snippets, UNDECIDED, path=f"/p{i}") == direct(UNDECIDED, path=f"/p{i}")
    assert counting.made == 12
    # Ten pages later, with room for two, /a was dropped: made again.
    assert memo(snippets, UNDECIDED, path="/a") == direct(UNDECIDED, path="/a")
    assert counting.made == 13


def test_nonce_of() -> None:
    assert nonce_of(b"script-src 'self' 'nonce-abc+/=_-123'") == "abc+/=_-123"
    assert nonce_of(b"script-src 'nonce-first' 'nonce-second'") == "first"
    assert nonce_of(b"default-src 'self'") is None
    assert nonce_of(b"") is None
    assert nonce_of(b"script-src 'nonce-'") is None
    assert nonce_of(b"script-src 'nonce-a b'") is None
    assert nonce_of(b"script-src nonce-abc") is None
    assert nonce_of(b"script-src 'nonce-" + b"a" * 128 + b"'") == "a" * 128
    assert nonce_of(b"script-src 'nonce-" + b"a" * 129 + b"'") is None


def test_csp_nonce_takes_the_first_policy_with_a_nonce() -> None:
    headers = [
        (b"content-security-policy", b"default-src 'self'"),
        (b"x-content-security-policy", b"script-src 'nonce-not-this'"),
        (b"Content-Security-Policy", b"script-src 'nonce-second'"),
        (b"content-security-policy", b"script-src 'nonce-third'"),
    ]
    assert csp_nonce(headers) == "second"
    assert csp_nonce(headers[:2]) is None


def test_page_snippets_prefers_the_given_nonce_to_the_header() -> None:
    headers = [(b"content-security-policy", b"script-src 'nonce-fromheader'")]
    given_nonce, from_header = (
        page_snippets(
            BANNER,
            UNDECIDED,
            headers,
            charset="utf-8",
            accept_language=None,
            query="",
            root_path="",
            path="/",
            prefix=CONFIG.prefix,
            nonce=nonce,
        )
        for nonce in ("given", None)
    )
    assert b'nonce="given"' in given_nonce[1] and b"fromheader" not in given_nonce[1]
    assert b'nonce="fromheader"' in from_header[1]
