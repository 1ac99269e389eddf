"""Streaming HTML injection: where the banner goes, and the headers that change with it.

Pure: no I/O, no framework. The shells ask :func:`plan_injection` whether a response
may be touched, encode the snippets in the codec it names, send the headers from
:func:`rewrite_headers` and pass every body chunk through one :class:`HTMLInjector`.

The page is searched as raw bytes, which is safe because only ASCII-compatible
charsets are accepted: in those, ``<`` and ``/`` are never part of a multi-byte
character, so a ``</body>`` found in the bytes is a real one.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Sequence

from .page import nonce_of
from .response import speedups

_c_inject_page = speedups.inject_page if speedups is not None else None
_c_page_facts = speedups.page_facts if speedups is not None else None
_c_rewrite_simple = speedups.rewrite_simple if speedups is not None else None

__all__ = [
    "HTMLInjector",
    "body_is_injectable",
    "html_codec",
    "inject_page",
    "plan_injection",
    "plan_page",
    "rewrite_headers",
    "rewrite_planned",
]

_HTML_TYPES = frozenset({b"text/html", b"application/xhtml+xml"})

# Encoding this probe must give back the same ASCII bytes, or the charset cannot
# be searched as bytes (UTF-16/32, EBCDIC) or would prefix a BOM (utf-8-sig).
_PROBE = "<head></body>"
_PROBE_BYTES = _PROBE.encode("ascii")

# ASCII-compatible on the probe, but they shift into modes where ASCII bytes stand
# for other characters, or they are not page encodings at all.
_UNSAFE_CODECS = ("utf-7", "iso2022", "hz", "idna", "unicode-escape", "raw-unicode-escape")

_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
# The headers plan_page looks at, by name as usually spelt (lowercase, as ASGI
# asks, and capitalised, as WSGI apps and Django send them).
_TYPE, _LENGTH, _VARY, _ETAG, _CSP, _ENCODING, _RANGE, _DISPOSITION = range(8)
_PLAN_NAMES = {
    name: kind
    for lower, kind in (
        (b"content-type", _TYPE),
        (b"content-length", _LENGTH),
        (b"vary", _VARY),
        (b"etag", _ETAG),
        (b"content-security-policy", _CSP),
        (b"content-encoding", _ENCODING),
        (b"content-range", _RANGE),
        (b"content-disposition", _DISPOSITION),
    )
    for name in (lower, b"-".join(w.capitalize() for w in lower.split(b"-")))
}
_PLAN_NAMES[b"ETag"] = _ETAG
_PLAN_NAME_LENGTHS = frozenset(len(name) for name in _PLAN_NAMES)


def plan_injection(method: str, status: int, headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Decide from the response head whether the body may be injected.

    Returns the Python codec name to encode the snippets in (with
    ``xmlcharrefreplace``), or ``None`` to leave the body untouched. ``None`` when
    the method is not ``GET``; the status is not 200; the Content-Type is not
    ``text/html`` or ``application/xhtml+xml`` (or there are several); a
    Content-Encoding other than ``identity`` is present; Content-Range is present;
    Content-Disposition says ``attachment``; the charset is unknown or not
    ASCII-compatible (UTF-16, UTF-32, UTF-7, ISO-2022, …). Without a charset the
    answer is ``"utf-8"``. Header names are compared case-insensitively.
    """
    plan = plan_page(method, status, headers)
    return None if plan is None else plan[0]


#: Where :func:`rewrite_planned` edits the headers: the indexes of Content-Length,
#: Vary and ETag (-1 when absent), or None when one of them occurs more than once.
Edits = tuple[int, int, int] | None


