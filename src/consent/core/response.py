"""Which cookies a visitor may have, and the rewriting of response headers.

:class:`CookiePolicy` is built once from the configuration. Per request it reads
the visitor's state from the ``Cookie`` headers (:meth:`CookiePolicy.read`) and
per response it filters ``Set-Cookie`` headers (:meth:`CookiePolicy.filter_headers`).
Pure and synchronous: the ASGI and WSGI shells call it.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from time import time as _time
from types import ModuleType
from typing import NamedTuple

from ..config import ConsentConfig
from ..signing import Signer
from ..state import ConsentState, StateCodec
from .cookies import CookieMatcher, deletion_headers, parse_attributes, parse_cookie_header

__all__ = [
    "BlockedCookies",
    "CookiePolicy",
    "RequestConsent",
    "Rule",
    "read_request",
    "scan_head",
    "speedups",
]


def _load_speedups() -> ModuleType | None:
    """The compiled twins of the hot loops, unless absent or ``CONSENT_PURE_PYTHON`` is set."""
    if os.environ.get("CONSENT_PURE_PYTHON"):
        return None
    try:
        from . import _speedups  # type: ignore[attr-defined]
    except ImportError:  # built without a C compiler: the Python code runs
        return None
    return _speedups  # type: ignore[no-any-return]


#: ``consent.core._speedups`` when it is built and allowed, else ``None``.
speedups = _load_speedups()

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled cookie rule: its category and where to delete it."""

    category: str
    paths: tuple[str, ...]
    domains: tuple[str | None, ...]


class RequestConsent(NamedTuple):
    """The visitor's state, and deletions for refused cookies the browser sent.

    A named tuple: the compiled request path reads its fields by position.
    """

    state: ConsentState
    #: ``Set-Cookie`` values expiring cookies the visitor has not granted.
    expire: tuple[bytes, ...]
    #: Names of those cookies (for reports).
    expired_names: tuple[str, ...]
    #: Until when (epoch seconds) this reading stays valid.
    valid_until: float


_HTML_PREFIXES = (b"text/html", b"application/xhtml")
# Verdicts of filter_headers that are not category keys (keys are lowercase slugs).
_ALWAYS = "\x00always"
_UNKNOWN = "\x00unknown"


def _attributes_delete(attrs: bytes) -> bool:
    """Whether Set-Cookie attributes (all after the first ``;``) make it a deletion."""
    # bytes.find, not ``in``: on bytes, ``in`` first tries the operand as an integer
    # and clears the TypeError, which costs more than the search itself.
    low = attrs.lower()
    if low.find(b"max-age") < 0 and low.find(b"expires") < 0:
        return False
    return parse_attributes(attrs)[0]


def read_request(
    headers: Iterable[tuple[bytes, bytes]], gpc_enabled: bool
) -> tuple[bytes, bool, bytes | None]:
    """``(cookie, gpc, accept_language)`` from a request's headers: every ``Cookie``
    header joined with ``"; "`` (HTTP/2 may split them), whether a ``Sec-GPC``
    header says exactly ``1`` (when ``gpc_enabled``), and the last
    ``Accept-Language`` header (``None`` without one). The pure-Python twin of the
    compiled one, which returns ``None`` for headers it leaves to this one.
    """
    cookie = b""
    gpc = False
    language = None
    for k, v in headers:
        if k == b"cookie":
            cookie = cookie + b"; " + v if cookie else v
        elif k == b"accept-language":
            language = v
        elif k == b"sec-gpc" and v.strip() == b"1":
            # Only the exact value "1" counts; any "1" among duplicates wins.
            gpc = gpc_enabled
    return cookie, gpc, language


def scan_head(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bool, bool]:
    """``(sets_cookies, maybe_html)`` for a response's headers, in one cheap pass.

    Header names in any case (Django sends ``Set-Cookie``); only names as long as
    the two it looks for are lowercased. (The shells now call
    :meth:`CookiePolicy.filter_head`, which does this and the filtering at once.)
    """
    cookies = False
    ctype = b""
    for k, v in headers:
        if k == b"content-type":
            ctype = v
        elif k == b"set-cookie":
            cookies = True
        elif len(k) == 10 or len(k) == 12:
            name = k.lower()
            if name == b"set-cookie":
                cookies = True
            elif name == b"content-type":
                ctype = v
    return cookies, _is_html(ctype)


