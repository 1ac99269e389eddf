"""Cookie parsing, classification and deletion headers. Pure: no I/O, no framework.

The parsers are tolerant: a malformed pair is skipped, never the whole header
(``http.cookies.SimpleCookie.load`` drops everything after one bad cookie).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .memo import remember

__all__ = [
    "CookieMatcher",
    "SetCookie",
    "deletion_headers",
    "parse_cookie_header",
    "parse_cookie_headers",
    "parse_set_cookie",
]

_WS = b" \t"
T = TypeVar("T")


def parse_cookie_header(value: bytes) -> list[tuple[str, str]]:
    """Parse one ``Cookie`` header value into ``(name, value)`` pairs, in order.

    Pairs without ``=`` or with an empty name are skipped; quotes around a value
    are removed; bytes are read as latin-1 so no input can raise.
    """
    out: list[tuple[str, str]] = []
    for part in value.split(b";"):
        name, eq, val = part.partition(b"=")
        if not eq:
            continue
        name = name.strip(_WS)
        if not name:
            continue
        val = val.strip(_WS)
        if len(val) >= 2 and val[:1] == b'"' == val[-1:]:
            val = val[1:-1]
        out.append((name.decode("latin-1"), val.decode("latin-1")))
    return out


def parse_cookie_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Every cookie of every ``cookie`` header (HTTP/2 may send several)."""
    out: list[tuple[str, str]] = []
    for k, v in headers:
        if k.lower() == b"cookie":
            out.extend(parse_cookie_header(v))
    return out


@dataclass(frozen=True, slots=True)
class SetCookie:
    """The parts of a ``Set-Cookie`` header the filter needs."""

    name: str
    value: str
    #: True when the header deletes the cookie (``Max-Age`` <= 0 or an ``Expires`` in the past).
    deletion: bool
    domain: str | None
    path: str | None


# RFC 6265, 5.1.1. Its grammar makes the part after the digits of a day, year and
# time mandatory, which would reject "01 Jan 1970"; erratum 4148 makes it optional.
_DATE_TOKEN = re.compile(rb"[^\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(rb"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9].*)?", re.DOTALL)
_DAY = re.compile(rb"([0-9]{1,2})(?:[^0-9].*)?", re.DOTALL)
_YEAR = re.compile(rb"([0-9]{2,4})(?:[^0-9].*)?", re.DOTALL)
_MONTHS = {
    m: i for i, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}
# RFC 6265, 5.2.2: a first character other than a DIGIT or "-", or a later non-DIGIT,
# makes browsers ignore the Max-Age ("+0", "", "0x0"); a lone "-" is no number either.
_MAX_AGE = re.compile(rb"-?[0-9]+")


def _cookie_date(value: bytes) -> int | None:
    """Epoch seconds of an RFC 6265 cookie-date (5.1.1); ``None`` when it does not parse."""
    hms = day = month = year = None
    # The first token matching each rule fills it, tried in this order (5.1.1 step 2).
    for token in _DATE_TOKEN.findall(value):
        if hms is None and (m := _TIME.fullmatch(token)):
            hms = int(m[1]), int(m[2]), int(m[3])
        elif day is None and (m := _DAY.fullmatch(token)):
            day = int(m[1])
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS[token[:3].lower()]
        elif year is None and (m := _YEAR.fullmatch(token)):
            year = int(m[1])
    if hms is None or day is None or month is None or year is None:
        return None
    if year <= 69:
        year += 2000
    elif year <= 99:
        year += 1900
    hour, minute, second = hms
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:  # also "Feb 30"
        return None
    return calendar.timegm((year, month, day, hour, minute, second))