def plan_page(
    method: str, status: int, headers: Sequence[tuple[bytes, bytes]]
) -> tuple[str, str | None, Edits] | None:
    """:func:`plan_injection`, with what else a page needs, in the same pass.

    Returns ``(codec, nonce, edits)``: ``nonce`` is the script nonce of the first
    Content-Security-Policy header that has one (as
    :func:`~consent.core.page.csp_nonce`), ``edits`` where
    :func:`rewrite_planned` changes the headers. ``None`` leaves the body untouched.
    """
    if status != 200 or (method != "GET" and method.upper() != "GET"):
        return None
    if _c_page_facts is not None:
        facts = _c_page_facts(headers)
        if facts is not None:  # the usual page, read in C
            found: bytes | None = facts[0]
            codec = None if found is None else html_codec(found)
            return None if codec is None else (codec, None, facts[1])
    content_type: bytes | None = None
    nonce: str | None = None
    length_at = vary_at = etag_at = -1
    several = False
    i = -1
    for raw_name, value in headers:
        i += 1
        # One dict lookup sorts the usual spellings; any other spelling of a name
        # as long as one that matters is lowercased and looked up again.
        kind = _PLAN_NAMES.get(raw_name)
        if kind is None:
            if len(raw_name) not in _PLAN_NAME_LENGTHS:
                continue
            kind = _PLAN_NAMES.get(raw_name.lower())
            if kind is None:
                continue
        if kind == _TYPE:
            if content_type is not None:
                return None
            content_type = value
        elif kind == _LENGTH:
            several = several or length_at >= 0
            length_at = i
        elif kind == _VARY:
            several = several or vary_at >= 0
            vary_at = i
        elif kind == _ETAG:
            several = several or etag_at >= 0
            etag_at = i
        elif kind == _CSP:
            if nonce is None:
                nonce = nonce_of(value)
        elif kind == _ENCODING:
            for token in value.split(b","):
                token = token.strip().lower()
                if token and token != b"identity":
                    return None
        elif kind == _RANGE or (
            kind == _DISPOSITION and value.split(b";", 1)[0].strip().lower() == b"attachment"
        ):
            return None
    if content_type is None:
        return None
    codec = html_codec(content_type)
    if codec is None:
        return None
    return codec, nonce, None if several else (length_at, vary_at, etag_at)


@functools.lru_cache(maxsize=256)
def html_codec(content_type: bytes) -> str | None:
    """The codec a page with this Content-Type value is written in, if it can take a snippet.

    ``None`` when the type is not HTML, or its charset cannot carry the ASCII
    snippet unchanged (UTF-16, say). Sites send a handful of distinct values:
    each is parsed once.
    """
    mime, _, params = content_type.partition(b";")
    if mime.strip().lower() not in _HTML_TYPES:
        return None
    for param in params.split(b";"):
        key, eq, charset = param.partition(b"=")
        if eq and key.strip().lower() == b"charset":
            charset = charset.strip().strip(b"\"'").strip()
            if charset:
                return _codec(charset.decode("latin-1").lower())
            break
    return "utf-8"


@functools.lru_cache(maxsize=64)
def _codec(charset: str) -> str | None:
    try:
        name = codecs.lookup(charset).name
        probe = _PROBE.encode(name)
    except (LookupError, ValueError):  # ValueError covers UnicodeError and NUL bytes
        return None
    if probe != _PROBE_BYTES or name.startswith(_UNSAFE_CODECS):
        return None
    return name


def body_is_injectable(first_chunk: bytes) -> bool:
    """``False`` when the body starts with a UTF-16 or UTF-32 byte order mark.

    A BOM overrides the declared charset in browsers. The UTF-8 BOM is fine. Pass
    the first non-empty chunk.
    """
    return not first_chunk.startswith(_BOMS)


def rewrite_headers(
    headers: Sequence[tuple[bytes, bytes]], added: int, *, trailers: bool = False
) -> list[tuple[bytes, bytes]]:
    """The header list for an injected response; order and duplicates are kept.

    Content-Length grows by ``added`` (it is dropped when it cannot be parsed, and
    always when ``trailers`` is set, as the body is then sent chunked); ``Vary``
    gains ``Cookie`` (merged into the first ``Vary`` header, never duplicated, and
    ``Vary: *`` is left alone); a strong ETag is made weak, since the bytes now
    depend on the visitor. Set-Cookie and every other header pass untouched.
    """
    out: list[tuple[bytes, bytes]] = []
    vary_at = -1
    vary_done = False
    for name, value in headers:
        # Content-Length is 14 letters, Vary and ETag 4: other names pass unlowered.
        n = len(name)
        if n != 14 and n != 4:
            out.append((name, value))
            continue
        lower = name.lower()
        if lower == b"content-length":
            if trailers:
                continue
            grown = _grown_length(value, added)
            if grown is None:
                continue
            value = grown
        elif lower == b"vary":
            if _vary_has_cookie(value):
                vary_done = True
            elif vary_at < 0:
                vary_at = len(out)
        elif lower == b"etag":
            value = _weak_etag(value)
        out.append((name, value))
    if not vary_done:
        if vary_at < 0:
            out.append((b"vary", b"Cookie"))
        else:
            name, value = out[vary_at]
            out[vary_at] = (name, _vary_and_cookie(value))
    return out


