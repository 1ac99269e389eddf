"""The response flow: one state machine per response, the one home of its rules.

The shells feed a :class:`ResponseFlow` the response's start (status and
headers) and its body chunks, and send what it returns; they decide nothing
themselves. Everything the middleware does to a response happens here:

- ``Set-Cookie`` headers the visitor has not granted are dropped (the verdict per
  cookie is :class:`~consent.core.response.CookiePolicy`'s), and deletions for
  refused cookies the browser sent are appended, a bounded number per response;
- a response changed for this visitor becomes ``private`` for shared caches and
  ``Vary`` names the request headers it depends on;
- an HTML page gets the banner's snippets (placed by :mod:`consent.core.inject`),
  with ``Content-Length``, ``ETag``, ``Vary``, ``Cache-Control`` and
  ``Accept-Ranges`` rewritten to match; ``HEAD`` announces what ``GET`` would send;
- responses that must not be touched pass as they are: compressed, partial
  (206/``Content-Range``), downloads, other statuses and types, non-ASCII-compatible
  charsets, excluded paths.

The start of a page is held until its first body chunk (a UTF-16/32 byte-order
mark there rules the snippets out); after that, chunks flow as they come, and the
injector holds at most ``inject_window`` bytes while it looks for ``</body>``.

Pure and synchronous: no I/O, no framework. States::

    START --start()--> PASS        (nothing to inject: the body goes by untouched)
          --start()--> HELD        (a page: start held until the first chunk)
    HELD  --body()---> INJECTING   (snippets decided; chunks go through the injector)
          --body()---> PASS        (empty body or byte-order mark: start sent unchanged)
          --flush()--> PASS        (another message came first: start sent unchanged)
    INJECTING --body(more=False)--> DONE
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ..config import ConsentConfig
from .inject import HTMLInjector, body_is_injectable, html_codec
from .kernels import header_kinds, inject_page
from .memo import remember
from .page import PageSnippets, nonce_of
from .response import CookiePolicy, RequestConsent

__all__ = [
    "DONE",
    "HELD",
    "INJECTING",
    "PASS",
    "START",
    "Pipeline",
    "ResponseFlow",
    "rewrite_headers",
]

Headers = Sequence[tuple[bytes, bytes]]

# States of a ResponseFlow.
START, PASS, HELD, INJECTING, DONE = range(5)


class Pipeline:
    """What every :class:`ResponseFlow` of one middleware shares: built once from the config.

    Holds configuration and what is derived from it, plus bounded caches that are
    safe to share between threads (a dict lookup or store is atomic).
    """

    def __init__(self, config: ConsentConfig, policy: CookiePolicy, snippets: PageSnippets) -> None:
        self.policy = policy
        self.snippets = snippets
        self.inject = config.inject
        self.exclude = tuple(config.exclude_paths)
        self.window = config.inject_window
        self.deletions_per_response = config.deletions_per_response
        # Which request headers an injected page depends on: the consent cookie
        # (the state), the language of the banner, and Sec-GPC when it opts out.
        self.vary_page = b"Cookie, Accept-Language" + (b", Sec-GPC" if config.gpc else b"")
        # Content-Type value -> the page's codec, or "" when it takes no snippet.
        self._codecs: dict[bytes, str] = {}
        self._turn = itertools.count()

    def codec(self, content_type: bytes) -> str:
        """The codec of a page with this Content-Type, or ``""`` when it is no page to inject."""
        found = self._codecs.get(content_type)
        if found is None:
            found = remember(self._codecs, content_type, html_codec(content_type) or "", 64)
        return found

    def deletions(self, expire: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """At most :attr:`deletions_per_response` of ``expire``.

        Which ones turns from response to response, a window of ``limit`` further
        each time, so that every deletion goes out sooner or later even when some
        cookie cannot be deleted (a browser that keeps sending it would otherwise
        take the same places forever).
        """
        limit = self.deletions_per_response
        n = len(expire)
        if n <= limit:
            return expire
        at = next(self._turn) * limit % n
        picked = expire[at : at + limit]
        if len(picked) < limit:
            picked += expire[: limit - len(picked)]
        return picked


class ResponseFlow:
    """One response on its way out, as a state machine; see the module docstring.

    ``method``, ``path`` (below ``root_path``), ``query``, ``root_path`` and
    ``accept_language`` describe the request; ``query`` and ``accept_language``
    may be the raw bytes of an ASGI request.
    """

    __slots__ = (
        "_changed",
        "_codec",
        "_headers",
        "_injector",
        "_kinds",
        "_nonce",
        "_p",
        "_pair",
        "_trailers",
        "accept_language",
        "method",
        "path",
        "query",
        "rc",
        "root_path",
        "state",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        rc: RequestConsent,
        method: str,
        path: str,
        query: bytes | str = b"",
        root_path: str = "",
        accept_language: bytes | str | None = None,
    ) -> None:
        self._p = pipeline
        self.rc = rc
        self.method = method
        self.path = path
        self.query = query
        self.root_path = root_path
        self.accept_language = accept_language
        #: One of START, PASS, HELD, INJECTING, DONE.
        self.state = START
        self._injector: HTMLInjector | None = None

    # -- events ------------------------------------------------------------------------
    def start(
        self, status: int, headers: Headers, trailers: bool = False
    ) -> Sequence[tuple[bytes, bytes]] | None:
        """The response's start: the headers to send now, or ``None`` to hold it.

        The headers returned are ``headers`` itself when nothing changes. After
        ``None``, the start comes back from :meth:`body` or :meth:`flush`. May be
        called again before the start was sent, to replace it (WSGI's
        ``exc_info``); the new start wins.
        """
        self._injector = None
        p = self._p
        kinds = header_kinds(headers)
        changed = False
        if kinds.find(b"S") >= 0:
            kept = p.policy.filter_set_cookies(headers, kinds, self.rc.state)
            if kept is not None:
                headers, kinds, _ = kept
                changed = True
        expire = self.rc.expire
        if expire:
            expire = p.deletions(expire)
            headers = [*headers, *((b"set-cookie", v) for v in expire)]
            kinds += b"S" * len(expire)
            changed = True
        at = kinds.find(b"T")
        codec = p._codecs.get(headers[at][1]) if at >= 0 else ""
        if codec is None:
            codec = p.codec(headers[at][1])
        if (
            (codec or status == 304)
            and p.inject
            and (self.method == "GET" or self.method == "HEAD" or self.method.upper() in _READS)
            and not (p.exclude and self.path.startswith(p.exclude))
        ):
            if status == 200 and codec and _injectable(headers, kinds):
                self._codec = codec
                self._nonce = _nonce(headers, kinds)
                self._trailers = trailers
                if self.method != "GET" and self.method.upper() != "GET":
                    # HEAD: announce what GET would send (its length, validators, Vary).
                    self.state = PASS
                    return self._page_headers(headers, kinds)
                self._headers = headers
                self._kinds = kinds
                self._changed = changed
                self.state = HELD
                return None
            if status == 304:
                # The 200 it stands for had the snippets: the same weak validator.
                headers = rewrite_headers(
                    headers,
                    kinds,
                    vary=b"Cookie" if changed else None,
                    private=changed,
                    weak_etag=True,
                )
                self.state = PASS
                return headers
        if changed:
            headers = rewrite_headers(headers, kinds, vary=b"Cookie", private=True)
        self.state = PASS
        return headers

    def body(
        self, chunk: bytes, more: bool = False
    ) -> tuple[Sequence[tuple[bytes, bytes]] | None, bytes]:
        """A body chunk: ``(start, out)``, the held start to send first (or
        ``None``) and the bytes to send (maybe empty, never to be dropped when
        ``more`` is False). An empty chunk with ``more`` while the start is held
        keeps it held (:attr:`state` stays ``HELD``): nothing may be sent then."""
        state = self.state
        if state == INJECTING:
            assert self._injector is not None
            if more:
                return None, self._injector.feed(chunk)
            self.state = DONE
            return None, self._injector.finish(chunk)
        if state != HELD:
            return None, chunk
        if not chunk and more:
            return None, chunk  # nothing to look at yet: the start stays held
        if not chunk or not body_is_injectable(chunk):
            # No body to take the snippets, or one a byte-order mark rules out.
            return self._release(), chunk
        if more and self._completes(chunk):
            # The whole body the start announced (how Flask and Django hand over a
            # page): placed in one step, as a last chunk; what follows passes.
            more = False
        out = self._page_headers(self._headers, self._kinds)
        head, snippet = self._pair
        if not more:
            self.state = PASS
            return out, inject_page(chunk, snippet, head, self._p.window)
        self._injector = HTMLInjector(snippet, head=head, window=self._p.window)
        self.state = INJECTING
        return out, self._injector.feed(chunk)

    def flush(self) -> Sequence[tuple[bytes, bytes]] | None:
        """Another message (pathsend, trailers, hints) comes before the body: the held
        start to send first, unchanged, or ``None`` when nothing is held."""
        if self.state != HELD:
            return None
        return self._release()

    # -- helpers -----------------------------------------------------------------------
    def _release(self) -> Sequence[tuple[bytes, bytes]]:
        """The held start, sent without snippets."""
        self.state = PASS
        if self._changed:
            return rewrite_headers(self._headers, self._kinds, vary=b"Cookie", private=True)
        return self._headers

    def _completes(self, chunk: bytes) -> bool:
        """Whether ``chunk`` is all the held start's Content-Length announces."""
        at = self._kinds.find(b"L")
        if at < 0 or self._kinds.find(b"L", at + 1) >= 0:
            return False
        declared = self._headers[at][1]
        return declared.isdigit() and int(declared) == len(chunk)

    def _snippets(self) -> tuple[bytes, bytes]:
        return self._p.snippets.get(
            self.rc.state,
            self._codec,
            self._nonce,
            self.accept_language,
            self.query,
            self.root_path,
            self.path,
        )

    def _page_headers(self, headers: Headers, kinds: bytes) -> list[tuple[bytes, bytes]]:
        """The start of a page that gets the snippets (or would, for ``HEAD``)."""
        self._pair = head, snippet = self._snippets()
        return rewrite_headers(
            headers,
            kinds,
            added=len(head) + len(snippet),
            vary=self._p.vary_page,
            private=True,
            weak_etag=True,
            trailers=self._trailers,
        )


