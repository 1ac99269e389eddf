"""The ``consent`` command line.

``consent audit ...`` (verify, export, show, stats, purge) is defined in
:mod:`consent.audit.cli`; this module wires the sub-commands together and turns
every expected error into one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Sequence

from .errors import ConfigError, ConsentError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _keygen(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(args.bytes))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from .config import ConsentConfig

    try:
        config = ConsentConfig.from_toml(args.file, **({"secret_key": "x" * 32} if args.no_secret else {}))
    except ConfigError as exc:
        for loc, msg in exc.problems:
            print(f"{args.file}: {loc}: {msg}" if loc else f"{args.file}: {msg}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK ({len(config.categories)} categories, "
        f"{len(config.rules())} cookie rules, revision {config.revision})"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(host=args.host, port=args.port, db=args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent", description="asgi-consent: cookie consent, server-side, with proof."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("keygen", help="print a new random secret key")
    p.add_argument("--bytes", type=int, default=32, help="entropy in bytes (default 32)")
    p.set_defaults(handler=_keygen)

    p = sub.add_parser("check-config", help="check a consent.toml file and list every problem")
    p.add_argument("file")
    p.add_argument(
        "--no-secret",
        action="store_true",
        help="do not require a secret key in the file (it comes from CONSENT_SECRET_KEY)",
    )
    p.set_defaults(handler=_check_config)

    p = sub.add_parser("demo", help="run the demo site on http://127.0.0.1:8000")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--db", default="consent-demo.db", help="SQLite consent log of the demo")
    p.set_defaults(handler=_demo)

    try:
        from .audit.cli import add_parser as add_audit
    except ImportError:  # pragma: no cover - the audit package is part of the distribution
        pass
    else:
        add_audit(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except ConsentError as exc:
        print(f"consent: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
