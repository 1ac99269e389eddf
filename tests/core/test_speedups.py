"""The compiled twins (``consent.core._speedups``) give what the Python code gives.

Differential tests: the same random input to both, the same answer expected,
down to object identity where the Python code promises it. Without the compiled
module (no C compiler when installing) these tests skip with a message;
``CONSENT_REQUIRE_SPEEDUPS=1`` (set in CI) makes that a failure.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import consent.core
from consent import Category, ConsentConfig
from consent.core import inject, response
from consent.core.inject import HTMLInjector
from consent.core.response import CookiePolicy, read_request
from consent.state import ConsentState

Header = tuple[bytes, bytes]


def _compiled() -> ModuleType:
    try:
        return importlib.import_module("consent.core._speedups")
    except ImportError as exc:
        if os.environ.get("CONSENT_REQUIRE_SPEEDUPS") == "1":
            pytest.fail(f"consent.core._speedups is not built ({exc}); CONSENT_REQUIRE_SPEEDUPS=1")
        pytest.skip(
            f"consent.core._speedups is not built ({exc}): install with a C compiler; "
            "set CONSENT_REQUIRE_SPEEDUPS=1 to make this a failure"
        )


@pytest.fixture(scope="module")
def compiled() -> ModuleType:
    return _compiled()


def _policy(unknown: str) -> CookiePolicy:
    return CookiePolicy(
        ConsentConfig(
            secret_key="speedups-test-secret-0123456789",
            unknown_cookies=unknown,  # type: ignore[arg-type]
            categories=[
                Category(key="necessary", required=True, cookies=["session", "csrftoken"]),
                Category(key="preferences", cookies=["theme"]),
                Category(key="analytics", cookies=["_ga", "_ga_*", "_gid"]),
                Category(key="marketing", cookies=["_fbp", "IDE"]),
            ],
        )
    )


def _pair(compiled: ModuleType, unknown: str = "block") -> tuple[CookiePolicy, CookiePolicy]:
    """Two policies alike but for the filter: Python's, and the compiled twin."""
    python, fast = _policy(unknown), _policy(unknown)
    python.fast_filter_head = python.filter_head
    fast.use_speedups(compiled)
    return python, fast


NAMES = [b"session", b"_ga", b"_ga_X1", b"_fbp", b"theme", b"consent", b"mystery", b" _gid", b""]
ATTRS = [
    b"",
    b"; Path=/",
    b"; Max-Age=0",
    b"; Max-Age=60",
    b"; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
]
set_cookie = st.builds(
    lambda k, n, eq, a: (k, n + eq + b"v" + a),
    st.sampled_from([b"set-cookie", b"Set-Cookie", b"SET-COOKIE"]),
    st.sampled_from(NAMES),
    st.sampled_from([b"=", b""]),
    st.sampled_from(ATTRS),
)
other = st.one_of(
    st.tuples(
        st.sampled_from([b"content-type", b"Content-Type", b"cOnTeNt-TyPe"]),
        st.sampled_from([b"text/html", b"TEXT/plain", b"application/xhtml+xml", b""]),
    ),
    st.tuples(st.binary(max_size=12), st.binary(max_size=12)),
)
headers_lists = st.lists(st.one_of(set_cookie, other), max_size=8)


def _states(p: CookiePolicy) -> st.SearchStrategy[ConsentState]:
    return st.one_of(
        st.just(p.undecided),
        st.builds(
            lambda keys: ConsentState(granted=frozenset(keys) | p.required, decided=True),
            st.sets(st.sampled_from(sorted(p.optional))),
        ),
    )


@settings(max_examples=400)
@given(
    headers=headers_lists,
    unknown=st.sampled_from(["block", "allow"]),
    as_tuple=st.booleans(),
    expire=st.booleans(),
    data=st.data(),
)
def test_compiled_filter_head_equals_the_python_one(
    headers: list[Header], unknown: str, as_tuple: bool, expire: bool, data: st.DataObject
) -> None:
    python, fast = _pair(_compiled(), unknown)
    state = data.draw(_states(python))
    given_headers: Sequence[Header] = tuple(headers) if as_tuple else headers
    expiry = tuple(python.deletions("_ga")) if expire else ()
    want = python.filter_head(given_headers, state, expiry)
    got = fast.fast_filter_head(given_headers, state, expiry)
    assert list(got[0]) == list(want[0])
    assert got[1] == want[1] and type(got[1]) is list
    assert got[2] is want[2]
    # The same object back exactly when Python gives it back.
    assert (got[0] is given_headers) is (want[0] is given_headers)