def rewrite_planned(
    headers: Sequence[tuple[bytes, bytes]], edits: Edits, added: int, *, trailers: bool = False
) -> list[tuple[bytes, bytes]]:
    """:func:`rewrite_headers`, at the places :func:`plan_page` found: no second pass."""
    if edits is None or trailers:
        return rewrite_headers(headers, added, trailers=trailers)
    if _c_rewrite_simple is not None:
        done: list[tuple[bytes, bytes]] | None = _c_rewrite_simple(headers, edits, added)
        if done is not None:  # no Vary, no ETag, a plain Content-Length
            return done
    length_at, vary_at, etag_at = edits
    out = list(headers)
    if etag_at >= 0:
        name, value = out[etag_at]
        out[etag_at] = (name, _weak_etag(value))
    if vary_at < 0:
        out.append(_VARY_COOKIE)
    else:
        name, value = out[vary_at]
        if not _vary_has_cookie(value):
            out[vary_at] = (name, _vary_and_cookie(value))
    if length_at >= 0:  # last: deleting it moves what follows
        name, value = out[length_at]
        if value.isdigit():  # the usual value, without spaces
            out[length_at] = (name, b"%d" % (int(value) + added))
        else:
            grown = _grown_length(value, added)
            if grown is None:
                del out[length_at]
            else:
                out[length_at] = (name, grown)
    return out


_VARY_COOKIE = (b"vary", b"Cookie")


def _grown_length(value: bytes, added: int) -> bytes | None:
    """A Content-Length value grown by ``added``; None when it is not a number."""
    digits = value.strip()
    return b"%d" % (int(digits) + added) if digits.isdigit() else None


def _vary_has_cookie(value: bytes) -> bool:
    """Whether a Vary value covers Cookie already (``Cookie`` or ``*``)."""
    tokens = [t.strip().lower() for t in value.split(b",")]
    return b"*" in tokens or b"cookie" in tokens


def _vary_and_cookie(value: bytes) -> bytes:
    value = value.strip()
    return value + b", Cookie" if value else b"Cookie"


def _weak_etag(value: bytes) -> bytes:
    """A strong ETag made weak (the bytes now depend on the visitor); weak ones stay."""
    tag = value.strip()
    if tag[:2].upper() == b"W/":
        return value
    return b"W/" + (tag if tag.startswith(b'"') else b'"' + tag + b'"')


_Buf = bytes | bytearray | memoryview

_CLOSE = b"</body>"
_CLOSE_ANY_CASE = re.compile(re.escape(_CLOSE), re.IGNORECASE)
_KEEP = len(_CLOSE) - 1  # the longest proper prefix of </body> a chunk can end with

# Where the head snippet stands. From _DONE on, no chunk needs it placed.
_SEARCHING = 0
_FOUND = 1  # position known, not yet emitted
_DONE = 2  # emitted (or empty)
_MISSING = 3  # no <head> tag in the window: goes out together with the body snippet

# What the <head> scanner is inside of.
_TEXT = 0
_COMMENT = 1
_TAG = 2

# The start of a comment or of a <head> tag: the byte after "<head" must end the
# tag name, so <head>, <head lang=…> and <head/> match and <header> does not. The
# group takes the rest of a tag without quotes, the usual case, in the same call.
# A regex over the raw bytes finds it without a lowercased copy of the page.
_HEAD_OR_COMMENT = re.compile(rb"<(?:!--|head(?=[\t\n\x0c\r />])([^>\"']*>)?)", re.IGNORECASE)

# </body> is almost always in the last few hundred bytes of a page, so a big chunk
# is searched in its tail first: a 20 KB page costs a 512-byte lower(), not 20 KB.
_TAIL = 512


