"""The compiled kernels (``consent.core._speedups``) give what their pure twins give.

The pure twins define the behaviour: ``header_kinds``, ``sec_gpc`` and
``read_request`` in ``consent.core._kernels_py``, and
:func:`consent.core.inject.inject_page`. Differential tests feed both the same
random input, odd shapes included (generators, list items, str names, bytes
subclasses, items of the wrong length), and expect the same result or the same
exception type. ``inject_page`` may return ``None`` for what it leaves to its twin
(``consent.core.kernels`` then runs the twin); for a page, body and head of
exact bytes it answers itself.

These tests exercise the compiled module directly, so they run whichever
implementation ``CONSENT_PURE_PYTHON`` makes the package use. Without the module
(no C compiler when installing) they skip with a message;
``CONSENT_REQUIRE_SPEEDUPS=1`` (set in CI) makes that a failure. The source checks
(no calls into Python callables, a ``Py_mod_gil`` slot, a warning-free build) run
either way.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.core import _kernels_py as py
from consent.core.inject import inject_page as py_inject_page

SOURCE = pathlib.Path(__file__).parents[2] / "src" / "consent" / "core" / "_speedups.c"
REQUIRED = os.environ.get("CONSENT_REQUIRE_SPEEDUPS") == "1"


def _missing(why: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"{why}; CONSENT_REQUIRE_SPEEDUPS=1")
    pytest.skip(f"{why}: set CONSENT_REQUIRE_SPEEDUPS=1 to make this a failure")


def _compiled() -> ModuleType:
    try:
        from consent.core import _speedups  # type: ignore[attr-defined]
    except ImportError as exc:
        _missing(f"consent.core._speedups is not built ({exc}); install with a C compiler")
    return _speedups  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def c() -> ModuleType:
    return _compiled()


def outcome(f: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call gives: its result, or the type of what it raises."""
    try:
        return "returned", f(*args, **kwargs)
    except Exception as exc:
        return "raised", type(exc)


def compiled_inject_page(c: ModuleType, *args: Any, **kwargs: Any) -> Any:
    """The compiled inject_page as ``consent.core.kernels`` uses it: None runs the twin."""
    done = c.inject_page(*args, **kwargs)
    return py_inject_page(*args, **kwargs) if done is None else done


# -- header lists ---------------------------------------------------------------


class Sub(bytes):
    """A bytes subclass: the twins treat it as bytes only where ``==`` does."""


class Equal:
    """A name that equals anything: ``==`` runs its own code, in both twins."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


KNOWN = [*py.KINDS, b"ETag", b"cookie", b"accept-language", b"sec-gpc", b"accept", b"set-cookies"]


def _recase(name: bytes, upper: list[bool]) -> bytes:
    return bytes(
        ch - 32 if up and 97 <= ch <= 122 else ch for ch, up in zip(name, upper, strict=True)
    )


any_case = st.sampled_from(KNOWN).flatmap(
    lambda n: st.lists(st.booleans(), min_size=len(n), max_size=len(n)).map(
        lambda up: _recase(n, up)
    )
)
names = st.one_of(
    st.sampled_from(KNOWN),
    any_case,
    st.binary(max_size=24),
    st.sampled_from(KNOWN).map(lambda n: n.decode()),  # str names: no match anywhere
    st.sampled_from(KNOWN).map(Sub),
    st.sampled_from([b"cookie", b"sec-gpc", b"Vary"]).map(bytearray),
    st.sampled_from([b"cookie", b"accept-language"]).map(memoryview),
    st.sampled_from([None, 7, Equal()]),
)
values = st.one_of(
    st.sampled_from([b"", b"a=1", b"b=2; c=3", b"1", b" 1\t", b"0", b"11", b"0, 1", b"en", b","]),
    st.binary(max_size=8),
    st.sampled_from(["1", None, 1, Sub(b"1"), bytearray(b"1")]),  # not bytes: ignored
)
SHAPES = ["tuple", "tuple", "tuple", "list", "gen"]
BAD_SHAPES = ["short", "long", "short gen", "long gen", "int", "str", "bytes"]


def _item(shape: str, name: Any, value: Any) -> Any:
    if shape == "tuple":
        return (name, value)
    if shape == "list":
        return [name, value]
    if shape == "gen":
        return (x for x in (name, value))
    if shape == "short":
        return (name,)
    if shape == "long":
        return (name, value, value)
    if shape == "short gen":
        return (x for x in (name,))
    if shape == "long gen":
        return (x for x in (name, value, value))
    if shape == "int":
        return 5
    if shape == "str":
        return "ab"  # unpacks into two one-letter strs
    return b"ab"  # unpacks into two ints


Recipe = list[tuple[str, Any, Any]]


def headers_from(recipe: Recipe, container: str) -> Any:
    """A fresh header iterable (generators can be read once) from a recipe."""
    items = [_item(shape, name, value) for shape, name, value in recipe]
    if container == "list":
        return items
    if container == "tuple":
        return tuple(items)
    if container == "iterable":
        return Iterable(items)
    return iter(items)


class Iterable:
    """An iterable that is no sequence."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def recipes(shapes: list[str]) -> st.SearchStrategy[Recipe]:
    return st.lists(st.tuples(st.sampled_from(shapes), names, values), max_size=10)


