"""Log records, their canonical form and the hash chain.

Everything here is pure: no I/O, no event loop. The stores only move rows.

A *row* is the tuple a store keeps, in :data:`COLUMNS` order, with ``time`` as
the canonical UTC text, ``granted``/``denied`` as comma-joined keys and ``ip`` as
text or ``None``. Keeping rows in exactly the form that is hashed means
verification never parses a date or builds a model, which is what makes a
million records verify in a few seconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from ..core.privacy import browser_family, truncate_ip

__all__ = [
    "COLUMNS",
    "GENESIS",
    "Action",
    "ChainBreak",
    "ChainVerifier",
    "ConsentRecord",
    "LogEntry",
    "Row",
    "Source",
    "VerifyResult",
    "browser_family",
    "canonical",
    "format_time",
    "parse_time",
    "seal",
    "truncate_ip",
]

Action = Literal["accept_all", "reject_all", "save", "withdraw", "gpc"]
Source = Literal["banner", "settings", "api", "gpc"]
_ACTIONS = frozenset(get_args(Action))
_SOURCES = frozenset(get_args(Source))

#: ``prev_hash`` of the very first record of a log.
GENESIS = "0" * 64
#: Prefix of the canonical form; bumped if the form ever changes, so old and new
#: records can never hash alike.
_VERSION = "consent-log/1"
_SEP = "\x1f"  # ASCII unit separator; no field may contain a control character

COLUMNS = (
    "seq",
    "time",
    "consent_id",
    "action",
    "source",
    "granted",
    "denied",
    "revision",
    "texts_hash",
    "locale",
    "browser",
    "ip",
    "writer",
    "prev_hash",
    "hash",
)
#: seq, time, consent_id, action, source, granted, denied, revision, texts_hash,
#: locale, browser, ip, writer, prev_hash, hash
Row = tuple[int, str, str, str, str, str, str, int, str, str, str, str | None, str, str, str]

_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONSENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LOCALE = re.compile(r"^[A-Za-z0-9_-]{0,35}$")
_BROWSER = re.compile(r"^[a-z0-9_-]{1,32}$")
_WRITER = re.compile(r"^[\x21-\x7e]{0,128}$")


def format_time(value: datetime) -> str:
    """The canonical text of a timestamp: UTC, microseconds, ``Z``.

    Fixed width, so text order is time order (``since``/``until`` compare text).
    """
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One consent decision, as the consent endpoint hands it to the log.

    Every field is checked on construction (``ValueError``): the log must never
    hold a raw IP address, a full user agent or free text that could break the
    canonical form. ``ip`` must already be truncated with :func:`truncate_ip`.
    """

    time: datetime
    consent_id: str
    action: Action
    source: Source
    granted: tuple[str, ...]
    denied: tuple[str, ...]
    revision: int
    texts_hash: str
    locale: str
    browser: str
    ip: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise ValueError("time must be a timezone-aware datetime")
        if not isinstance(self.consent_id, str) or not _CONSENT_ID.match(self.consent_id):
            raise ValueError(f"invalid consent_id {self.consent_id!r}")
        if self.action not in _ACTIONS:
            raise ValueError(f"invalid action {self.action!r}")
        if self.source not in _SOURCES:
            raise ValueError(f"invalid source {self.source!r}")
        for name in ("granted", "denied"):
            keys = getattr(self, name)
            if not isinstance(keys, tuple) or not all(
                isinstance(k, str) and _CATEGORY.match(k) for k in keys
            ):
                raise ValueError(f"{name} must be a tuple of category keys, got {keys!r}")
            if list(keys) != sorted(set(keys)):
                raise ValueError(f"{name} must be sorted and without duplicates: {keys!r}")
        if set(self.granted) & set(self.denied):
            raise ValueError("a category cannot be both granted and denied")
        if type(self.revision) is not int or self.revision < 0:
            raise ValueError(f"invalid revision {self.revision!r}")
        if not isinstance(self.texts_hash, str) or not _HEX64.match(self.texts_hash):
            raise ValueError("texts_hash must be a lowercase sha256 hex digest")
        if not isinstance(self.locale, str) or not _LOCALE.match(self.locale):
            raise ValueError(f"invalid locale {self.locale!r}")
        if not isinstance(self.browser, str) or not _BROWSER.match(self.browser):
            raise ValueError(f"browser must be a coarse family such as 'firefox': {self.browser!r}")
        # A raw address is refused here, at the boundary, rather than truncated
        # silently: the caller must make (and own) the decision to keep an IP.
        if self.ip is not None and (
            not isinstance(self.ip, str) or truncate_ip(self.ip) != self.ip
        ):
            raise ValueError("ip must be None or already truncated with truncate_ip()")