_READS = ("GET", "HEAD")


def _injectable(headers: Headers, kinds: bytes) -> bool:
    """No Content-Encoding but identity, no Content-Range, no download, one Content-Type."""
    if kinds.find(b"R") >= 0 or kinds.count(b"T") != 1:
        return False
    at = kinds.find(b"Z")
    while at >= 0:
        for token in headers[at][1].split(b","):
            token = token.strip().lower()
            if token and token != b"identity":
                return False
        at = kinds.find(b"Z", at + 1)
    at = kinds.find(b"D")
    while at >= 0:
        if headers[at][1].split(b";", 1)[0].strip().lower() == b"attachment":
            return False
        at = kinds.find(b"D", at + 1)
    return True


def _nonce(headers: Headers, kinds: bytes) -> str | None:
    """The script nonce of the first Content-Security-Policy header that has one."""
    at = kinds.find(b"P")
    while at >= 0:
        nonce = nonce_of(headers[at][1])
        if nonce is not None:
            return nonce
        at = kinds.find(b"P", at + 1)
    return None


_EDGE_CONTROLS = (b"cdn-cache-control", b"surrogate-control")
# The letters of header_kinds, as the ints that iterating over its bytes gives.
_OTHER, _LENGTH, _RANGES, _ETAG, _VARY, _CACHE = b".LAEVC"