def _is_html(content_type: bytes) -> bool:
    """Whether a Content-Type value may announce HTML (the prefix decides)."""
    # Lowercase is the common spelling; lowercasing only when needed is cheaper.
    return content_type.startswith(_HTML_PREFIXES) or (
        not content_type.islower() and content_type[:17].lower().startswith(_HTML_PREFIXES)
    )


class BlockedCookies:
    """Counts the cookie names the middleware blocked, for reports (bounded).

    :meth:`add` only appends to a list (it runs on the response path); the names
    are counted when :attr:`counts` is read, or every 256 responses.
    """

    __slots__ = ("_counts", "_limit", "_pending")

    def __init__(self, limit: int = 1000) -> None:
        self._counts: Counter[str] = Counter()
        self._limit = limit
        #: Lists of names not counted yet. (The compiled filter counts into
        #: ``_counts`` at once, within ``_limit``, as :meth:`_fold` does.)
        self._pending: list[Iterable[str]] = []

    def add(self, names: Iterable[str]) -> None:
        pending = self._pending
        pending.append(names)
        if len(pending) >= 256:
            self._fold()

    @property
    def counts(self) -> Counter[str]:
        """Blocked cookie name -> how many times; at most ``limit`` names."""
        self._fold()
        return self._counts

    def _fold(self) -> None:
        pending = self._pending
        self._pending = []
        counts = self._counts
        limit = self._limit
        # Counter counts in C; a site blocks few distinct names, so merging is cheap.
        fresh = Counter(itertools.chain.from_iterable(pending))
        if len(counts) + len(fresh) <= limit:
            counts.update(fresh)
            return
        for names in pending:  # near the limit: which names get in depends on order
            for name in names:
                if name in counts or len(counts) < limit:
                    counts[name] += 1


