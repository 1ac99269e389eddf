"""Streaming HTML injection: where the banner goes, and the headers that change with it.

Pure: no I/O, no framework. The response flow (:mod:`consent.core.flow`) asks
:func:`html_codec` whether a page can take the snippets, then places them with
:func:`inject_page` (a body in one piece) or one :class:`HTMLInjector` (a stream).

The page is searched as raw bytes, which is safe because only ASCII-compatible
charsets are accepted: in those, ``<`` and ``/`` are never part of a multi-byte
character, so a ``</body>`` found in the bytes is a real one.
"""

from __future__ import annotations

import codecs
import functools
import re

__all__ = ["HTMLInjector", "body_is_injectable", "html_codec", "inject_page"]

_HTML_TYPES = frozenset({b"text/html", b"application/xhtml+xml"})

# Encoding this probe must give back the same ASCII bytes, or the charset cannot
# be searched as bytes (UTF-16/32, EBCDIC) or would prefix a BOM (utf-8-sig).
_PROBE = "<head></body>"
_PROBE_BYTES = _PROBE.encode("ascii")

# ASCII-compatible on the probe, but they shift into modes where ASCII bytes stand
# for other characters, or they are not page encodings at all.
_UNSAFE_CODECS = ("utf-7", "iso2022", "hz", "idna", "unicode-escape", "raw-unicode-escape")

_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


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
        """The whole body in one call: the same placement as feed() + finish(),
        without the bookkeeping that streaming needs."""
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
    response whose body comes in one message needs. The pure twin of the compiled
    kernel; use :func:`consent.core.kernels.inject_page`, which picks.
    """
    return HTMLInjector(body, head=head, window=window).finish(page)


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