def rewrite_headers(
    headers: Headers,
    kinds: bytes,
    *,
    added: int | None = None,
    vary: bytes | None = None,
    private: bool = False,
    weak_etag: bool = False,
    trailers: bool = False,
) -> list[tuple[bytes, bytes]]:
    """A new header list for a response the middleware changed; ``kinds`` is
    :func:`~consent.core.kernels.header_kinds` of ``headers``.

    - ``added``: the body grows by this many bytes. Content-Length grows with it
      (dropped when it is not a number, and with ``trailers``, as the body then
      goes chunked); Accept-Ranges goes (ranges of the app's bytes are not ranges
      of these).
    - ``vary``: tokens merged into the first Vary header (appended when there is
      none; ``Vary: *`` is left alone).
    - ``private``: no shared cache may store it: ``public`` and ``s-maxage`` are
      removed from Cache-Control and ``private`` added (the browser's own
      ``max-age`` stays); without Cache-Control, ``Cache-Control: private``.
      Headers that steer only shared caches (``CDN-Cache-Control`` and its
      vendor variants, ``Surrogate-Control``) are removed.
    - ``weak_etag``: a strong ETag becomes weak (the bytes depend on the visitor).

    Order and duplicates of every other header are kept.
    """
    out: list[tuple[bytes, bytes]] = []
    vary_at = -1
    cache_seen = False
    for (name, value), kind in zip(headers, kinds, strict=True):
        if kind == _OTHER:
            # Targeted cache controls (RFC 9213's CDN-Cache-Control and vendor
            # variants, Surrogate-Control) would let an edge store what is private.
            if not (private and name.lower().endswith(_EDGE_CONTROLS)):
                out.append((name, value))
            continue
        if kind == _LENGTH and added is not None:
            if trailers:
                continue
            digits = value.strip()
            if not digits.isdigit():
                continue
            value = b"%d" % (int(digits) + added)
        elif kind == _RANGES and added is not None:
            continue
        elif kind == _ETAG and weak_etag:
            value = _weak_etag(value)
        elif kind == _VARY and vary is not None:
            if vary_at < 0:
                vary_at = len(out)
                value = _merge_vary(value, vary)
        elif kind == _CACHE and private:
            value = _private(value, first=not cache_seen)
            cache_seen = True
            if not value:
                continue
        out.append((name, value))
    if vary is not None and vary_at < 0:
        out.append((b"vary", vary))
    if private and not cache_seen:
        out.append((b"cache-control", b"private"))
    return out


