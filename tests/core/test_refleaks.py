"""The compiled kernels give back every reference and every block they take.

Each kernel of ``consent.core._speedups`` is called 20,000 times over a mix of
inputs: the fast path (lists and tuples of 2-tuples of exact bytes), the generic
one (generators, list items, bytes subclasses, names with their own ``==``), the
growth of a buffer, and the error paths that raise (items that do not unpack,
iterators that fail midway, a truth value or a comparison that raises, calls with
the wrong arguments). Afterwards the reference count of every object the calls
were given is what it was, and the number of blocks the interpreter has allocated
(``sys.getallocatedblocks()`` after ``gc.collect()``, warmed up first) is back
within a small tolerance: a missing ``Py_DECREF`` on an argument shows in the
first, a lost new object (any result or part below 512 bytes, which all of these
are) in the second, once per call, so 20,000 times over.

Under ``PYTHONMALLOC=malloc`` (``make sanitize``) the interpreter counts no blocks
and only the reference counts are checked. Without the compiled module the tests
skip with a message; ``CONSENT_REQUIRE_SPEEDUPS=1`` (set in CI) makes that a
failure, as in ``tests/core/test_kernels.py``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, NoReturn

import pytest

REQUIRED = os.environ.get("CONSENT_REQUIRE_SPEEDUPS") == "1"
CALLS = 20_000
#: Blocks the interpreter may keep after the calls (caches, free lists); a leak of
#: one object in even the rarest case of a kernel is over 300 blocks.
TOLERANCE = 64


def _missing(why: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"{why}; CONSENT_REQUIRE_SPEEDUPS=1")
    pytest.skip(f"{why}: set CONSENT_REQUIRE_SPEEDUPS=1 to make this a failure")


@pytest.fixture(scope="module")
def c() -> ModuleType:
    try:
        from consent.core import _speedups  # type: ignore[attr-defined]
    except ImportError as exc:
        _missing(f"consent.core._speedups is not built ({exc}); install with a C compiler")
    return _speedups  # type: ignore[no-any-return]


def fresh(data: bytes) -> bytes:
    """A bytes object of its own (not a constant or a cached one shared with other code)."""
    return bytes(bytearray(data))


class Sub(bytes):
    """A bytes subclass: the generic path."""


class Equal:
    """A name that equals anything."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class EqualRaises:
    """A name whose == raises."""

    def __eq__(self, other: object) -> bool:
        raise ZeroDivisionError

    __hash__ = object.__hash__


class BadBool:
    """A gpc_enabled whose truth raises."""

    def __bool__(self) -> bool:
        raise ZeroDivisionError