def test_compiled_memo_gives_the_policy_answers_across_many_values(compiled: ModuleType) -> None:
    """The memo's slots are replaced as values collide: answers stay the policy's."""
    import random

    rng = random.Random(7)
    python, fast = _pair(compiled)
    states = [python.undecided, ConsentState(granted=python.required | {"analytics"}, decided=True)]
    names = [n for n in NAMES if n] + [b"_ga_%d" % i for i in range(400)]
    names += [b"x%d" % i for i in range(400)]
    attrs = [*ATTRS, *(b"; Max-Age=%d" % i for i in range(-3, 300))]
    types = [b"text/html", b"text/plain", *(b"text/html; q=%d" % i for i in range(80))]
    for _ in range(3000):
        headers = [
            (b"content-type", rng.choice(types)),
            *((b"set-cookie", rng.choice(names) + b"=v" + rng.choice(attrs)) for _ in range(3)),
        ]
        state = rng.choice(states)
        want = python.filter_head(headers, state)
        got = fast.fast_filter_head(headers, state)
        assert list(got[0]) == list(want[0]) and got[1] == want[1] and got[2] is want[2]
    assert fast.blocked.counts == python.blocked.counts


def test_compiled_filter_head_leaves_odd_shapes_to_python(compiled: ModuleType) -> None:
    python, fast = _pair(compiled)
    state = python.undecided
    odd: list[Any] = [
        [[b"set-cookie", b"_ga=1"], [b"x", b"y"]],  # pairs as lists
        [(b"set-cookie", "_ga=1")],  # a str value (Python raises, so must the twin)
        [(b"set-cookie", b"_ga=1", b"extra")],
    ]
    for headers in odd:
        try:
            want: object = python.filter_head(headers, state)
        except Exception as exc:
            with pytest.raises(type(exc)):
                fast.fast_filter_head(headers, state, ())
            continue
        assert fast.fast_filter_head(headers, state, ()) == want
    # A generator is read once, into the list returned.
    gen = ((k, v) for k, v in [(b"set-cookie", b"session=1"), (b"content-type", b"text/html")])
    out, blocked, html = fast.fast_filter_head(gen, state, ())  # type: ignore[arg-type]
    assert out == [(b"set-cookie", b"session=1"), (b"content-type", b"text/html")]
    assert blocked == [] and html is True


def test_compiled_filter_head_keeps_deletions_and_counts_the_blocked(compiled: ModuleType) -> None:
    _, fast = _pair(compiled)
    headers = [
        (b"set-cookie", b"_ga=1; Max-Age=0"),
        (b"set-cookie", b"_ga=1; Max-Age=60"),
        (b"set-cookie", b"_ga=2; Max-Age=0"),  # the cached answer for these attributes
        (b"set-cookie", b"_fbp"),
    ]
    out, blocked, html = fast.fast_filter_head(headers, fast.undecided, ())
    assert out == [headers[0], headers[2]]
    assert blocked == ["_ga", "_fbp"] and html is False


def test_compiled_filter_head_raises_what_a_callback_raises(compiled: ModuleType) -> None:
    p = _policy("block")

    def broken(raw: bytes) -> str:
        raise RuntimeError("verdict failed")

    tables = list(p._fast_tables(compiled))
    tables[2] = broken
    with pytest.raises(RuntimeError, match="verdict failed"):
        compiled.filter_head(tuple(tables), [(b"set-cookie", b"new=1")], p.undecided, ())
    with pytest.raises(TypeError, match="use_speedups"):
        compiled.filter_head((), [], p.undecided)
    tables[2] = p._verdict
    tables[11] = object()  # not the memo capsule
    with pytest.raises(TypeError, match="use_speedups"):
        compiled.filter_head(tuple(tables), [], p.undecided)
    with pytest.raises(TypeError):
        compiled.filter_head()


def test_compiled_filter_head_survives_its_memo_changing_under_a_callback(
    compiled: ModuleType,
) -> None:
    """A callback may run Python code, and under a threaded WSGI server another
    thread may then fill the memo slot the filter is reading: the filter holds
    what it reads. Here the deletion callback itself refills every name slot;
    under ``PYTHONMALLOC=debug`` a borrowed, freed entry would be read as garbage."""
    p = _policy("block")
    tables = list(p._fast_tables(compiled))
    state = p.undecided
    others = [(b"set-cookie", b"other%d=1; Path=/" % i) for i in range(4 * 256)]

    inside = [False]

    def deletes(value: bytes) -> bool:
        if not inside[0]:
            inside[0] = True
            compiled.filter_head(tuple(tables), others, state)  # replaces every name slot
            inside[0] = False
        return bool(p._deletes(value))

    tables[3] = deletes
    for round_ in range(3):
        headers = [(b"set-cookie", b"_ga=%d; Max-Age=%d" % (round_, 1000 + round_))]
        out, blocked, _ = compiled.filter_head(tuple(tables), headers, state)
        assert out == [] and blocked == ["_ga"]


