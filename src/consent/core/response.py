"""Which cookies a visitor may have: the request's consent and the ``Set-Cookie`` filter.

:class:`CookiePolicy` is built once from the configuration. Per request it reads
the visitor's state from the ``Cookie`` header (:meth:`CookiePolicy.read_header`)
and per response it drops the ``Set-Cookie`` headers that state does not allow
(:meth:`CookiePolicy.filter_set_cookies`, which the response flow in
:mod:`consent.core.flow` calls). Pure and synchronous.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from time import time as _time
from typing import NamedTuple

from ..config import ConsentConfig
from ..signing import Signer
from ..state import ConsentState, StateCodec
from .cookies import CookieMatcher, deletion_headers, parse_attributes, parse_cookie_header
from .kernels import header_kinds
from .memo import remember

__all__ = ["BlockedCookies", "CookiePolicy", "RequestConsent", "Rule"]


Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled cookie rule: its category and where to delete it."""

    category: str
    paths: tuple[str, ...]
    domains: tuple[str | None, ...]


class RequestConsent(NamedTuple):
    """The visitor's state, and deletions for refused cookies the browser sent.

    Cached per ``Cookie`` header value, so it holds nothing about one request.
    """

    state: ConsentState
    #: ``Set-Cookie`` values expiring cookies the visitor has not granted.
    expire: tuple[bytes, ...]
    #: Names of those cookies (for reports).
    expired_names: tuple[str, ...]
    #: Until when (epoch seconds) this reading stays valid.
    valid_until: float


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


class BlockedCookies:
    """Counts the cookie names the middleware blocked, for reports (bounded).

    :meth:`add` only appends to a list (it runs on the response path); the names
    are counted when :attr:`counts` is read, or every 256 responses. Threads of a
    WSGI server add and fold at once without a lock: each list of names is taken
    out with one atomic ``pop()``, so it is counted once, and :attr:`counts` is a
    copy made in one step, so a report never iterates what a request changes.
    (Two folds merging at the same instant may each miss the other's increment
    of one name: a count may come out low under contention, never wrong in kind.)
    """

    __slots__ = ("_counts", "_limit", "_pending")

    def __init__(self, limit: int = 1000) -> None:
        self._counts: Counter[str] = Counter()
        self._limit = limit
        #: Lists of names not counted yet.
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
        return Counter(dict(self._counts))

    def _fold(self) -> None:
        pending = self._pending
        taken: list[Iterable[str]] = []
        while True:
            try:
                taken.append(pending.pop())
            except IndexError:
                break
        taken.reverse()  # first come, first counted
        counts = self._counts
        limit = self._limit
        # Counter counts in C; a site blocks few distinct names, so merging is cheap.
        fresh = Counter(itertools.chain.from_iterable(taken))
        if len(counts) + len(fresh) <= limit:
            counts.update(fresh)
            return
        for names in taken:  # near the limit: which names get in depends on order
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
        #: Set-Cookie name as sent -> (what to do with it, the name for reports).
        self._names: dict[bytes, tuple[str, str]] = {}
        #: Set-Cookie attributes (all after the first ";") -> whether they delete.
        self._deletions: dict[bytes, bool] = {}
        #: The names of the cookies the filter dropped, counted.
        self.blocked = BlockedCookies()

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
        return remember(cache, header, self._read(header, gpc, t), self._cache_size)

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

    def _verdict(self, value: bytes) -> tuple[str, str]:
        """``(verdict, name)`` for a Set-Cookie value's name as sent (cached)."""
        raw = value.partition(b"=")[0]
        name = raw.strip(b" \t").decode("latin-1")
        if name == self.cookie_name:
            verdict = _ALWAYS
        else:
            rule = self.matcher.match(name)
            if rule is not None:
                verdict = rule.category
            else:
                verdict = _UNKNOWN if self.block_unknown else _ALWAYS
        return remember(self._names, raw, (verdict, name), self._cache_size)

    # -- rewriting the response -----------------------------------------------------
    def filter_set_cookies(
        self, headers: Sequence[tuple[bytes, bytes]], kinds: bytes, state: ConsentState
    ) -> tuple[list[tuple[bytes, bytes]], bytes, list[str]] | None:
        """Drop the ``Set-Cookie`` headers ``state`` does not allow.

        ``kinds`` is :func:`~consent.core.kernels.header_kinds` of ``headers``.
        Returns the kept headers, their kinds and the names of the dropped
        cookies, or ``None`` when every header
        stays. A refused cookie's header passes only when it is a deletion (the
        browser would expire the cookie). Blocked names are counted in
        :attr:`blocked`. One ``partition()`` and one dict lookup per
        ``Set-Cookie``; other headers are not looked at.
        """
        granted = state.granted
        names = self._names
        deletes = self._deletions
        drop: list[int] = []
        blocked: list[str] = []
        at = kinds.find(b"S")
        while at >= 0:
            value = headers[at][1]
            # The name as sent, unstripped: the verdict cache is keyed on it.
            verdict, name = names.get(value.partition(b"=")[0]) or self._verdict(value)
            # verdict: _ALWAYS (the consent cookie, or unknown ones when allowed),
            # _UNKNOWN (a blocked unknown cookie) or the cookie's category key. A
            # refused cookie's header passes only as a deletion (cached per
            # attribute string).
            if verdict is not _ALWAYS and verdict not in granted:
                attrs = value.partition(b";")[2]
                deletion = deletes.get(attrs)
                if deletion is None:
                    deletion = self._deletes(attrs)
                if not deletion:
                    drop.append(at)
                    blocked.append(name)
            at = kinds.find(b"S", at + 1)
        if not drop:
            return None
        self.blocked.add(blocked)
        if len(drop) == 1:
            i = drop[0]
            return [*headers[:i], *headers[i + 1 :]], kinds[:i] + kinds[i + 1 :], blocked
        keep = [i for i in range(len(headers)) if i not in drop]
        return [headers[i] for i in keep], bytes(kinds[i] for i in keep), blocked

    def filter_headers(
        self, headers: Headers, state: ConsentState, expire: tuple[bytes, ...] = ()
    ) -> tuple[Headers, list[str]]:
        """Drop ``Set-Cookie`` headers ``state`` does not allow; append ``expire``.

        Returns the new header list (``headers`` itself when nothing changes) and
        the names of the blocked cookies. Order and duplicates are kept; header
        names are compared case-insensitively (Django sends ``Set-Cookie``);
        deletions always pass. (The response flow calls
        :meth:`filter_set_cookies`; this is for websocket ``accept`` headers and
        for callers of the policy alone.)
        """
        kept = self.filter_set_cookies(headers, header_kinds(headers), state)
        blocked: list[str] = []
        if kept is not None:
            headers, _, blocked = kept
        if expire:
            headers = [*headers, *((b"set-cookie", v) for v in expire)]
        return headers, blocked

    def _deletes(self, attrs: bytes) -> bool:
        """Whether Set-Cookie attributes (all after the first ``;``) make it a deletion
        a browser honours (those always pass); cached per attribute string."""
        return remember(self._deletions, attrs, _attributes_delete(attrs), self._cache_size)