containers = st.sampled_from(["list", "tuple", "iter", "iterable"])
gpc_flags = st.sampled_from([True, False, 1, 0, "", "yes", None])


@settings(max_examples=1500)
@given(recipe=recipes(SHAPES), container=containers)
def test_header_kinds_equals_the_twin(recipe: Recipe, container: str) -> None:
    c = _compiled()
    got = outcome(c.header_kinds, headers_from(recipe, container))
    assert got == outcome(py.header_kinds, headers_from(recipe, container))
    assert got[0] == "returned"


@settings(max_examples=1500)
@given(recipe=recipes(SHAPES), container=containers, enabled=gpc_flags)
def test_read_request_equals_the_twin(recipe: Recipe, container: str, enabled: Any) -> None:
    c = _compiled()
    got = outcome(c.read_request, headers_from(recipe, container), enabled)
    assert got == outcome(py.read_request, headers_from(recipe, container), enabled)
    assert got[0] == "returned"


@settings(max_examples=600)
@given(recipe=recipes(SHAPES + BAD_SHAPES), container=containers, enabled=gpc_flags)
def test_both_raise_alike_on_items_that_do_not_unpack_into_two(
    recipe: Recipe, container: str, enabled: Any
) -> None:
    c = _compiled()
    for compiled, twin, args in (
        (c.header_kinds, py.header_kinds, ()),
        (c.read_request, py.read_request, (enabled,)),
    ):
        got = outcome(compiled, headers_from(recipe, container), *args)
        assert got == outcome(twin, headers_from(recipe, container), *args)


def test_the_usual_request_reads_the_same(c: ModuleType) -> None:
    cookie = b"session=abc; consent=xyz"
    headers = [
        (b"host", b"example.com"),
        (b"cookie", cookie),
        (b"accept-language", b"de"),
        (b"sec-gpc", b"1"),
        (b"accept-language", b"en;q=0.5"),
    ]
    for enabled in (True, False):
        got = c.read_request(headers, enabled)
        assert got == py.read_request(headers, enabled) == (cookie, enabled, b"de, en;q=0.5")
        assert got[0] is cookie  # one Cookie header: that very object, as in the twin
    split = [(b"cookie", b""), (b"cookie", b"a=1"), (b"cookie", b""), (b"cookie", b"b=2")]
    assert (
        c.read_request(split, False)
        == py.read_request(split, False)
        == (b"a=1; ; b=2", False, None)
    )
    assert c.read_request([], True) == (b"", False, None)
    assert c.read_request([(b"sec-gpc", b" 0 ,\t1 ")], True) == (b"", True, None)
    kinds = [(b"Set-Cookie", b""), (b"ETAG", b""), (b"content-TYPE", b""), ("vary", b"")]
    assert c.header_kinds(kinds) == py.header_kinds(kinds) == b"SET."


gpc_values = st.one_of(
    st.binary(max_size=12),
    st.lists(
        st.sampled_from([b"1", b" ", b"\t", b",", b"0", b"\n", b"11", b"\x0b"]), max_size=8
    ).map(b"".join),
)


@settings(max_examples=1500)
@given(value=gpc_values)
def test_sec_gpc_equals_the_twin(value: bytes) -> None:
    c = _compiled()
    assert c.sec_gpc(value) is py.sec_gpc(value)
    assert c.sec_gpc(bytearray(value)) is py.sec_gpc(bytearray(value))
    assert c.sec_gpc(Sub(value)) is py.sec_gpc(Sub(value))


# -- inject_page ----------------------------------------------------------------

