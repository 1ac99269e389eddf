"""``consent audit``: verify, export, show, stats and purge the consent log.

Every command reads the log named by ``--log URL`` (default: the
``CONSENT_LOG`` environment variable) and never creates one. Expected failures
are raised as :class:`~consent.errors.ConsentError`, which ``consent.cli.main``
prints as one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import IO, Any, TextIO

from ..errors import ConsentError
from ..log import COLUMNS, ConsentRecord, LogStore, Row, StatsCollector, open_store

__all__ = ["add_parser"]

_ENV = "CONSENT_LOG"


def add_parser(subparsers: Any) -> None:
    """Register ``audit`` and its sub-commands on the ``consent`` command line."""
    audit = subparsers.add_parser(
        "audit",
        help="verify, export and inspect the consent log",
        description=(
            "Verify, export and inspect the consent log. What each record holds and how "
            "the hash chain proves it is untouched: the documentation's 'The consent log: "
            "a guide for auditors' page (docs/auditors.md in the source). "
            "Each command's options: consent audit COMMAND --help."
        ),
    )
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    log = argparse.ArgumentParser(add_help=False)
    log.add_argument(
        "--log",
        metavar="URL",
        help=f"the consent log: sqlite:///…, postgresql://… (default ${_ENV})",
    )
    span = argparse.ArgumentParser(add_help=False)
    span.add_argument("--since", metavar="DATE", help="from this UTC date or time (inclusive)")
    span.add_argument("--until", metavar="DATE", help="up to this UTC date or time (exclusive)")

    p = sub.add_parser(
        "verify", parents=[log], help="recompute the hash chain; exit 1 at the first broken record"
    )
    p.set_defaults(handler=_run(_verify))

    p = sub.add_parser("export", parents=[log, span], help="export records as JSON lines or CSV")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=_run(_export))

    p = sub.add_parser("show", parents=[log], help="the full history of one consent id")
    p.add_argument("consent_id")
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="json includes the texts the visitor was shown (for a data-subject request)",
    )
    p.set_defaults(handler=_run(_show))

    p = sub.add_parser("stats", parents=[log, span], help="consent rate per category per day")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(handler=_run(_stats))

    p = sub.add_parser(
        "purge", parents=[log], help="delete records older than a date, keeping a checkpoint"
    )
    p.add_argument("--before", metavar="DATE", required=True, help="UTC date or time (exclusive)")
    p.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    p.set_defaults(handler=_run(_purge))


Command = Callable[[LogStore, argparse.Namespace], Coroutine[Any, Any, int]]


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        url = args.log or os.environ.get(_ENV)
        if not url:
            raise ConsentError(f"no consent log given: pass --log URL or set {_ENV}")

        # The pool logs each failed reconnection; here the one-line error says it all.
        logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
        logging.getLogger("psycopg.pool").propagate = False

        async def main() -> int:
            store = open_store(url, create=False)
            async with store:
                return await command(store, args)

        return asyncio.run(main())

    return handler


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConsentError(
            f"{option}: invalid date {value!r} (use YYYY-MM-DD or an ISO 8601 time)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- verify -----------------------------------------------------------------------------


async def _verify(store: LogStore, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    result = await store.verify()
    elapsed = time.perf_counter() - started
    anchor = (
        "from the genesis"
        if result.start_seq == 0
        else f"from the purge checkpoint at seq {result.start_seq}"
    )
    if result.broken is not None:
        b = result.broken
        print(f"FAILED: record seq {b.seq} (consent id {b.consent_id}): {b.reason}")
        print(f"{result.records} record(s) verified {anchor} before it; log {store.url}")
        return 1
    print(f"OK: {result.records} record(s) verified {anchor} in {elapsed:.1f}s; log {store.url}")
    print(f"head: seq {result.head_seq} hash {result.head_hash}")
    missing = await store.missing_texts()
    if missing:
        # Records stay verifiable, but what the visitor was shown cannot be proven.
        print(
            f"warning: {len(missing)} text version(s) referenced but not archived: "
            + ", ".join(h[:12] for h in missing[:5])
            + (" …" if len(missing) > 5 else ""),
            file=sys.stderr,
        )
    return 0


# --- export -----------------------------------------------------------------------------


class _Progress:
    """A counter on stderr, only for a person watching a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.count = 0
        self._next = 0.0

    def tick(self) -> None:
        self.count += 1
        if self.enabled and self.count % 1000 == 0 and time.monotonic() >= self._next:
            self._next = time.monotonic() + 0.5
            print(f"\rexported {self.count} records", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled:
            print(f"\rexported {self.count} records", file=sys.stderr, flush=True)


def _json_line(row: Row) -> str:
    obj: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
    obj["granted"] = row[5].split(",") if row[5] else []
    obj["denied"] = row[6].split(",") if row[6] else []
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


@contextlib.contextmanager
def _output(path: str | None, newline: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        out = open(path, "w", encoding="utf-8", newline=newline)  # noqa: SIM115
    except OSError as exc:
        raise ConsentError(f"cannot write {path}: {exc.strerror or exc}") from None
    with out:
        yield out


async def _export(store: LogStore, args: argparse.Namespace) -> int:
    since, until = _date(args.since, "--since"), _date(args.until, "--until")
    progress = _Progress()
    try:
        with _output(args.output, "" if args.format == "csv" else None) as out:
            write: Callable[[Row], Any]
            if args.format == "csv":
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
                write = writer.writerow
            else:

                def write(row: Row, _w: Callable[[str], Any] = out.write) -> None:
                    _w(_json_line(row))

            async for row in store.rows(since, until):
                write(row)
                progress.tick()
            out.flush()
    except BrokenPipeError:
        # `consent audit export | head`: the reader left; stop quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        raise ConsentError(f"cannot write {args.output or 'stdout'}: {exc}") from None
    progress.done()
    return 0


# --- show -------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], out: IO[str], right: set[int]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header), file=out)
    for r in rows:
        print(line(r), file=out)


async def _show(store: LogStore, args: argparse.Namespace) -> int:
    records = await store.history(args.consent_id)
    if not records:
        raise ConsentError(f"no records for consent id {args.consent_id!r} in {store.url}")
    if args.format == "json":
        texts: dict[str, Any] = {}
        for h in dict.fromkeys(r.texts_hash for r in records):
            raw = await store.get_texts(h)
            texts[h] = _maybe_json(raw)
        doc = {
            "consent_id": args.consent_id,
            "records": [_record_json(r) for r in records],
            "texts": texts,
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    print(f"consent id {args.consent_id}: {len(records)} record(s)")
    header = ["seq", "time (UTC)", "action", "source", "granted", "denied", "rev", "texts"]
    header += ["locale", "browser", "ip"]
    rows = [
        [
            str(r.seq),
            r.time.strftime("%Y-%m-%d %H:%M:%S"),
            r.action,
            r.source,
            ",".join(r.granted) or "-",
            ",".join(r.denied) or "-",
            str(r.revision),
            r.texts_hash[:12],
            r.locale or "-",
            r.browser,
            r.ip or "-",
        ]
        for r in records
    ]
    _table(header, rows, sys.stdout, right={0, 6})
    return 0


def _maybe_json(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _record_json(record: ConsentRecord) -> dict[str, Any]:
    row = record.to_row()
    obj: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
    obj["granted"], obj["denied"] = list(record.granted), list(record.denied)
    return obj


# --- stats ------------------------------------------------------------------------------


async def _stats(store: LogStore, args: argparse.Namespace) -> int:
    since, until = _date(args.since, "--since"), _date(args.until, "--until")
    collector = StatsCollector()
    batch: list[Row] = []
    async for row in store.rows(since, until):
        batch.append(row)
        if len(batch) >= 10_000:
            collector.add(batch)
            batch.clear()
    collector.add(batch)
    days = collector.result()
    categories = sorted(collector.categories)
    header = ["day", "decisions", *categories]
    rows = []
    for d in days:
        rates = [d.rate(c) for c in categories]
        if args.format == "csv":
            cells = ["" if r is None else f"{r:.4f}" for r in rates]
        else:
            cells = ["-" if r is None else f"{r:.1%}" for r in rates]
        rows.append([d.day, str(d.decisions), *cells])
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return 0
    if not days:
        print("no records in this period")
        return 0
    print("share of decisions granting each category, per UTC day")
    _table(header, rows, sys.stdout, right=set(range(1, len(header))))
    return 0


# --- purge ------------------------------------------------------------------------------


async def _purge(store: LogStore, args: argparse.Namespace) -> int:
    before = _date(args.before, "--before")
    assert before is not None
    if before > datetime.now(UTC):
        raise ConsentError(f"--before {args.before} is in the future; refusing to purge")
    if args.dry_run:
        # Same rule as purge(): the prefix of the chain that is older than --before.
        limit = before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        n = 0
        async with contextlib.aclosing(store.rows()) as rows:
            async for row in rows:
                if row[1] >= limit:
                    break
                n += 1
        print(f"dry run: {n} record(s) older than {args.before} would be purged")
        return 0
    result = await store.purge(before)
    if result.checkpoint is None:
        print(f"nothing to purge: no record older than {args.before}")
        return 0
    cp = result.checkpoint
    print(f"purged {result.removed} record(s) older than {args.before} (up to seq {cp.seq})")
    print(f"checkpoint: seq {cp.seq} hash {cp.hash}")
    return 0