class Iterable:
    """An iterable that is no sequence."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def fails_midway(items: list[Any]) -> Iterator[Any]:
    yield from items
    raise RuntimeError("the app's iterator failed")


Call = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]


def with_flag(call: Call, enabled: object) -> Call:
    """A header_kinds call made a read_request one: the headers, then gpc_enabled."""

    def made() -> tuple[tuple[Any, ...], dict[str, Any]]:
        args, kwargs = call()
        return (*args[:1], enabled), kwargs

    return made


def cases(name: str) -> tuple[list[Call], list[object]]:
    """The calls of one kernel (each makes its arguments afresh: generators read
    once) and the objects they are given, whose reference counts are checked."""
    cookie, lang, gpc = fresh(b"cookie"), fresh(b"accept-language"), fresh(b"sec-gpc")
    a, b, en, de, one = fresh(b"a=1"), fresh(b"b=2"), fresh(b"en"), fresh(b"de;q=0.5"), fresh(b" 1")
    sub, equal, raises, bad = Sub(b"cookie"), Equal(), EqualRaises(), BadBool()
    arr, view, text = bytearray(b"sec-gpc"), memoryview(b"cookie"), "".join(["coo", "kie"])
    vary, ct, sc, value = fresh(b"Vary"), fresh(b"content-type"), fresh(b"SET-COOKIE"), fresh(b"x")
    held: list[object] = [cookie, lang, gpc, a, b, en, de, one, sub, equal, raises, bad]
    held += [arr, view, text, vary, ct, sc, value]
    usual = [(cookie, a), (lang, en), (gpc, one), (cookie, b), (lang, de), (vary, value)]
    odd = [[sub, a], (equal, b), (arr, one), (view, a), (text, b), (cookie, text), (lang, 7)]
    many = [(vary, value), (ct, value), (sc, value), (value, value)] * 40  # > 64: a bigger buffer
    held += [usual, odd, many]
    headers: list[Call] = [
        lambda: ((usual,), {}),
        lambda: ((tuple(usual),), {}),
        lambda: ((iter(usual),), {}),
        lambda: ((Iterable(odd),), {}),
        lambda: ((odd,), {}),
        lambda: ((many,), {}),
        lambda: (([(x for x in (cookie, a)), (lang, en)],), {}),
        lambda: ((), {"headers": usual}),
        # the errors: items that do not unpack into two, iteration that fails
        lambda: (([(cookie, a), (cookie,)],), {}),
        lambda: (([(cookie, a), [cookie, a, b]],), {}),
        lambda: (([(x for x in (cookie,))],), {}),
        lambda: (([(x for x in (cookie, a, b))],), {}),
        lambda: (([(cookie, a), 5],), {}),
        lambda: ((5,), {}),
        lambda: ((fails_midway(usual),), {}),
        lambda: (([(raises, a)],), {}),
        lambda: ((usual, usual, usual), {}),
        lambda: ((usual,), {"headers": usual}),
        lambda: ((), {"nope": usual}),
    ]
    if name == "header_kinds":
        return headers, held
    if name == "read_request":
        calls = [with_flag(call, enabled) for enabled in (True, False, bad) for call in headers]
        calls += [
            lambda: ((), {"headers": usual, "gpc_enabled": True}),
            lambda: (([(gpc, one)], bad), {}),
            lambda: (([(equal, one)], bad), {}),
            lambda: ((usual,), {}),
        ]
        return calls, held
    if name == "sec_gpc":
        number = int("70000")  # not one of the small ints every module shares
        values: list[object] = [one, arr, Sub(b"0, 1"), fresh(b"0,\t1 ,0"), text, number, view]
        held += values
        values.append(None)
        return [
            *((lambda v=v: ((v,), {})) for v in values),
            lambda: ((), {"value": one}),
            lambda: ((one, one), {}),
            lambda: ((), {}),
            lambda: ((one,), {"value": one}),
        ], held
    assert name == "inject_page"
    page = fresh(
        b"<html><!-- <head> --><HEAD lang='>'><title>t</title></head><body>x</BODY></html>"
    )
    bare, headless = fresh(b"<p>no tags at all</p>"), fresh(b"<header>x</body>")
    snippet, head = fresh(b"<script>banner</script>"), fresh(b"<link rel=x>")
    held += [page, bare, headless, snippet, head]
    return [
        lambda: ((page, snippet), {}),
        lambda: ((page, snippet, head), {}),
        lambda: ((page, snippet, head, 20), {}),
        lambda: ((page, snippet, head, 1), {}),
        lambda: ((bare, snippet, head), {}),
        lambda: ((headless, snippet, head, 2**70), {}),
        lambda: ((page, snippet), {"head": head, "window": True}),
        lambda: ((), {"page": page, "body": snippet}),
        # left to the twin (None), refused (ValueError), wrong arguments (TypeError)
        lambda: ((bytearray(page), snippet, head), {}),
        lambda: ((page, Sub(snippet), head), {}),
        lambda: ((page, snippet, head, 9.0), {}),
        lambda: ((page, snippet, head, 0), {}),
        lambda: ((page, snippet, head, -(2**70)), {}),
        lambda: ((page,), {}),
        lambda: ((page, snippet, head, 1, 2), {}),
        lambda: ((page, snippet), {"nope": 1}),
        lambda: ((page, snippet, head), {"head": head}),
    ], held


def run(f: Callable[..., Any], calls: list[Call], times: int) -> None:
    for i in range(times):
        args, kwargs = calls[i % len(calls)]()
        with contextlib.suppress(Exception):  # the error paths: the exception goes, and all it held
            f(*args, **kwargs)


def blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


@pytest.mark.parametrize("name", ["header_kinds", "sec_gpc", "read_request", "inject_page"])
def test_a_kernel_gives_back_every_reference_and_block(c: ModuleType, name: str) -> None:
    calls, held = cases(name)
    f = getattr(c, name)
    run(f, calls, 20 * len(calls))  # warm up: caches, free lists
    counts = [sys.getrefcount(obj) for obj in held]
    before = blocks()
    run(f, calls, CALLS)
    after = blocks()
    now = [sys.getrefcount(obj) for obj in held]  # counted just as before
    changed = [
        (repr(obj)[:60], was, is_)
        for obj, was, is_ in zip(held, counts, now, strict=True)
        if was != is_
    ]
    assert not changed, f"{name}: reference counts (object, before, after) changed: {changed}"
    assert after - before <= TOLERANCE, f"{name}: {after - before} blocks kept after {CALLS} calls"


def test_the_calls_reach_the_error_paths(c: ModuleType) -> None:
    # The mix is what it says: each kernel returns for some calls and raises for others.
    for name in ("header_kinds", "sec_gpc", "read_request", "inject_page"):
        calls, _ = cases(name)
        raised = returned = 0
        for call in calls:
            args, kwargs = call()
            try:
                getattr(c, name)(*args, **kwargs)
                returned += 1
            except Exception:
                raised += 1
        assert raised >= 4, name
        assert returned >= 4, name