request_headers = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([b"cookie", b"sec-gpc", b"Cookie", b"accept", b"accept-language"]),
            st.sampled_from([b"", b"a=1", b"b=2; c=3", b"1", b" 1\t", b"0", b"11"]),
        ),
        st.tuples(st.binary(max_size=8), st.binary(max_size=8)),
    ),
    max_size=8,
)


@settings(max_examples=400)
@given(headers=request_headers, enabled=st.booleans())
def test_compiled_read_request_equals_the_python_one(headers: list[Header], enabled: bool) -> None:
    compiled = _compiled()
    assert compiled.read_request(headers, enabled) == read_request(headers, enabled)
    assert compiled.read_request(tuple(headers), enabled) == read_request(headers, enabled)


def test_compiled_read_request_leaves_odd_shapes_to_python(compiled: ModuleType) -> None:
    assert compiled.read_request([[b"cookie", b"a=1"]], True) is None
    assert compiled.read_request([(b"cookie", "a=1")], True) is None
    with pytest.raises(TypeError):
        compiled.read_request(5, True)
    with pytest.raises(TypeError):
        compiled.read_request([])


def test_the_policy_uses_the_compiled_twin_when_it_is_there(
    compiled: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(response, "speedups", compiled)
    p = _policy("block")
    assert cast(Any, p.fast_filter_head).func is compiled.filter_head
    monkeypatch.setattr(response, "speedups", None)
    q = _policy("block")
    assert cast(Any, q.fast_filter_head).__func__ is CookiePolicy.filter_head


def test_pure_python_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENT_PURE_PYTHON", "1")
    assert response._load_speedups() is None
    monkeypatch.delenv("CONSENT_PURE_PYTHON")
    # Not built (no C compiler when installing): the Python code runs.
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "consent.core._speedups", None)
        m.delattr(consent.core, "_speedups", raising=False)
        assert response._load_speedups() is None
    loaded = response._load_speedups()
    try:
        importlib.import_module("consent.core._speedups")
    except ImportError:
        assert loaded is None
    else:
        assert loaded is not None


def test_both_filters_count_what_they_block(compiled: ModuleType) -> None:
    python, fast = _pair(compiled)
    headers = [(b"set-cookie", b"_ga=1"), (b"set-cookie", b"_fbp=1"), (b"set-cookie", b"session=1")]
    for _ in range(300):  # past one fold of 256 lists
        python.fast_filter_head(headers, python.undecided, ())
        fast.fast_filter_head(headers, fast.undecided, ())
    assert python.blocked.counts == fast.blocked.counts == {"_ga": 300, "_fbp": 300}
    fast.fast_filter_head([(b"set-cookie", b"session=1")], fast.undecided, ())
    assert fast.blocked.counts == {"_ga": 300, "_fbp": 300}


page_fragments = st.sampled_from(
    [
        b"<head>",
        b"<HEAD lang=x>",
        b"<head a='>'>",
        b"<head/>",
        b"<head",
        b"<!-- <head> -->",
        b"</body>",
        b"</BODY>",
        b"<header>",
        b"<p>text</p>",
        b"x" * 700,
    ]
)
pages = st.lists(st.one_of(page_fragments, st.binary(max_size=12)), max_size=16).map(b"".join)


@settings(max_examples=800)
@given(
    page=pages,
    head=st.sampled_from([b"", b"<script>h</script>"]),
    window=st.one_of(st.integers(1, 64), st.just(1024), st.just(65536)),
)
def test_compiled_inject_page_places_what_the_injector_places(
    page: bytes, head: bytes, window: int
) -> None:
    compiled = _compiled()
    expected = HTMLInjector(b"<div>b</div>", head=head, window=window).finish(page)
    got = compiled.inject_page(page, b"<div>b</div>", head, window)
    # None hands the page to the Python code (a comment or a quote first).
    assert got is None or got == expected
    if not head:  # without a head snippet there is nothing to hand over
        assert got is not None


def test_compiled_inject_page_answers_the_usual_page_itself(compiled: ModuleType) -> None:
    page = b"<html><head><title>t</title></head><body><p>x</p></body></html>"
    out = compiled.inject_page(page, b"<B>", b"<H>", 65536)
    assert out == b"<html><head><H><title>t</title></head><body><p>x</p><B></body></html>"
    assert compiled.inject_page(b"<!-- c --><head>", b"<B>", b"<H>", 65536) is None
    assert compiled.inject_page(b"<head a='x'>", b"<B>", b"<H>", 65536) is None
    assert compiled.inject_page(b"</body><head>", b"<B>", b"<H>", 65536) is None
    assert compiled.inject_page(bytearray(b"<head>"), b"<B>", b"<H>", 65536) is None
    with pytest.raises(TypeError):
        compiled.inject_page(page, b"", b"")
    with pytest.raises(TypeError):
        compiled.inject_page(page, b"", b"", "far")


