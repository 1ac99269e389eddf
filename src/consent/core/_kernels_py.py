"""The pure-Python kernels: the reference for their compiled twins in ``_speedups.c``.

Each is a pure function over bytes with plain arguments; ``consent.core.kernels``
picks these or the compiled ones. Both give the same result for every input (the
differential tests in ``tests/core/test_kernels.py`` check that).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["KINDS", "header_kinds", "read_request", "sec_gpc"]

#: What :func:`header_kinds` says of each header, by lowercase name. Any other
#: name is ``.``. The letters are ASCII so that a test can read them.
KINDS: dict[bytes, bytes] = {
    b"set-cookie": b"S",
    b"content-type": b"T",
    b"content-length": b"L",
    b"vary": b"V",
    b"etag": b"E",
    b"cache-control": b"C",
    b"content-encoding": b"Z",
    b"content-range": b"R",
    b"content-disposition": b"D",
    b"content-security-policy": b"P",
    b"accept-ranges": b"A",
}
# The names as usually spelt: lowercase (ASGI) and capitalised (WSGI apps, Django).
_SPELT: dict[bytes, int] = {}
for _name, _kind in KINDS.items():
    _SPELT[_name] = _kind[0]
    _SPELT[b"-".join(w.capitalize() for w in _name.split(b"-"))] = _kind[0]
_SPELT[b"ETag"] = ord("E")
_LENGTHS = frozenset(len(name) for name in KINDS)
_OTHER = ord(".")


def header_kinds(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """One letter per header, saying which of the headers the response flow reads it is.

    ``S`` Set-Cookie, ``T`` Content-Type, ``L`` Content-Length, ``V`` Vary, ``E``
    ETag, ``C`` Cache-Control, ``Z`` Content-Encoding, ``R`` Content-Range, ``D``
    Content-Disposition, ``P`` Content-Security-Policy, ``A`` Accept-Ranges, and
    ``.`` for any other header or a name that is not bytes. Names compare in any
    ASCII case. Each item must unpack into two.
    """
    names = [name for name, _ in headers]
    # The usual names, as usually spelt, in one pass; the rest (0) looked at again.
    out = [_SPELT.get(name, 0) if type(name) is bytes else _OTHER for name in names]
    if 0 in out:
        out = [kind or _other(name) for kind, name in zip(out, names, strict=True)]
    return bytes(out)


def _other(name: bytes) -> int:
    """The kind of a name not spelt as usual (any case), or ``.``."""
    if len(name) in _LENGTHS:
        lower = KINDS.get(name.lower())
        if lower is not None:
            return lower[0]
    return _OTHER


def sec_gpc(value: bytes) -> bool:
    """Whether a ``Sec-GPC`` value says ``1``: exactly that, or ``1`` among
    comma-joined repeats (``1, 1``); whitespace around each value is ignored."""
    return any(token.strip(b" \t") == b"1" for token in value.split(b","))


def read_request(
    headers: Sequence[tuple[bytes, bytes]], gpc_enabled: bool
) -> tuple[bytes, bool, bytes | None]:
    """``(cookie, gpc, accept_language)`` from an ASGI request's headers.

    ``cookie`` is every ``cookie`` header joined with ``"; "`` (HTTP/2 may split
    them), ``gpc`` whether any ``sec-gpc`` header says ``1`` (as :func:`sec_gpc`;
    always False unless ``gpc_enabled``), ``accept_language`` every
    ``accept-language`` header joined with ``", "`` (``None`` without one). Names
    are compared (``==``) as ASGI sends them, lowercase; items whose value is not
    bytes are ignored.
    """
    cookie = b""
    gpc = False
    language: bytes | None = None
    for name, value in headers:
        if type(value) is not bytes:
            continue
        if name == b"cookie":
            cookie = cookie + b"; " + value if cookie else value
        elif name == b"accept-language":
            language = value if language is None else language + b", " + value
        elif name == b"sec-gpc" and gpc_enabled and not gpc:
            gpc = sec_gpc(value)
    return cookie, gpc, language