class HTMLInjector:
    """Inserts snippets into one HTML response body as it streams by.

    ``head`` goes right after the first ``<head>`` start tag (case-insensitive,
    outside comments, the tag ending within the first ``window`` bytes); ``body``
    goes right before the last ``</body>`` (case-insensitive, across any chunk
    boundaries). Each snippet is emitted exactly once: without a ``<head>`` tag,
    ``head`` goes out together with ``body``; without ``</body>``, both are
    appended at the end. The output is therefore always exactly :attr:`added`
    bytes longer than the input, so Content-Length can be set up front.

    Bytes are held back only from the most recent ``</body>`` candidate on (a later
    one may follow) plus up to six bytes that may begin one. When the held part
    outgrows ``window`` without a new candidate, it is sent and that candidate is
    forgotten (the snippet then goes before a later ``</body>`` or at the end), so
    memory stays bounded and long streams are never stalled.
    """

    __slots__ = (
        "_body",
        "_cand",
        "_carry",
        "_finished",
        "_head",
        "_head_at",
        "_held",
        "_pos",
        "_quote",
        "_scan",
        "_seen",
        "_state",
        "_window",
    )

    def __init__(self, body: bytes, *, head: bytes = b"", window: int = 65536) -> None:
        if window < 1:
            raise ValueError("window must be positive")
        self._body = body
        self._head = head
        self._window = window
        self._state = _SEARCHING if head else _DONE
        self._head_at = 0  # input offset of the head snippet, once _FOUND
        self._scan = _TEXT
        self._carry = b""  # the end of the last chunk, which the <head> scan must see again
        self._quote = b""  # the quote an attribute value of <head …> is open with
        self._seen = 0  # input bytes fed so far
        self._held = bytearray()  # input not yet emitted; it starts at offset _pos
        self._pos = 0
        self._cand = False  # whether _held starts with a </body> candidate
        self._finished = False

    @property
    def added(self) -> int:
        """How many bytes the injection adds: ``len(head) + len(body)``."""
        return len(self._head) + len(self._body)

    def feed(self, chunk: bytes) -> bytes:
        """Take the next body chunk; return what can be sent now (may be empty)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if not chunk:
            return b""
        close = _rfind_close(chunk)
        n = len(chunk)
        if not self._seen and close >= 0 and n - close <= self._window:
            # The usual first chunk of a page sent in one piece by an iterator
            # (Flask, Django): placed in one step, only the </body> candidate held.
            first = self._first(chunk, close)
            if first is not None:
                return first
        if (
            close < 0
            and self._state >= _DONE
            and not self._held
            and chunk.find(b"<", max(0, n - _KEEP)) < 0
        ):
            # The common mid-page chunk: nothing held, nothing to place, nothing
            # that could begin a </body>. It goes out as is, uncopied.
            self._seen = self._pos = self._seen + n
            return chunk
        out = self._feed(chunk, close)
        if len(out) == 1 and type(out[0]) is bytes:
            return out[0]
        return b"".join(out)

    def _first(self, chunk: bytes, close: int) -> bytes | None:
        """The first chunk, which holds a ``</body>`` candidate at ``close``.

        Everything before the candidate goes out now, the head snippet placed; the
        candidate and what follows are held, as :meth:`_feed` would hold them.
        ``None`` (nothing changed) unless a plain ``<head>`` tag comes first.
        """
        view = memoryview(chunk)
        if self._state == _SEARCHING:
            m = _HEAD_OR_COMMENT.search(chunk, 0, self._window)
            if m is None or m.group(1) is None or m.end() > close:
                return None
            h = m.end()
            out = b"".join((view[:h], self._head, view[h:close]))
        else:  # no head snippet to place
            out = bytes(view[:close])
        self._state = _DONE
        self._seen = len(chunk)
        self._pos = close
        self._held = bytearray(view[close:])
        self._cand = True
        return out

    def finish(self, chunk: bytes = b"") -> bytes:
        """End of body: return the rest, with the snippets placed.

        ``chunk`` is an optional last chunk: ``finish(last)`` equals
        ``feed(last) + finish()``, only faster; for a body that comes in one piece,
        ``finish(body)`` alone is the fastest path. Call it exactly once: a second
        call raises :exc:`RuntimeError` rather than send the snippets twice.
        """
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if chunk and not self._seen:
            return self._whole(chunk)
        out = self._feed(chunk, _rfind_close(chunk)) if chunk else []
        pos = self._pos
        held = self._held
        self._held = bytearray()
        self._pos = self._seen
        tail: list[_Buf] = [self._body]
        if self._state == _SEARCHING or self._state == _MISSING:
            tail.insert(0, self._head)
            self._state = _DONE
        if self._cand:
            self._cand = False
            # A head tag ending right at the candidate was placed when the bytes
            # before the candidate went out, so a pending head lies inside `held`.
            out += tail
            out += self._place_head(pos, [held])
        else:
            out += self._place_head(pos, [held])
            out += tail
        return b"".join(out)

    def _whole(self, page: bytes) -> bytes:
        # The whole body in one call: the same placement as feed() + finish(),
        # without the bookkeeping that streaming needs.
        if _c_inject_page is not None:  # the compiled twin, for the usual page
            done: bytes | None = _c_inject_page(page, self._body, self._head, self._window)
            if done is not None:
                self._seen = self._pos = len(page)
                self._state = _DONE
                return done
        return self._place_whole(page)

    def _place_whole(self, page: bytes) -> bytes:
        """:meth:`_whole` in Python (also what :func:`inject_page` falls back to)."""
        n = len(page)
        self._seen = self._pos = n
        if self._state == _SEARCHING:
            self._find_head(page, 0)
        c = _rfind_close(page)
        if c < 0 or n - c > self._window:
            c = n
        view = memoryview(page)
        head, body = self._head, self._body
        out: list[_Buf]
        if self._state != _FOUND:
            out = [view[:c], body, view[c:]]
            if self._state != _DONE:
                out.insert(1, head)
        elif (h := self._head_at) <= c:
            out = [view[:h], head, view[h:c], body, view[c:]]
        else:
            out = [view[:c], body, view[c:h], head, view[h:]]
        self._state = _DONE
        return b"".join(out)

    def _feed(self, chunk: bytes, i: int) -> list[_Buf]:
        # `i` is _rfind_close(chunk), which the caller has already computed.
        n = len(chunk)
        base = self._seen
        self._seen = base + n
        if self._state == _SEARCHING:
            self._find_head(chunk, base)
        held = self._held
        hn = len(held)
        total = hn + n  # the bytes not yet emitted: held, then chunk
        cand = self._cand
        keep = total  # how many of them to hold back
        if i >= 0:
            keep = n - i
            cand = True
        elif hn:
            # A candidate that starts in the held bytes and ends in this chunk.
            edge = bytes(held[-_KEEP:])
            i = (edge + chunk[:_KEEP]).lower().rfind(_CLOSE)
            if i >= 0:
                keep = n + len(edge) - i
                cand = True
        if cand and keep > self._window:
            # The candidate is too far back to keep waiting for: give it up.
            cand = False
        if not cand:
            tail = chunk[-_KEEP:] if n >= _KEEP else bytes(held[n - _KEEP :]) + chunk
            keep = _partial_close(tail)
        self._cand = cand
        if keep == total and cand:
            held += chunk  # nothing to send; no view of `held` is alive
            return []
        pos = self._pos
        emit = total - keep
        self._pos = pos + emit
        out: list[_Buf]
        if emit == total:
            out = [held, chunk] if hn else [chunk]
            self._held = bytearray()
        elif emit >= hn:
            view = memoryview(chunk)
            out = [held, view[: emit - hn]] if hn else [view[:emit]]
            self._held = bytearray(view[emit - hn :])
        else:
            out = [held[:emit]]
            self._held = held[emit:] + chunk
        return self._place_head(pos, out)

    def _place_head(self, start: int, out: list[_Buf]) -> list[_Buf]:
        """Insert the head snippet if its offset falls within ``out``, which starts at ``start``."""
        if self._state != _FOUND:
            return out
        at = self._head_at - start
        for i, piece in enumerate(out):
            size = len(piece)
            if at <= size:
                view = memoryview(piece)
                out[i : i + 1] = [view[:at], self._head, view[at:]]
                self._state = _DONE
                return out
            at -= size
        return out

    def _find_head(self, chunk: bytes, base: int) -> None:
        # Only the first `window` input bytes are searched; the scan is given up
        # (state _MISSING) once they have all been seen, so `end` is positive here.
        end = self._window - base
        carry = self._carry
        if carry:  # rare: the last chunk ended inside "<head" or "-->"
            self._carry = b""
            data = carry + chunk[:end]
            if self._scan_head(data, len(data), base - len(carry)):
                return
        elif self._scan_head(chunk, min(end, len(chunk)), base):
            return
        if len(chunk) >= end:
            self._state = _MISSING

    def _scan_head(self, data: bytes, end: int, base: int) -> bool:
        """Advance the ``<head>`` scan over ``data[:end]``, which starts at input offset ``base``.

        Returns True once the tag is found; otherwise keeps in ``_carry`` the bytes
        the next chunk must be searched together with.
        """
        i = 0
        while True:
            if self._scan == _TEXT:
                m = _HEAD_OR_COMMENT.search(data, i, end)
                if m is None:
                    # Keep a trailing "<", "<h" … "<head" or "<!", "<!-".
                    lt = data.rfind(b"<", max(i, end - 5), end)
                    if lt >= 0:
                        rest = data[lt:end].lower()
                        if b"<head".startswith(rest) or b"<!-".startswith(rest):
                            self._carry = rest
                    return False
                if m.group(1) is not None:
                    self._head_at = base + m.end()
                    self._state = _FOUND
                    return True
                if m.end() - m.start() == 4:  # "<!--"
                    self._scan = _COMMENT
                    i = m.start() + 2  # "<!-->" and "<!--->" are complete comments
                else:  # a quote, or the tag goes on in the next chunk
                    self._scan = _TAG
                    i = m.end()
            elif self._scan == _COMMENT:
                e = data.find(b"-->", i, end)
                if e < 0:
                    rest = data[max(i, end - 2) : end]
                    self._carry = rest[len(rest.rstrip(b"-")) :]
                    return False
                self._scan = _TEXT
                i = e + 3
            else:
                if self._quote:
                    q = data.find(self._quote, i, end)
                    if q < 0:
                        return False
                    self._quote = b""
                    i = q + 1
                gt = data.find(b">", i, end)
                stop = end if gt < 0 else gt
                q = _first(data.find(b'"', i, stop), data.find(b"'", i, stop))
                if q >= 0:
                    self._quote = data[q : q + 1]
                    i = q + 1
                elif gt >= 0:
                    self._head_at = base + gt + 1
                    self._state = _FOUND
                    return True
                else:
                    return False


def inject_page(page: bytes, body: bytes, head: bytes = b"", window: int = 65536) -> bytes:
    """A whole page in one piece, with the snippets placed.

    Equal to ``HTMLInjector(body, head=head, window=window).finish(page)``: what a
    response whose body comes in one message needs, without an injector object.
    The usual page (a plain ``<head>`` tag, ``</body>`` near the end) takes two
    searches and one copy in C when :data:`~consent.core.response.speedups` is
    built; any other page, or without the compiled twin, the injector's own
    whole-page placement.
    """
    if _c_inject_page is not None:
        done: bytes | None = _c_inject_page(page, body, head, window)
        if done is not None:
            return done
    injector = HTMLInjector(body, head=head, window=window)
    injector._finished = True
    return injector._place_whole(page)


def _first(a: int, b: int) -> int:
    """The smaller of two ``find`` results, ignoring a miss (-1)."""
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def _rfind_close(data: bytes) -> int:
    """Offset of the last ``</body>`` in ``data`` (any case), or -1."""
    n = len(data)
    # The usual page spells it in lowercase near its end: an rfind over the tail,
    # then a check that no other spelling follows (one short regex search), both
    # without copying. (A miss over a whole page would cost more than lower().)
    i = data.rfind(_CLOSE, n - _TAIL)
    if i >= 0 and _CLOSE_ANY_CASE.search(data, i + 7) is None:
        return i
    if n > 4 * _TAIL:
        i = data[n - _TAIL :].lower().rfind(_CLOSE)
        if i >= 0:
            return n - _TAIL + i
        # The rest overlaps the tail by six bytes, for a match across the seam.
        return data[: n - _TAIL + _KEEP].lower().rfind(_CLOSE)
    return data.lower().rfind(_CLOSE)


def _partial_close(tail: bytes) -> int:
    """How many bytes at the end of ``tail`` could start a ``</body>``."""
    lt = tail.rfind(b"<")
    if lt < 0:
        return 0
    rest = tail[lt:].lower()
    return len(rest) if _CLOSE.startswith(rest) else 0
