from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent import Category, ConsentConfig
from consent.core.cookies import (
    CookieMatcher,
    deletion_headers,
    parse_cookie_header,
    parse_cookie_headers,
    parse_set_cookie,
)
from consent.core.response import CookiePolicy


def test_cookie_header_pairs_in_order() -> None:
    assert parse_cookie_header(b"a=1; b=2;c=3") == [("a", "1"), ("b", "2"), ("c", "3")]


def test_cookie_header_skips_malformed_pairs_only() -> None:
    header = b'a=1; garbage; =nameless; b="quoted"; c=x=y; ;'
    assert parse_cookie_header(header) == [("a", "1"), ("b", "quoted"), ("c", "x=y")]


def test_cookie_header_non_ascii_bytes_do_not_raise() -> None:
    assert parse_cookie_header(b"a=\xff\xfe; b=2") == [("a", "\xff\xfe"), ("b", "2")]


def test_several_cookie_headers_are_all_read() -> None:
    headers = [(b"cookie", b"a=1"), (b"accept", b"*/*"), (b"Cookie", b"b=2; bad")]
    assert parse_cookie_headers(headers) == [("a", "1"), ("b", "2")]


@given(st.binary(max_size=300))
def test_cookie_parser_never_raises(raw: bytes) -> None:
    for name, value in parse_cookie_header(raw):
        assert name and ";" not in name and ";" not in value


@given(st.binary(max_size=300))
def test_set_cookie_parser_never_raises(raw: bytes) -> None:
    parsed = parse_set_cookie(raw)
    if parsed is not None:
        assert parsed.name


def test_set_cookie_attributes() -> None:
    p = parse_set_cookie(b"_ga=GA1.2; Domain=.example.com; Path=/x; Max-Age=63072000; Secure")
    assert p is not None
    assert (p.name, p.value, p.domain, p.path, p.deletion) == (
        "_ga",
        "GA1.2",
        ".example.com",
        "/x",
        False,
    )


def test_set_cookie_deletions_are_recognised() -> None:
    assert parse_set_cookie(b"a=; Max-Age=0").deletion  # type: ignore[union-attr]
    assert parse_set_cookie(b"a=x; max-age=-1").deletion  # type: ignore[union-attr]
    assert parse_set_cookie(b'a=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/').deletion  # type: ignore[union-attr]
    assert not parse_set_cookie(b"a=x; Expires=Thu, 01 Jan 2037 00:00:00 GMT").deletion  # type: ignore[union-attr]
    assert not parse_set_cookie(b"a=x; Max-Age=abc").deletion  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("attributes", "deletes"),
    [
        # A valid Max-Age wins over Expires wherever each stands (RFC 6265, 5.3 step 3).
        (b"Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),
        (b"Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=3600", False),
        (b"Expires=Thu, 01 Jan 2037 00:00:00 GMT; Max-Age=0", True),
        # An invalid Max-Age is ignored, so Expires decides.
        (b"Max-Age=soon; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),
        # Of several, the last one counts.
        (b"Max-Age=0; Max-Age=60", False),
        (b"Expires=Thu, 01 Jan 1970 00:00:00 GMT; Expires=Thu, 01 Jan 2037 00:00:00 GMT", False),
    ],
)
def test_max_age_wins_over_expires(attributes: bytes, deletes: bool) -> None:
    # Otherwise "Max-Age=3600; Expires=<1970>" would pass the filter as a deletion
    # while the browser keeps the cookie for an hour.
    assert parse_set_cookie(b"_ga=1; " + attributes).deletion is deletes  # type: ignore[union-attr]


def test_refused_cookie_with_positive_max_age_and_past_expires_is_blocked() -> None:
    policy = CookiePolicy(
        ConsentConfig(
            secret_key="k" * 32,
            categories=[
                Category(key="necessary", required=True),
                Category(key="analytics", cookies=["_ga"]),
            ],
        )
    )
    sneaky = (b"set-cookie", b"_ga=1; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    deleting = (b"set-cookie", b"_ga=; Max-Age=0")
    out, blocked = policy.filter_headers([sneaky, deleting], policy.undecided)
    assert out == [deleting]
    assert blocked == ["_ga"]


def test_set_cookie_without_attributes() -> None:
    p = parse_set_cookie(b"a=1")
    assert p is not None and (p.name, p.value, p.deletion, p.path, p.domain) == (
        "a",
        "1",
        False,
        None,
        None,
    )


def test_set_cookie_without_name_is_none() -> None:
    assert parse_set_cookie(b"novalue") is None
    assert parse_set_cookie(b"=x; Path=/") is None


def test_matcher_exact_glob_regex_and_first_wins() -> None:
    m = CookieMatcher(
        [
            ("a", "exact", "_ga"),
            ("a", "regex", "(?:_ga_.*)"),
            ("m", "regex", "ads_[0-9]+"),
            ("z", "exact", "_ga"),
        ]
    )
    assert m.match("_ga") == "a"
    assert m.match("_ga_XYZ") == "a"
    assert m.match("ads_12") == "m"
    assert m.match("ads_x") is None
    assert m.match("other") is None
    assert m.match("_ga") == "a"  # served from the cache


def test_matcher_cache_is_bounded() -> None:
    m = CookieMatcher([("a", "exact", "x")], cache_size=4)
    for i in range(10):
        m.match(f"n{i}")
    assert len(m._cache) <= 4
    assert m.match("x") == "a"


def test_deletion_headers_cover_paths_and_domains() -> None:
    out = deletion_headers("_ga", paths=("/", "/app"), domains=(None, ".example.com"))
    assert len(out) == 4
    assert all(h.startswith(b"_ga=; Max-Age=0; ") for h in out)
    assert (
        b"_ga=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; Domain=.example.com; SameSite=Lax"
        in out
    )


def test_deletion_headers_refuse_header_injection() -> None:
    assert deletion_headers("a\r\nx") == []
    assert deletion_headers("a;b") == []
    assert deletion_headers("ok", paths=("/\r\n",)) == []
    assert deletion_headers("ok", domains=("evil;x",)) == []
    assert deletion_headers("__Secure-x", secure=True)[0].endswith(b"; Secure; SameSite=Lax")