class CookiePolicy:
    """Decides, for a visitor's state, which cookies may be set and kept."""

    def __init__(self, config: ConsentConfig) -> None:
        self.config = config
        self.cookie_name = config.cookie_name
        self.required = config.required_keys
        self.optional = config.optional_keys
        self.gpc_opt_out = frozenset(c.key for c in config.categories if c.opts_out_on_gpc)
        self.block_unknown = config.unknown_cookies == "block"
        self.expire_refused = config.expire_refused
        self.codec = StateCodec(
            Signer(config.secret_keys(), salt=b"cookie"),
            revision=config.revision,
            max_age=config.max_age,
            required=self.required,
            optional=self.optional,
        )
        compiled: list[tuple[Rule, str, str]] = []
        for key, rule in config.rules():
            domains: tuple[str | None, ...] = (None, rule.domain) if rule.domain else (None,)
            paths = ("/", rule.path) if rule.path != "/" else ("/",)
            kind = "exact" if rule.kind == "exact" else "regex"
            compiled.append(
                (Rule(key, paths, domains), kind, rule.regex() if kind == "regex" else rule.name)
            )
        self.matcher: CookieMatcher[Rule] = CookieMatcher(compiled)
        self.undecided = ConsentState(granted=self.required)
        self.undecided_gpc = self.codec.with_gpc(self.undecided, self.gpc_opt_out)
        #: Cached readings per ``Cookie`` header value (and with ``Sec-GPC: 1``);
        #: shells may look a value up here before calling :meth:`read_header`.
        self.readings: dict[bytes, RequestConsent] = {}
        self.readings_gpc: dict[bytes, RequestConsent] = {}
        self._cache_size = 4096
        #: Set-Cookie name (bytes) -> what to do with it; see filter_headers.
        self._names: dict[bytes, str] = {}
        #: Set-Cookie name as sent -> the name for reports.
        self._display: dict[bytes, str] = {}
        #: Set-Cookie attributes (all after the first ";") -> whether they delete.
        self._deletions: dict[bytes, bool] = {}
        #: Content-Type value -> whether it may be HTML.
        self._html: dict[bytes, bool] = {}
        #: The names of the cookies :meth:`filter_head` dropped, counted.
        self.blocked = BlockedCookies()
        #: What the shells call per response: :meth:`filter_head`, compiled when
        #: :data:`speedups` is there (same results; see ``_speedups.c``).
        self.fast_filter_head: Callable[
            [Sequence[tuple[bytes, bytes]], ConsentState, tuple[bytes, ...]],
            tuple[Sequence[tuple[bytes, bytes]], list[str], bool],
        ] = self.filter_head
        self.fast_tables: tuple[object, ...] | None = None
        if speedups is not None:
            self.use_speedups(speedups)

    def use_speedups(self, module: ModuleType) -> None:
        """Make :attr:`fast_filter_head` the compiled twin from ``module``."""
        tables = self._fast_tables(module)
        #: What the compiled twins take first (None in pure Python).
        self.fast_tables = tables
        self.fast_filter_head = functools.partial(module.filter_head, tables)

    def _fast_tables(self, module: ModuleType) -> tuple[object, ...]:
        """What the compiled ``filter_head`` reads: this policy's caches and callbacks,
        and a memo from ``module`` (the compiled module)."""
        return (
            self._names,
            self._display,
            self._verdict,
            self._deletes,
            _ALWAYS,
            self._html,
            _is_html,
            self.filter_head,
            self._deletions,
            self.blocked._counts,
            self.blocked._limit,
            module.new_memo(),
        )

    # -- reading the request ------------------------------------------------------
    def read(
        self, cookie_headers: Sequence[bytes], gpc: bool = False, now: float | None = None
    ) -> RequestConsent:
        """The visitor's consent from the values of their ``Cookie`` headers.

        Never raises: a missing, malformed, tampered, expired or outdated consent
        cookie means "undecided". Results are cached per distinct header value,
        so a signature is verified once per cookie value.
        """
        n = len(cookie_headers)
        return self.read_header(
            cookie_headers[0] if n == 1 else b"; ".join(cookie_headers), gpc, now
        )

    def read_header(
        self, header: bytes, gpc: bool = False, now: float | None = None
    ) -> RequestConsent:
        """:meth:`read` for one (joined) ``Cookie`` header value: the hot path."""
        cache = self.readings_gpc if gpc else self.readings
        hit = cache.get(header)
        t = _time() if now is None else now
        if hit is not None and t < hit.valid_until:
            return hit
        result = self._read(header, gpc, t)
        if len(cache) >= self._cache_size:
            del cache[next(iter(cache))]
        cache[header] = result
        return result

    def _read(self, header: bytes, gpc: bool, now: float) -> RequestConsent:
        cookies = parse_cookie_header(header)
        state: ConsentState | None = None
        for name, value in cookies:
            if name == self.cookie_name:
                state = self.codec.decode(value, now=now)
                if state is not None:
                    break
        if state is None:
            state = self.undecided
            valid_until = now + 60.0
        else:
            valid_until = float(state.issued_at or 0) + self.config.max_age
        if gpc:
            state = self.codec.with_gpc(state, self.gpc_opt_out)
        expire: list[bytes] = []
        names: list[str] = []
        if self.expire_refused:
            for name, _ in cookies:
                if name != self.cookie_name and name not in names and not self.allows(name, state):
                    names.append(name)
                    expire.extend(self.deletions(name))
        return RequestConsent(state, tuple(expire), tuple(names), valid_until)

    # -- deciding -------------------------------------------------------------------
    def category(self, name: str) -> str | None:
        rule = self.matcher.match(name)
        return rule.category if rule is not None else None

    def allows(self, name: str, state: ConsentState) -> bool:
        """Whether cookie ``name`` may be set or kept for a visitor in ``state``."""
        if name == self.cookie_name:
            return True
        rule = self.matcher.match(name)
        if rule is None:
            return not self.block_unknown
        return rule.category in state.granted

    def deletions(self, name: str) -> list[bytes]:
        """``Set-Cookie`` values expiring ``name`` in every place a rule says it lives."""
        rule = self.matcher.match(name)
        secure = name.startswith(("__Secure-", "__Host-"))
        if rule is None or name.startswith("__Host-"):
            return deletion_headers(name, secure=secure)
        return deletion_headers(name, paths=rule.paths, domains=rule.domains, secure=secure)

    def _verdict(self, raw: bytes) -> str:
        name = raw.strip(b" \t").decode("latin-1")
        if len(self._names) >= self._cache_size:
            self._names.clear()
            self._display.clear()
        self._display[raw] = name
        if name == self.cookie_name:
            verdict = _ALWAYS
        else:
            rule = self.matcher.match(name)
            if rule is not None:
                verdict = rule.category
            else:
                verdict = _UNKNOWN if self.block_unknown else _ALWAYS
        self._names[raw] = verdict
        return verdict

    # -- rewriting the response -----------------------------------------------------
    def filter_head(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        state: ConsentState,
        expire: tuple[bytes, ...] = (),
    ) -> tuple[Sequence[tuple[bytes, bytes]], list[str], bool]:
        """:meth:`filter_headers` and :func:`scan_head` in one pass over the headers.

        Returns ``(headers, blocked, maybe_html)``: ``headers`` is the argument
        itself when nothing changes and it is a list or tuple (otherwise a new
        list), ``blocked`` the names of the dropped cookies (also counted in
        :attr:`blocked`), ``maybe_html`` whether the Content-Type is HTML. What
        the shells call for every response, so it is written for speed: one
        ``partition()`` and one dict lookup per ``Set-Cookie``, nothing per other
        header but two comparisons. :attr:`fast_filter_head` is its compiled twin.
        """
        if type(headers) is not list and not isinstance(headers, list | tuple):
            # A generator or a view: read once, into the list that is returned (it
            # is not the argument, so callers send it on).
            headers = list(headers)
        blocked: list[str] = []
        out: list[tuple[bytes, bytes]] | None = None
        ctype = b""
        for k, v in headers:
            if k == b"set-cookie" or (len(k) == 10 and k.lower() == b"set-cookie"):
                # The name as sent, unstripped: the verdict cache is keyed on it.
                raw = v.partition(b"=")[0]
                verdict = self._names.get(raw)
                if verdict is None:
                    verdict = self._verdict(raw)
                # verdict: _ALWAYS (the consent cookie, or unknown ones when allowed),
                # _UNKNOWN (blocked unknown cookie) or the cookie's category key.
                if not (verdict is _ALWAYS or verdict in state.granted or self._deletes(v)):
                    if out is None:
                        # The first drop: what came before it is kept. (A pair of the
                        # same two objects earlier would have been dropped already.)
                        i = 0
                        while not (headers[i][0] is k and headers[i][1] is v):
                            i += 1
                        out = list(headers[:i])
                    blocked.append(self._display[raw])
                    continue
            elif k == b"content-type" or (len(k) == 12 and k.lower() == b"content-type"):
                ctype = v
            if out is not None:
                out.append((k, v))
        if expire:
            if out is None:
                out = list(headers)
            out.extend((b"set-cookie", v) for v in expire)
        html = self._html.get(ctype)
        if html is None:
            html = _is_html(ctype)
            if len(self._html) >= 64:
                self._html.clear()
            self._html[ctype] = html
        if blocked:
            self.blocked.add(blocked)
        return (headers if out is None else out), blocked, html

    def filter_headers(
        self, headers: Headers, state: ConsentState, expire: tuple[bytes, ...] = ()
    ) -> tuple[Headers, list[str]]:
        """Drop ``Set-Cookie`` headers ``state`` does not allow; append ``expire``.

        Returns the new header list (``headers`` itself when nothing changes) and
        the names of the blocked cookies. Order and duplicates are kept; header
        names are compared case-insensitively (Django sends ``Set-Cookie``);
        deletions always pass.
        """
        out, blocked, _ = self.fast_filter_head(headers, state, expire)
        return out if isinstance(out, list) else list(out), blocked

    def _deletes(self, value: bytes) -> bool:
        """Whether a refused Set-Cookie ``value`` is a deletion (those always pass).

        That depends only on the attributes, which repeat from response to
        response: the answer is cached per attribute string.
        """
        attrs = value.partition(b";")[2]
        cache = self._deletions
        found = cache.get(attrs)
        if found is None:
            found = _attributes_delete(attrs)
            if len(cache) >= self._cache_size:
                cache.clear()
            cache[attrs] = found
        return found