fragments = st.sampled_from(
    [
        b"<head>",
        b'<HEAD lang="x">',
        b"<head a='>'>",
        b"<head/>",
        b"<head",
        b"<header>",
        b"<hEaD\t>",
        b"<!-- <head> -->",
        b"<!-->",
        b"<!--",
        b"-->",
        b"</body>",
        b"</BoDy>",
        b"</body",
        b"<p>text</p>",
        b"'",
        b'"',
        b"<",
        b">",
        b" ",
        b"x" * 300,
    ]
)
pages = st.lists(st.one_of(fragments, st.binary(max_size=10)), max_size=20).map(b"".join)
windows = st.one_of(
    st.integers(-2, 90), st.sampled_from([0, 1, 2, 1024, 65536, 2**70, -(2**70), True, False])
)


@settings(max_examples=3000)
@given(page=pages, head=st.sampled_from([b"", b"<H>"]), window=windows)
def test_inject_page_equals_the_twin(page: bytes, head: bytes, window: int) -> None:
    c = _compiled()
    want = outcome(py_inject_page, page, b"<B>", head, window)
    got = outcome(c.inject_page, page, b"<B>", head, window)
    assert got == want  # never None for exact bytes; ValueError for window < 1 in both
    if head == b"" and window == 65536:
        assert c.inject_page(page, b"<B>") == want[1]


@pytest.mark.parametrize("window", [0, -1, False, -(2**70)])
def test_inject_page_refuses_a_window_below_one_as_the_twin_does(
    c: ModuleType, window: int
) -> None:
    for f in (c.inject_page, py_inject_page):
        with pytest.raises(ValueError, match="window must be positive"):
            f(b"<head></head><body></body>", b"<B>", b"<H>", window)


