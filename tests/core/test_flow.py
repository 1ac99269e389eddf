"""The response flow, without a server: every rule of the response path, on plain events.

Slow, plain re-statements of the documented behaviour serve as oracles here
(``reference_filter``), and the streaming injector is the oracle of the
whole-page kernel: every chunk split of a page must give the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent._shell import Shell
from consent.core.cookies import parse_attributes
from consent.core.flow import DONE, HELD, INJECTING, PASS, ResponseFlow, rewrite_headers
from consent.core.kernels import header_kinds
from consent.core.response import CookiePolicy, RequestConsent
from consent.state import ConsentState

from ..conftest import make_config

Header = tuple[bytes, bytes]

SHELL = Shell(make_config(), who="test")
SMALL_WINDOW = Shell(make_config(inject_window=1024), who="test")
POLICY = SHELL.policy
HTML = b"<!doctype html><html><head><title>t</title></head><body><p>hi</p></body></html>"
PAGE = [(b"content-type", b"text/html; charset=utf-8")]


def visitor(*keys: str, expire: tuple[bytes, ...] = ()) -> RequestConsent:
    granted = frozenset(keys) | POLICY.required
    state = ConsentState(granted=granted, decided=bool(keys), revision=1)
    return RequestConsent(state, expire, (), float("inf"))


def flow(
    rc: RequestConsent | None = None, method: str = "GET", shell: Shell = SHELL, path: str = "/"
) -> ResponseFlow:
    return ResponseFlow(shell.pipeline, rc or visitor(), method, path, b"", "", b"en")


def header(headers: Sequence[Header] | None, name: bytes) -> bytes | None:
    assert headers is not None
    return next((v for k, v in headers if k.lower() == name), None)


def serve(f: ResponseFlow, status: int, headers: list[Header], chunks: list[bytes]) -> tuple:
    """Run a whole response through ``f``: (start headers, body) as a server would get them."""
    start = f.start(status, headers)
    out = []
    for i, chunk in enumerate(chunks):
        held, piece = f.body(chunk, i < len(chunks) - 1)
        if held is not None:
            assert start is None
            start = held
        elif f.state == HELD:
            assert piece == b""
        out.append(piece)
    if f.state == HELD:  # an empty body
        start = f.flush()
    return start, b"".join(out)


# -- which responses take the snippets ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "headers", "held"),
    [
        ("GET", 200, PAGE, True),
        ("get", 200, PAGE, True),
        ("POST", 200, PAGE, False),
        ("GET", 204, PAGE, False),
        ("GET", 404, PAGE, False),
        ("GET", 206, [*PAGE, (b"content-range", b"bytes 0-9/100")], False),
        ("GET", 200, [*PAGE, (b"Content-Range", b"bytes 0-9/100")], False),
        ("GET", 200, [*PAGE, (b"content-encoding", b"gzip")], False),
        ("GET", 200, [*PAGE, (b"Content-Encoding", b"zstd")], False),
        ("GET", 200, [*PAGE, (b"content-encoding", b"identity, br")], False),
        ("GET", 200, [*PAGE, (b"content-encoding", b" Identity ")], True),
        ("GET", 200, [(b"content-type", b"image/png")], False),
        ("GET", 200, [(b"content-type", b"text/plain; charset=utf-8")], False),
        ("GET", 200, [], False),
        ("GET", 200, [(b"content-type", b" text/html")], True),
        ("GET", 200, [(b"Content-Type", b'TEXT/HTML ; Charset="UTF-8"')], True),
        ("GET", 200, [(b"CONTENT-TYPE", b"application/xhtml+xml")], True),
        ("GET", 200, [(b"content-type", b"text/html; charset=UTF-16")], False),
        ("GET", 200, [(b"content-type", b"text/html"), (b"content-type", b"text/html")], False),
        ("GET", 200, [*PAGE, (b"content-disposition", b"attachment; filename=a.html")], False),
        ("GET", 200, [*PAGE, (b"content-disposition", b"inline")], True),
        ("GET", 200, [*PAGE, (b"set-cookie", b"a=1"), (b"x-other", b"y")], True),
    ],
)
def test_which_responses_are_held_for_the_snippets(
    method: str, status: int, headers: list[Header], held: bool
) -> None:
    f = flow(method=method)
    out = f.start(status, headers)
    assert (out is None) is held
    assert f.state == (HELD if held else PASS)


@pytest.mark.parametrize(
    ("content_type", "codec"),
    [
        (b"text/html", "utf-8"),
        (b"text/html; charset=", "utf-8"),
        (b"text/html; q=1; charset=ISO-8859-1", "iso8859-1"),
        (b"text/html; charset=windows-1252", "cp1252"),
        (b"text/html; charset=Shift_JIS", "shift_jis"),
        (b"text/html; charset=utf-16le", ""),
        (b"text/html; charset=UTF-32", ""),
        (b"text/html; charset=utf-7", ""),
        (b"text/html; charset=ISO-2022-JP", ""),
        (b"text/html; charset=cp037", ""),
        (b"text/html; charset=utf-8-sig", ""),
        (b"text/html; charset=base64", ""),
        (b"text/html; charset=no-such-codec", ""),
        (b"text/html; charset=a\x00b", ""),
        (b"text/plain", ""),
    ],
)
def test_the_codec_of_a_page(content_type: bytes, codec: str) -> None:
    assert SHELL.pipeline.codec(content_type) == codec


@given(
    st.lists(st.tuples(st.sampled_from([b"content-type", b"Content-Encoding", b"x"]), st.binary()))
)
def test_any_head_is_answered_without_raising(headers: list[Header]) -> None:
    f = flow()
    out = f.start(200, headers)
    assert f.state in (HELD, PASS) and (out is None) == (f.state == HELD)


# -- the Set-Cookie filter, against a plain oracle ------------------------------------


def reference_filter(
    p: CookiePolicy, headers: Sequence[Header], state: ConsentState
) -> tuple[list[Header], list[str]]:
    """The filter as documented, one header at a time."""
    out: list[Header] = []
    blocked: list[str] = []
    for k, v in headers:
        if k.lower() == b"set-cookie":
            name = v.partition(b"=")[0].strip(b" \t").decode("latin-1")
            deletion = parse_attributes(v.partition(b";")[2])[0]
            if not (p.allows(name, state) or deletion):
                blocked.append(name)
                continue
        out.append((k, v))
    return out, blocked


COOKIE_NAMES = ["session", "theme", "_ga", "_ga_XY", "_gid", "_fbp", "ads_42", "mystery", "consent"]
ATTRIBUTES = [b"", b"; Path=/", b"; Max-Age=0", b"; Max-Age=+0", b"; Max-Age=3600", b"; HttpOnly"]
headers_strategy = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([b"set-cookie", b"Set-Cookie", b"SET-COOKIE"]),
            st.builds(
                lambda n, a: n.encode() + b"=v" + a,
                st.sampled_from(COOKIE_NAMES),
                st.sampled_from(ATTRIBUTES),
            ),
        ),
        st.tuples(st.sampled_from([b"content-type", b"x-other", b"set-cookie2"]), st.binary()),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    headers_strategy,
    st.sets(st.sampled_from(["preferences", "analytics", "marketing"])),
    st.sampled_from(["block", "allow"]),
)
def test_filter_agrees_with_the_reference(
    headers: list[Header], granted: set[str], unknown: str
) -> None:
    p = CookiePolicy(make_config(unknown_cookies=unknown))
    state = ConsentState(granted=frozenset(granted) | p.required, decided=True, revision=1)
    kept = p.filter_set_cookies(headers, header_kinds(headers), state)
    expected, blocked = reference_filter(p, headers, state)
    if kept is None:
        assert expected == headers and blocked == []
    else:
        assert (kept[0], kept[2]) == (expected, blocked)
        assert kept[1] == header_kinds(expected)


# -- what a changed response says to caches ---------------------------------------------


def test_an_untouched_response_is_passed_as_the_same_object() -> None:
    headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"session=1")]
    assert flow().start(200, headers) is headers


def test_a_filtered_response_becomes_private_and_varies_on_cookie() -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"Cache-Control", b"public, max-age=60, s-maxage=3600"),
        (b"set-cookie", b"_ga=1"),
        (b"Vary", b"Accept-Encoding"),
    ]
    out = flow().start(200, headers)
    assert out == [
        (b"content-type", b"application/json"),
        (b"Cache-Control", b"private, max-age=60"),
        (b"Vary", b"Accept-Encoding, Cookie"),
    ]


def test_deletions_make_a_response_private_and_are_capped() -> None:
    limit = SHELL.config.deletions_per_response
    expire = tuple(b"c%d=; Max-Age=0" % i for i in range(3 * limit + 1))
    rounds = []
    for _ in range(4):
        out = flow(visitor(expire=expire)).start(200, [(b"content-type", b"text/plain")])
        deletions = [v for k, v in out or () if k == b"set-cookie"]
        assert len(deletions) == limit
        assert header(out, b"cache-control") == b"private"
        rounds.append(deletions)
    assert set(itertools.chain.from_iterable(rounds)) == set(expire)


def test_no_store_stays_and_gets_no_private_added() -> None:
    out = flow().start(200, [(b"cache-control", b"no-store"), (b"set-cookie", b"_ga=1")])
    assert header(out, b"cache-control") == b"no-store"


def test_a_page_with_snippets_has_every_header_rewritten() -> None:
    headers = [
        *PAGE,
        (b"content-length", b"%d" % len(HTML)),
        (b"etag", b'"v1"'),
        (b"accept-ranges", b"bytes"),
        (b"cache-control", b"max-age=60"),
    ]
    start, body = serve(flow(), 200, headers, [HTML])
    assert b"data-consent-banner" in body
    assert header(start, b"content-length") == b"%d" % len(body)
    assert header(start, b"etag") == b'W/"v1"'
    assert header(start, b"accept-ranges") is None
    assert header(start, b"cache-control") == b"private, max-age=60"
    assert header(start, b"vary") == b"Cookie, Accept-Language, Sec-GPC"


def test_vary_names_sec_gpc_only_when_gpc_is_honoured() -> None:
    shell = Shell(make_config(gpc=False), who="test")
    start, _ = serve(flow(shell=shell), 200, list(PAGE), [HTML])
    assert header(start, b"vary") == b"Cookie, Accept-Language"


def test_head_announces_what_get_sends() -> None:
    headers = [*PAGE, (b"content-length", b"%d" % len(HTML)), (b"etag", b'"v1"')]
    get_start, _ = serve(flow(), 200, list(headers), [HTML])
    head = flow(method="HEAD")
    head_start = head.start(200, list(headers))
    assert head.state == PASS
    assert head_start == get_start
    assert head.body(HTML) == (None, HTML)  # the server drops it; never injected


def test_a_304_carries_a_weak_etag() -> None:
    out = flow().start(304, [(b"etag", b'"v1"'), (b"cache-control", b"public")])
    assert out == [(b"etag", b'W/"v1"'), (b"cache-control", b"public")]


def test_a_304_on_an_excluded_path_is_left_alone() -> None:
    shell = Shell(make_config(exclude_paths=["/admin"]), who="test")
    headers = [(b"etag", b'"v1"')]
    assert flow(shell=shell, path="/admin/x").start(304, headers) is headers


# -- the body ----------------------------------------------------------------------------


def test_a_byte_order_mark_releases_the_start_unchanged() -> None:
    f = flow()
    assert f.start(200, list(PAGE)) is None
    body = "<html><body></body></html>".encode("utf-16")
    start, out = f.body(body)
    assert start == PAGE and out == body and f.state == PASS


def test_an_empty_chunk_with_more_keeps_the_start_held() -> None:
    f = flow()
    f.start(200, list(PAGE))
    assert f.body(b"", True) == (None, b"") and f.state == HELD
    start, out = f.body(HTML, False)
    assert start is not None and b"data-consent-banner" in out


def test_another_message_first_releases_the_start_unchanged() -> None:
    f = flow()
    f.start(200, list(PAGE))
    assert f.flush() == PAGE and f.state == PASS
    assert f.body(HTML) == (None, HTML)


def test_a_second_start_replaces_a_held_one() -> None:
    f = flow()
    assert f.start(200, list(PAGE)) is None
    plain = [(b"content-type", b"text/plain")]
    assert f.start(500, plain) is plain and f.state == PASS


def test_a_chunk_that_completes_the_declared_length_is_a_whole_page() -> None:
    f = flow()
    f.start(200, [*PAGE, (b"content-length", b"%d" % len(HTML))])
    start, out = f.body(HTML, True)
    assert start is not None and out.count(b"data-consent-banner") == 1 and f.state == PASS
    assert f.body(b"<!-- extra -->", True) == (None, b"<!-- extra -->")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_chunk_split_gives_the_whole_page_bytes(data: st.DataObject) -> None:
    page = data.draw(
        st.sampled_from(
            [
                HTML,
                HTML.upper(),
                b"<html><head lang='x'><!-- </body> --></head><body>" + b"x" * 3000 + b"</body>",
                b"no tags at all",
                b"<body></body><script>'</body>'</script></body>",
            ]
        )
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(page)), max_size=5)))
    chunks = [page[a:b] for a, b in zip([0, *cuts], [*cuts, len(page)], strict=True)]
    _, whole = serve(flow(), 200, list(PAGE), [page])
    _, split = serve(flow(), 200, list(PAGE), chunks)
    assert split == whole


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=12))
def test_nothing_is_held_longer_than_the_window(chunks: list[bytes]) -> None:
    f = flow(shell=SMALL_WINDOW)
    f.start(200, list(PAGE))
    taken = sent = 0
    for chunk in [b"<html>", *chunks]:
        _, out = f.body(chunk, True)
        taken += len(chunk)
        sent += len(out)
        # Taken but not sent: at most the window and the start of a "</body>".
        assert taken - sent <= 1024 + 7
    assert f.state == INJECTING
    _, tail = f.body(b"", False)
    assert f.state == DONE and sent + len(tail) > taken


# -- rewrite_headers ---------------------------------------------------------------------


def rewrite(headers: list[Header], **kwargs: object) -> list[Header]:
    return rewrite_headers(headers, header_kinds(headers), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ([(b"vary", b"Accept-Encoding")], [(b"vary", b"Accept-Encoding, Cookie")]),
        ([(b"Vary", b"accept-encoding, COOKIE")], [(b"Vary", b"accept-encoding, COOKIE")]),
        ([(b"vary", b"*")], [(b"vary", b"*")]),
        ([(b"vary", b"")], [(b"vary", b"Cookie")]),
        (
            [(b"vary", b"Accept"), (b"vary", b"Origin")],
            [(b"vary", b"Accept, Cookie"), (b"vary", b"Origin")],
        ),
    ],
)
def test_vary_is_merged_into_the_first_vary_header(
    vary: list[Header], expected: list[Header]
) -> None:
    assert rewrite(vary, vary=b"Cookie") == expected


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        (b'"abc"', b'W/"abc"'),
        (b'W/"abc"', b'W/"abc"'),
        (b'w/"abc"', b'w/"abc"'),
        (b"abc", b'W/"abc"'),
    ],
)
def test_a_strong_etag_is_made_weak(etag: bytes, expected: bytes) -> None:
    assert rewrite([(b"ETag", etag)], weak_etag=True) == [(b"ETag", expected)]


def test_content_length_grows_or_goes() -> None:
    assert rewrite([(b"Content-Length", b"10")], added=5) == [(b"Content-Length", b"15")]
    assert rewrite([(b"content-length", b"+1_0"), (b"x", b"y")], added=5) == [(b"x", b"y")]
    assert rewrite([(b"content-length", b"10")], added=5, trailers=True) == []


def test_set_cookie_and_other_headers_keep_their_order_and_the_input_is_not_changed() -> None:
    headers = [(b"set-cookie", b"a=1"), (b"date", b"Mon"), (b"Set-Cookie", b"b=2"), (b"etag", b"x")]
    copy = list(headers)
    out = rewrite(headers, added=1, weak_etag=True, private=True)
    assert headers == copy
    assert out == [*headers[:3], (b"etag", b'W/"x"'), (b"cache-control", b"private")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"public, max-age=60"], [b"private, max-age=60"]),
        ([b"max-age=60, s-maxage=300, public"], [b"private, max-age=60"]),
        ([b"private"], [b"private"]),
        ([b"no-cache", b"public"], [b"private, no-cache"]),
        ([b"no-store, public"], [b"no-store"]),
    ],
)
def test_cache_control_is_made_private(values: list[bytes], expected: list[bytes]) -> None:
    out = rewrite([(b"cache-control", v) for v in values], private=True)
    assert out == [(b"cache-control", v) for v in expected]


def test_edge_cache_controls_go_from_a_private_response() -> None:
    headers = [
        (b"CDN-Cache-Control", b"max-age=600"),
        (b"cloudflare-cdn-cache-control", b"max-age=600"),
        (b"Surrogate-Control", b"max-age=600"),
        (b"x-other", b"1"),
    ]
    assert rewrite(headers, private=True) == [(b"x-other", b"1"), (b"cache-control", b"private")]
    assert rewrite(headers, vary=b"Cookie") == [*headers, (b"vary", b"Cookie")]


def test_the_codec_memo_is_bounded() -> None:
    shell = Shell(make_config(), who="test")
    for i in range(70):
        shell.pipeline.codec(b"text/html; x=%d" % i)
    assert len(shell.pipeline._codecs) < 64


def test_the_snippets_carry_the_nonce_of_the_first_policy_that_has_one() -> None:
    headers = [
        *PAGE,
        (b"content-security-policy", b"default-src 'self'"),
        (b"content-security-policy", b"script-src 'nonce-abc'"),
    ]
    _, body = serve(flow(), 200, headers, [HTML])
    assert b'nonce="abc"' in body