def parse_attributes(rest: bytes) -> tuple[bool, str | None, str | None]:
    """``(deletion, domain, path)`` from the attributes of a ``Set-Cookie`` value
    (all after its first ``;``), read as RFC 6265 section 5.2 says. Never raises."""
    max_age: bool | None = None  # whether the last valid Max-Age deletes; None: no valid one
    expires: list[bytes] = []
    domain = path = None
    for attr in rest.split(b";") if rest else ():
        k, _, v = attr.partition(b"=")
        k = k.strip(_WS).lower()
        v = v.strip(_WS)
        if k == b"max-age":
            if _MAX_AGE.fullmatch(v):
                # Zero or less. Not int(v): past 4300 digits it raises ValueError.
                max_age = v[:1] == b"-" or not v.strip(b"0")
        elif k == b"expires":
            expires.append(v)
        elif k == b"domain":
            domain = v.decode("latin-1")
        elif k == b"path":
            path = v.decode("latin-1")
    # The last valid Max-Age wins over any Expires, wherever each stands (5.3 step 3):
    # "Max-Age=3600; Expires=<1970>" sets a cookie, so it must not pass as a deletion.
    if max_age is not None:
        return max_age, domain, path
    # Otherwise the last Expires that parses; an unparsable one is ignored (5.2.1).
    for v in reversed(expires):
        when = _cookie_date(v)
        if when is not None:
            # Past as of this call. The caller caches the verdict per attribute string
            # for the life of the process, so a date that passes later still reads as
            # no deletion: such a header is then dropped, never let through wrongly.
            return when < time.time(), domain, path
    return False, domain, path


def parse_set_cookie(value: bytes) -> SetCookie | None:
    """Parse a ``Set-Cookie`` header value; ``None`` if it has no ``name=`` part."""
    first, _, rest = value.partition(b";")
    name, eq, val = first.partition(b"=")
    name = name.strip(_WS)
    if not eq or not name:
        return None
    deletion, domain, path = parse_attributes(rest)
    return SetCookie(
        name=name.decode("latin-1"),
        value=val.strip(_WS).decode("latin-1"),
        deletion=deletion,
        domain=domain,
        path=path,
    )


class CookieMatcher(Generic[T]):
    """Maps a cookie name to the value of the rule that claims it, in one pass.

    Exact names are a dict lookup; globs and regular expressions are compiled
    into a single alternation whose matching group names the rule. Results are
    cached (bounded), so repeated names cost one dict lookup.
    """

    def __init__(self, rules: Sequence[tuple[T, str, str]], *, cache_size: int = 4096):
        """``rules`` holds ``(value, kind, pattern)``; kind is ``exact`` or ``regex``.

        The first rule that claims a name wins.
        """
        self._exact: dict[str, T] = {}
        groups: list[str] = []
        self._group_value: list[T] = []
        for value, kind, pattern in rules:
            if kind == "exact":
                self._exact.setdefault(pattern, value)
            else:
                groups.append(f"(?P<g{len(groups)}>{pattern})")
                self._group_value.append(value)
        self._regex = re.compile("|".join(groups)) if groups else None
        self._cache: dict[str, T | None] = {}
        self._cache_size = cache_size

    def match(self, name: str) -> T | None:
        """The value of the rule claiming cookie ``name``, or ``None`` when none does."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        found = self._exact.get(name)
        if found is None and self._regex is not None:
            m = self._regex.fullmatch(name)
            if m is not None and m.lastgroup is not None:
                found = self._group_value[int(m.lastgroup[1:])]
        return remember(self._cache, name, found, self._cache_size)


_UNSAFE = re.compile(r"[\x00-\x20\x7f;,\"\\]")


def deletion_headers(
    name: str,
    *,
    paths: Sequence[str] = ("/",),
    domains: Sequence[str | None] = (None,),
    secure: bool = False,
) -> list[bytes]:
    """``Set-Cookie`` values that expire ``name`` for every path/domain variant.

    A browser only replaces a cookie whose name, domain and path all match, so a
    cookie set with ``Domain=.example.com`` needs a deletion with that domain.
    Names with characters that could inject header syntax yield nothing.
    """
    if not name or _UNSAFE.search(name):
        return []
    out: list[bytes] = []
    for domain in domains:
        if domain is not None and _UNSAFE.search(domain):
            continue
        for path in paths:
            if _UNSAFE.search(path):
                continue
            parts = [
                f"{name}=",
                "Max-Age=0",
                "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                f"Path={path}",
            ]
            if domain:
                parts.append(f"Domain={domain}")
            if secure:
                parts.append("Secure")
            parts.append("SameSite=Lax")
            out.append("; ".join(parts).encode("latin-1"))
    return out