class ConsentRecord(BaseModel):
    """A committed log record: a :class:`LogEntry` plus its place in the chain.

    ``hash`` is the SHA-256 of the record's canonical form (see
    ``docs/auditors.md``), which covers every other field including ``prev_hash``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    time: datetime
    consent_id: str
    action: Action
    source: Source
    granted: tuple[str, ...]
    denied: tuple[str, ...]
    revision: int
    texts_hash: str
    locale: str
    browser: str
    ip: str | None
    #: Which process wrote the record (``host:pid`` by default); useful when
    #: several app servers share one log.
    writer: str
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Row) -> ConsentRecord:
        """Build a record from a stored row (no re-validation: rows are ours)."""
        return cls.model_construct(
            seq=row[0],
            time=parse_time(row[1]),
            consent_id=row[2],
            action=row[3],
            source=row[4],
            granted=_split(row[5]),
            denied=_split(row[6]),
            revision=row[7],
            texts_hash=row[8],
            locale=row[9],
            browser=row[10],
            ip=row[11],
            writer=row[12],
            prev_hash=row[13],
            hash=row[14],
        )

    def to_row(self) -> Row:
        return (
            self.seq,
            format_time(self.time),
            self.consent_id,
            self.action,
            self.source,
            ",".join(self.granted),
            ",".join(self.denied),
            self.revision,
            self.texts_hash,
            self.locale,
            self.browser,
            self.ip,
            self.writer,
            self.prev_hash,
            self.hash,
        )


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def canonical(row: Row) -> bytes:
    """The bytes that are hashed for a row: every field but ``hash``, in order.

    Fields are joined with U+001F; none may contain a control character and
    category keys contain no comma, so the encoding is unambiguous.
    """
    return _SEP.join(
        (
            _VERSION,
            str(row[0]),
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            str(row[7]),
            row[8],
            row[9],
            row[10],
            row[11] or "",
            row[12],
            row[13],
        )
    ).encode()


def seal(entries: Iterable[LogEntry], tail_seq: int, tail_hash: str, writer: str) -> list[Row]:
    """Chain ``entries`` after the record ``(tail_seq, tail_hash)``.

    Called by a store while it holds the log's write lock, with the tail read
    inside the same transaction.
    """
    if not _WRITER.match(writer):
        raise ValueError(f"invalid writer id {writer!r}")
    rows: list[Row] = []
    seq, prev = tail_seq, tail_hash
    sha256 = hashlib.sha256
    for e in entries:
        seq += 1
        time, granted, denied = format_time(e.time), ",".join(e.granted), ",".join(e.denied)
        digest = sha256(
            _SEP.join(
                (
                    _VERSION,
                    str(seq),
                    time,
                    e.consent_id,
                    e.action,
                    e.source,
                    granted,
                    denied,
                    str(e.revision),
                    e.texts_hash,
                    e.locale,
                    e.browser,
                    e.ip or "",
                    writer,
                    prev,
                )
            ).encode()
        ).hexdigest()
        rows.append(
            (
                seq,
                time,
                e.consent_id,
                e.action,
                e.source,
                granted,
                denied,
                e.revision,
                e.texts_hash,
                e.locale,
                e.browser,
                e.ip,
                writer,
                prev,
                digest,
            )
        )
        prev = digest
    return rows


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where and why the chain does not hold."""

    seq: int
    consent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :meth:`LogStore.verify`.

    ``start_seq``/``start_hash`` is the anchor the chain was checked from: the
    genesis, or the checkpoint left by the last purge. ``head_seq``/``head_hash``
    is the last record checked; writing it down somewhere outside the database
    lets a later verification prove that nothing was rewritten since.
    """

    ok: bool
    records: int
    start_seq: int
    start_hash: str
    head_seq: int
    head_hash: str
    broken: ChainBreak | None = None


class ChainVerifier:
    """Streams rows through the chain check, in ``seq`` order, constant memory."""

    __slots__ = ("broken", "head_hash", "head_seq", "records", "start_hash", "start_seq")

    def __init__(self, start_seq: int = 0, start_hash: str = GENESIS) -> None:
        self.start_seq = self.head_seq = start_seq
        self.start_hash = self.head_hash = start_hash
        self.records = 0
        self.broken: ChainBreak | None = None

    def feed(self, rows: Iterable[Row]) -> bool:
        """Check ``rows``; returns ``False`` (and sets ``broken``) at the first bad one."""
        if self.broken is not None:
            return False
        sha256 = hashlib.sha256
        seq, prev, n = self.head_seq, self.head_hash, 0
        # The loop is the hot path of `consent audit verify`: locals only, and the
        # canonical form is built inline rather than through canonical().
        for row in rows:
            seq += 1
            if row[0] != seq:
                reason = "a record is missing before this one" if row[0] > seq else "out of order"
                self._break(row, f"expected seq {seq}, found {row[0]}: {reason}", n, seq, prev)
                return False
            if row[13] != prev:
                why = "prev_hash does not match the hash of the record before"
                self._break(row, why, n, seq, prev)
                return False
            digest = sha256(
                _SEP.join(
                    (
                        _VERSION,
                        str(seq),
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[5],
                        row[6],
                        str(row[7]),
                        row[8],
                        row[9],
                        row[10],
                        row[11] or "",
                        row[12],
                        prev,
                    )
                ).encode()
            ).hexdigest()
            if digest != row[14]:
                why = "hash does not match the record's content (altered)"
                self._break(row, why, n, seq, prev)
                return False
            prev = digest
            n += 1
        self.head_seq, self.head_hash = seq, prev
        self.records += n
        return True

    def _break(self, row: Row, reason: str, n: int, seq: int, prev: str) -> None:
        # head_* stays on the last record that verified
        self.records += n
        self.head_seq, self.head_hash = seq - 1, prev
        self.broken = ChainBreak(seq=row[0], consent_id=str(row[2]), reason=reason)

    def result(self) -> VerifyResult:
        return VerifyResult(
            ok=self.broken is None,
            records=self.records,
            start_seq=self.start_seq,
            start_hash=self.start_hash,
            head_seq=self.head_seq,
            head_hash=self.head_hash,
            broken=self.broken,
        )