def test_inject_page_places_the_usual_page_and_the_odd_ones(c: ModuleType) -> None:
    body, head = b"<B>", b"<H>"
    for page, placed in (
        (b"<html><head><title>t</title></head><body>x</body></html>", None),
        (b"<!-- <head> --><head a='>'>x</body>", b"<!-- <head> --><head a='>'><H>x<B></body>"),
        (b"</body><head>", b"<B></body><head><H>"),  # the head tag after </body>
        (b"<header>x", b"<header>x<H><B>"),  # no head tag: both at the end
        (b"", b"<H><B>"),
    ):
        want = py_inject_page(page, body, head, 65536)
        assert c.inject_page(page, body, head, 65536) == want
        assert placed is None or want == placed
    # A window that ends inside the tag (but keeps the </body>): the head snippet
    # goes with the body snippet.
    page = b"<head lang=x>x</body>"
    for f in (c.inject_page, py_inject_page):
        assert f(page, body, head, 8) == b"<head lang=x>x<H><B></body>"
        assert f(page, body, head, 13) == b"<head lang=x><H>x<B></body>"
        assert f(page, body, head, 6) == b"<head lang=x>x</body><H><B>"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((bytearray(b"<head></body>"), b"<B>", b"<H>", 9), {}),
        ((memoryview(b"<head></body>"), b"<B>", b"<H>", 9), {}),
        ((b"<head></body>", Sub(b"<B>"), b"<H>", 9), {}),
        ((b"<head></body>", b"<B>", bytearray(b"<H>"), 9), {}),
        ((b"<head></body>", b"<B>", b"<H>", 9.0), {}),
        ((b"<head></body>", b"<B>", b"<H>", "9"), {}),
        ((b"<head></body>", b"<B>", None), {}),
        ((b"<head></body>", None), {}),
        (("<head></body>", b"<B>"), {}),
    ],
)
def test_inject_page_leaves_odd_types_to_the_twin(
    c: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    assert c.inject_page(*args, **kwargs) is None
    assert outcome(compiled_inject_page, c, *args, **kwargs) == outcome(
        py_inject_page, *args, **kwargs
    )


# -- calls that do not fit ------------------------------------------------------


def _raise_midway() -> Iterator[tuple[bytes, bytes]]:
    yield (b"cookie", b"a=1")
    raise RuntimeError("the app's iterator failed")


class BadBool:
    def __bool__(self) -> bool:
        raise ZeroDivisionError


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("header_kinds", (), {}),
    ("header_kinds", ([], []), {}),
    ("header_kinds", (), {"headers": [(b"vary", b"")]}),
    ("header_kinds", (), {"header": []}),
    ("header_kinds", ([],), {"headers": []}),
    ("header_kinds", (5,), {}),
    ("header_kinds", (None,), {}),
    ("header_kinds", ([5],), {}),
    ("header_kinds", ([(b"vary",)],), {}),
    ("header_kinds", ([[b"vary", b"", b""]],), {}),
    ("header_kinds", (_raise_midway,), {}),
    ("header_kinds", ([(memoryview(bytearray(b"vary")), b"")],), {}),  # hash: ValueError
    ("sec_gpc", (), {}),
    ("sec_gpc", (b"1", b"1"), {}),
    ("sec_gpc", (), {"value": b"1"}),
    ("sec_gpc", ("1",), {}),
    ("sec_gpc", (None,), {}),
    ("sec_gpc", (1,), {}),
    ("sec_gpc", (memoryview(b"1"),), {}),
    ("read_request", ([],), {}),
    ("read_request", ([], True, 1), {}),
    ("read_request", (), {"headers": [(b"cookie", b"a")], "gpc_enabled": True}),
    ("read_request", ([],), {"gpc_enabled": True, "x": 1}),
    ("read_request", ([], True), {"gpc_enabled": True}),
    ("read_request", (5, True), {}),
    ("read_request", ([(b"cookie",)], True), {}),
    ("read_request", ([(b"cookie", b"a", b"b")], True), {}),
    ("read_request", ([None], True), {}),
    ("read_request", (_raise_midway, True), {}),
    ("read_request", ([(b"sec-gpc", b"1")], BadBool()), {}),
    ("read_request", ([(b"cookie", b"1"), (b"sec-gpc", 1)], BadBool()), {}),
    ("inject_page", (b"x",), {}),
    ("inject_page", (b"x", b"y", b"z", 1, 2), {}),
    ("inject_page", (), {"page": b"<head>x", "body": b"y", "head": b"z"}),
    ("inject_page", (b"<head>x", b"y"), {"window": 3, "head": b"z"}),
    ("inject_page", (b"x", b"y"), {"nope": 1}),
    ("inject_page", (b"x", b"y", b"z"), {"head": b"z"}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS)
def test_calls_that_do_not_fit_fail_alike(
    c: ModuleType, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    def fresh() -> tuple[Any, ...]:  # a new generator for each call
        return tuple(a() if a is _raise_midway else a for a in args)

    twin = py_inject_page if name == "inject_page" else getattr(py, name)
    assert outcome(getattr(c, name), *fresh(), **kwargs) == outcome(twin, *fresh(), **kwargs)


def test_a_list_changed_while_it_is_read_is_read_as_python_reads_it(c: ModuleType) -> None:
    def grow(headers: list[Any], extra: Any) -> Iterator[bytes]:
        headers.append(extra)  # runs while the item is unpacked
        yield b"cookie"
        yield b"a=1"

    for f in (c.read_request, py.read_request):
        headers: list[Any] = [(b"accept-language", b"en")]
        headers.append(grow(headers, (b"cookie", b"b=2")))
        assert f(headers, True) == (b"a=1; b=2", False, b"en")
    for f in (c.header_kinds, py.header_kinds):
        headers = [(b"vary", b"")]
        headers.append(grow(headers, (b"etag", b"")))
        headers.append((b"x", b""))
        assert f(headers) == b"V..E"


def test_a_name_with_its_own_eq_is_compared_as_python_compares_it(c: ModuleType) -> None:
    headers = [(Equal(), b"a=1"), (Sub(b"cookie"), b"b=2"), (bytearray(b"sec-gpc"), b"1")]
    assert (
        c.read_request(headers, True) == py.read_request(headers, True) == (b"a=1; b=2", True, None)
    )
    assert c.header_kinds(headers) == py.header_kinds(headers)


@pytest.mark.parametrize(
    "names",
    [
        [Sub(b"vary"), Sub(b"VARY"), b"VARY", memoryview(b"ETag"), "vary", Equal()],
        [Sub(b"vary"), b"Vary", bytearray(b"vary"), Sub(b"Set-Cookie")],  # one unhashable name
        [Sub(b"vary"), [b"vary"]],
    ],
)
def test_names_that_are_not_exact_bytes_are_looked_up_as_the_twin_does(
    c: ModuleType, names: list[Any]
) -> None:
    # The twin looks every name up in its dict of usual spellings first (by hash
    # and ==), and stops when a name cannot be hashed; the compiled twin alike.
    headers = [(name, b"") for name in names]
    assert c.header_kinds(headers) == py.header_kinds(headers)
    assert c.header_kinds(iter(headers)) == py.header_kinds(headers)


# -- the module and its source ----------------------------------------------------


def test_the_module_exports_the_four_kernels_and_nothing_else(c: ModuleType) -> None:
    public = sorted(n for n in vars(c) if not n.startswith("__"))
    assert public == ["header_kinds", "inject_page", "read_request", "sec_gpc"]


def test_each_module_object_has_its_own_state(c: ModuleType) -> None:
    # Multi-phase init: a second module object from the same spec is a new one,
    # with its own state, and works alike.
    spec = importlib.util.find_spec("consent.core._speedups")
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    assert other is not c
    assert other.read_request.__self__ is other
    headers = [(Sub(b"cookie"), b"a=1"), (b"sec-gpc", b"1")]
    assert (
        other.read_request(headers, True) == c.read_request(headers, True) == (b"a=1", True, None)
    )


def test_the_package_picks_the_compiled_kernels_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Runs without the compiled module too: then the pure twins are picked.
    import consent.core
    from consent.core import kernels

    try:
        from consent.core import _speedups  # type: ignore[attr-defined]
    except ImportError:
        _speedups = None
    picked = _speedups is not None and not os.environ.get("CONSENT_PURE_PYTHON")
    assert kernels.COMPILED is picked
    monkeypatch.setenv("CONSENT_PURE_PYTHON", "1")
    assert kernels._compiled() is None
    monkeypatch.delenv("CONSENT_PURE_PYTHON")
    assert kernels._compiled() is _speedups
    with monkeypatch.context() as m:  # as if not built (no C compiler when installing)
        m.setitem(sys.modules, "consent.core._speedups", None)
        m.delattr(consent.core, "_speedups", raising=False)
        assert kernels._compiled() is None
    # Whichever it picked, a page the compiled kernel leaves to its twin is placed.
    assert kernels.inject_page(bytearray(b"<head>x"), b"<B>", b"<H>") == b"<head><H>x<B>"
    assert kernels.read_request([(b"cookie", b"a")], True) == (b"a", False, None)


def test_the_tests_run_the_build_that_consent_speedups_path_names(c: ModuleType) -> None:
    # tests/conftest.py loads the file CONSENT_SPEEDUPS_PATH names (``make sanitize``:
    # the AddressSanitizer/UBSan build in build/asan/) as consent.core._speedups;
    # without it, the build next to kernels.py is the one tested.
    from consent.core import kernels

    path = os.environ.get("CONSENT_SPEEDUPS_PATH")
    if path:
        assert c.__file__ == os.path.abspath(path)
    else:
        assert pathlib.Path(c.__file__).parent == pathlib.Path(kernels.__file__).parent
    if not os.environ.get("CONSENT_PURE_PYTHON"):  # and it is the one the package runs
        assert kernels.COMPILED
        assert kernels.header_kinds is c.header_kinds
        assert kernels.read_request is c.read_request


def test_the_source_holds_pure_kernels_only() -> None:
    text = SOURCE.read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments may name anything
    lines = text.count("\n")
    assert lines <= 800, f"_speedups.c has {lines} lines"
    for banned in (
        r"PyObject_Call\w*",
        r"PyObject_Vectorcall\w*",
        r"PyObject_VectorcallMethod\w*",
        r"\b_Py\w*",
        r"PyTypeObject|PyType_Ready|PyType_FromSpec\w*",  # no types at all
        r"PyImport_\w+",  # no time module, nothing imported
        r"^static\s+PyObject\s*\*\s*\w+\s*[;=]",  # no static object globals
        r"PyUnicode_READY",
    ):
        found = re.findall(banned, code, flags=re.M)
        assert not found, f"{banned}: {found}"
    for needed in (
        "PyModuleDef_Init",
        "{Py_mod_exec, ",
        "#ifdef Py_mod_gil",
        "{Py_mod_gil, Py_MOD_GIL_USED}",
        "#ifdef Py_mod_multiple_interpreters",
        ".m_size = sizeof(State)",
        ".m_traverse = ",
        ".m_clear = ",
        ".m_free = ",
    ):
        assert needed in code, needed


def test_the_source_builds_without_a_warning(tmp_path: pathlib.Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        _missing("gcc is not installed: cannot check that _speedups.c builds without warnings")
    assert gcc is not None
    paths = sysconfig.get_paths()
    includes = {paths["include"], paths["platinclude"]}
    command = [gcc, "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-c", str(SOURCE)]
    command += [f"-I{path}" for path in sorted(includes)]
    command += ["-o", str(tmp_path / "_speedups.o")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
