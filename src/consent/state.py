"""The visitor's consent state and the signed cookie that carries it."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from .core.memo import remember
from .errors import BadSignature
from .signing import Signer, b64encode

__all__ = ["ConsentState", "StateCodec", "new_consent_id"]

Source = Literal["banner", "settings", "api", "gpc", "none"]
_SOURCES: dict[str, Source] = {"b": "banner", "s": "settings", "a": "api", "g": "gpc"}
_SOURCE_CODES = {v: k for k, v in _SOURCES.items()}
_VERSION = b"1"
_ID = re.compile(rb"^[A-Za-z0-9_-]{22}$")
_KEY = re.compile(rb"^[a-z][a-z0-9_-]{0,31}$")


def new_consent_id() -> str:
    """A random, unguessable consent id (128 bits, 22 characters)."""
    return b64encode(os.urandom(16)).decode()


@dataclass(frozen=True, slots=True)
class ConsentState:
    """What the visitor agreed to.

    ``granted`` holds every allowed category, the required ones included, so
    ``state.allows("necessary")`` is always true. An undecided visitor has
    ``decided == False`` and only the required categories.
    """

    granted: frozenset[str]
    decided: bool = False
    consent_id: str | None = None
    revision: int = 0
    issued_at: int | None = None
    source: Source = "none"
    #: The browser sent ``Sec-GPC: 1``; categories marked ``gpc_opt_out`` are denied.
    gpc: bool = False
    #: Categories the visitor chose but the GPC signal overrides (shown in the banner).
    gpc_denied: frozenset[str] = field(default_factory=frozenset)

    def allows(self, key: str) -> bool:
        """Whether cookies and scripts of category ``key`` may be used."""
        return key in self.granted

    def as_json(self) -> dict[str, object]:
        return {
            "decided": self.decided,
            "consent_id": self.consent_id,
            "granted": sorted(self.granted),
            "revision": self.revision,
            "issued_at": self.issued_at,
            "source": self.source,
            "gpc": self.gpc,
        }


class _Unseen:
    """What the verification memo answers for a value it has not seen."""


_UNSEEN = _Unseen()


class StateCodec:
    """Encodes a :class:`ConsentState` into the consent cookie value and back.

    The value is ``1.<consent_id>.<revision>.<issued, base 36>.<source>.<keys joined by ~>.<mac>``:
    nothing but the choice, its version and the consent id (CNIL 2020-091). It is
    about 120-190 bytes for eight categories. Any problem with a cookie -- bad
    signature, older revision, expired, malformed -- yields ``None``, which
    callers read as "undecided".
    """

    def __init__(
        self,
        signer: Signer,
        *,
        revision: int,
        max_age: int,
        required: frozenset[str],
        optional: Iterable[str],
    ):
        self._signer = signer
        self._revision = revision
        self._max_age = max_age
        self._required = required
        self._optional = frozenset(optional)
        self._cache: dict[bytes, ConsentState | None] = {}
        self._cache_size = 2048

    def encode(self, state: ConsentState) -> str:
        keys = sorted(k for k in state.granted if k in self._optional)
        issued = state.issued_at if state.issued_at is not None else int(time.time())
        payload = b".".join(
            [
                _VERSION,
                (state.consent_id or new_consent_id()).encode(),
                str(state.revision).encode(),
                _b36(issued),
                _SOURCE_CODES.get(state.source, "b").encode(),
                "~".join(keys).encode(),
            ]
        )
        return self._signer.sign(payload).decode()

    def decode(self, value: bytes | str, *, now: float | None = None) -> ConsentState | None:
        raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
        cached = self._cache.get(raw, _UNSEEN)
        if isinstance(cached, _Unseen):
            # An attacker cycling values only empties the memo now and then.
            state = remember(self._cache, raw, self._verify(raw), self._cache_size)
        else:
            state = cached
        if state is None or state.issued_at is None:
            return None
        t = time.time() if now is None else now
        if not (state.issued_at - 300 <= t < state.issued_at + self._max_age):
            return None
        return state

    def _verify(self, raw: bytes) -> ConsentState | None:
        if len(raw) > 1024:
            return None
        try:
            payload = self._signer.unsign(raw)
        except BadSignature:
            return None
        parts = payload.split(b".")
        if len(parts) != 6 or parts[0] != _VERSION:
            return None
        _, cid, rev, issued, source, keys = parts
        if not _ID.match(cid) or not rev.isdigit() or source.decode() not in _SOURCES:
            return None
        if int(rev) != self._revision:
            return None  # an older (or other) revision: ask again
        try:
            issued_at = int(issued, 36)
        except ValueError:
            return None
        granted = {k.decode() for k in keys.split(b"~") if _KEY.match(k)}
        return ConsentState(
            granted=frozenset(granted & self._optional) | self._required,
            decided=True,
            consent_id=cid.decode(),
            revision=int(rev),
            issued_at=issued_at,
            source=_SOURCES[source.decode()],
        )

    def with_gpc(self, state: ConsentState, opt_out: frozenset[str]) -> ConsentState:
        """``state`` as seen under ``Sec-GPC: 1``: ``opt_out`` categories denied."""
        return replace(
            state,
            granted=state.granted - opt_out,
            gpc=True,
            gpc_denied=state.granted & opt_out,
        )


def _b36(n: int) -> bytes:
    digits = b"0123456789abcdefghijklmnopqrstuvwxyz"
    out = bytearray()
    n = max(n, 0)
    while True:
        n, r = divmod(n, 36)
        out.append(digits[r])
        if not n:
            return bytes(reversed(out))