def test_inject_page_uses_the_compiled_twin_and_falls_back(
    compiled: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []

    def twin(page: bytes, body: bytes, head: bytes, window: int) -> bytes | None:
        calls.append(page)
        out: bytes | None = compiled.inject_page(page, body, head, window)
        return out

    plain = b"<head></head><body></body>"
    commented = b"<!-- x --><head></head><body></body>"
    expected = [HTMLInjector(b"<B>", head=b"<H>").finish(page) for page in (plain, commented)]
    monkeypatch.setattr(inject, "_c_inject_page", twin)
    assert [inject.inject_page(page, b"<B>", b"<H>") for page in (plain, commented)] == expected
    assert calls == [plain, commented]
    # The injector's one-piece path asks the compiled twin first too.
    calls.clear()
    assert HTMLInjector(b"<B>", head=b"<H>").finish(plain) == expected[0]
    assert HTMLInjector(b"<B>", head=b"<H>").finish(commented) == expected[1]
    assert calls == [plain, commented]


plan_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                b"content-type",
                b"Content-Type",
                b"content-length",
                b"Content-Length",
                b"vary",
                b"ETag",
                b"etag",
                b"content-security-policy",
                b"content-encoding",
                b"content-range",
                b"Content-Disposition",
                b"date",
                b"x-other",
            ]
        ),
        st.sampled_from(
            [b"text/html", b"text/html; charset=latin-1", b"text/plain", b"12", b" 7", b"x", b""]
        ),
    ),
    max_size=8,
)


@settings(max_examples=600)
@given(headers=plan_headers, added=st.integers(0, 5000))
def test_compiled_plan_and_rewrite_equal_the_python_ones(headers: list[Header], added: int) -> None:
    compiled = _compiled()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(inject, "_c_page_facts", None)
        m.setattr(inject, "_c_rewrite_simple", None)
        want_plan = inject.plan_page("GET", 200, headers)
        want_rewrite = (
            None if want_plan is None else inject.rewrite_planned(headers, want_plan[2], added)
        )
    with pytest.MonkeyPatch.context() as m:
        m.setattr(inject, "_c_page_facts", compiled.page_facts)
        m.setattr(inject, "_c_rewrite_simple", compiled.rewrite_simple)
        plan = inject.plan_page("GET", 200, headers)
        assert plan == want_plan
        if plan is not None:
            assert inject.rewrite_planned(headers, plan[2], added) == want_rewrite


def test_compiled_page_facts_and_rewrite_leave_odd_shapes_to_python(compiled: ModuleType) -> None:
    assert compiled.page_facts(iter([])) is None
    assert compiled.page_facts([[b"content-type", b"text/html"]]) is None
    assert compiled.page_facts([(b"content-type", "text/html")]) is None
    assert compiled.page_facts([]) == (None, (-1, -1, -1))
    headers = [(b"content-length", b"10"), (b"content-type", b"text/html")]
    assert compiled.rewrite_simple(headers, (0, -1, -1), 5) == [
        (b"content-length", b"15"),
        (b"content-type", b"text/html"),
        (b"vary", b"Cookie"),
    ]
    assert compiled.rewrite_simple(headers, (-1, -1, -1), 5) == [*headers, (b"vary", b"Cookie")]
    for edits, shown in (
        ((0, 1, -1), headers),  # a Vary to merge: Python's work
        ((0, -1, 1), headers),  # an ETag to weaken: Python's work
        ((5, -1, -1), headers),  # an index past the end
        ((0, -1, -1), [(b"content-length", b" 10")]),
        ((0, -1, -1), [(b"content-length", b"1" * 16)]),
        ((0, -1, -1), [[b"content-length", b"10"]]),
    ):
        assert compiled.rewrite_simple(shown, edits, 5) is None
    assert compiled.rewrite_simple(headers, (0, -1, -1), -1) is None
    with pytest.raises(TypeError):
        compiled.rewrite_simple(headers, (0, -1), 5)
    with pytest.raises(TypeError):
        compiled.rewrite_simple(headers, (0, -1, -1))
    with pytest.raises(TypeError):
        compiled.rewrite_simple(headers, (0, -1, -1), "5")
    with pytest.raises(TypeError):
        compiled.rewrite_simple(5, (0, -1, -1), 5)


def test_compiled_done_is_an_awaitable_that_is_done(compiled: ModuleType) -> None:
    import asyncio

    async def twice() -> list[object]:
        return [await compiled.DONE, await compiled.DONE]

    assert asyncio.run(twice()) == [None, None]