def _weak_etag(value: bytes) -> bytes:
    tag = value.strip()
    if not tag or tag[:2].upper() == b"W/":
        return value
    return b"W/" + (tag if tag.startswith(b'"') else b'"' + tag + b'"')


def _merge_vary(value: bytes, add: bytes) -> bytes:
    """``value`` with every token of ``add`` it lacks (tokens compare in any case)."""
    tokens = [t.strip() for t in value.split(b",") if t.strip()]
    have = {t.lower() for t in tokens}
    if b"*" in have:
        return value
    for token in add.split(b","):
        token = token.strip()
        if token.lower() not in have:
            tokens.append(token)
            have.add(token.lower())
    return b", ".join(tokens)


def _private(value: bytes, *, first: bool) -> bytes:
    """A Cache-Control value no shared cache may act on: ``public`` and ``s-maxage``
    removed, ``private`` added to the first header (unless ``no-store`` or
    ``private`` is there)."""
    kept = []
    mark = first
    for directive in value.split(b","):
        d = directive.strip()
        name = d.split(b"=", 1)[0].strip().lower()
        if not d or name in (b"public", b"s-maxage"):
            continue
        if name in (b"private", b"no-store"):
            mark = False
        kept.append(d)
    if mark:
        kept.insert(0, b"private")
    return b", ".join(kept)
