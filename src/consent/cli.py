"""The ``consent`` command line.

``consent audit ...`` (verify, export, show, stats, purge) is defined in
:mod:`consent.audit.cli`; this module wires the sub-commands together and turns
every expected error into one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import tomllib
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ConfigError, ConsentError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _keygen(args: argparse.Namespace) -> int:
    if not 16 <= args.bytes <= 1024:
        print("consent keygen: --bytes must be between 16 and 1024", file=sys.stderr)
        return 2
    print(secrets.token_urlsafe(args.bytes))
    return 0


# -- check-config ------------------------------------------------------------------------
# Pydantic reports a problem at a location such as ``categories[1].cookies[0].name``;
# a site owner wants the line of the TOML file. _TomlLines maps every table, key
# and array element of the text to the line it starts on, closely enough for that.

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(raw: str) -> list[str]:
    """``a."b.c".d`` → ``["a", "b.c", "d"]``."""
    parts: list[str] = []
    buf = ""
    quote = ""
    for ch in raw.strip():
        if quote:
            if ch == quote:
                quote = ""
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


def _path(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


class _TomlLines:
    """Line numbers (1-based) of the tables, keys and array elements of a TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        self.text = text
        self._aot: dict[str, int] = {}  # array-of-tables path -> index of its last table
        self._table = ""
        # The container stack while a value spans lines: (kind, path, next index, expecting).
        self._stack: list[list[Any]] = []
        self._ml_string = ""
        for number, line in enumerate(text.splitlines(), start=1):
            self._line(number, line)

    def _resolve(self, parts: list[str]) -> str:
        out = ""
        for part in parts:
            out = _path(out, part)
            if out in self._aot:
                out = f"{out}[{self._aot[out]}]"
        return out

    def _record(self, path: str, number: int) -> None:
        self.lines.setdefault(path, number)

    def _line(self, number: int, line: str) -> None:
        if self._ml_string:
            if self._ml_string in line:
                self._ml_string = ""
            return
        if self._stack:
            self._scan(line, 0, number)
            return
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        if stripped.startswith("[["):
            parts = _split_key(stripped[2 : stripped.find("]]")])
            parent = self._resolve(parts[:-1])
            path = _path(parent, parts[-1])
            self._aot[path] = self._aot.get(path, -1) + 1
            # Tables nested in an earlier element are not this element's.
            for k in [k for k in self._aot if k.startswith(path + "[")]:
                del self._aot[k]
            self._table = f"{path}[{self._aot[path]}]"
            self._record(self._table, number)
            return
        if stripped.startswith("["):
            self._table = self._resolve(_split_key(stripped[1 : stripped.find("]")]))
            self._record(self._table, number)
            return
        eq = self._find_eq(stripped)
        if eq < 0:
            return
        key = self._resolve_key(self._table, stripped[:eq], number)
        self._value(stripped, eq + 1, key, number)

    def _resolve_key(self, base: str, raw: str, number: int) -> str:
        path = base
        for part in _split_key(raw):
            path = _path(path, part)
            self._record(path, number)
        return path

    @staticmethod
    def _find_eq(s: str) -> int:
        quote = ""
        for i, ch in enumerate(s):
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "=":
                return i
        return -1

    def _value(self, s: str, i: int, path: str, number: int) -> None:
        while i < len(s) and s[i] in " \t":
            i += 1
        for q in ('"""', "'''"):
            if s.startswith(q, i) and s.find(q, i + 3) < 0:
                self._ml_string = q
                return
        if i < len(s) and s[i] in "[{":
            self._stack.append(["array" if s[i] == "[" else "table", path, 0, True])
            self._scan(s, i + 1, number)

    def _scan(self, s: str, i: int, number: int) -> None:
        while i < len(s) and self._stack:
            ch = s[i]
            top = self._stack[-1]
            if ch in " \t\r":
                i += 1
            elif ch == "#":
                return
            elif ch in "\"'":
                end = s.find(ch, i + 1)
                while ch == '"' and end > 0 and s[end - 1] == "\\":
                    end = s.find(ch, end + 1)
                i = len(s) if end < 0 else end + 1
                if top[0] == "array" and top[3]:
                    self._element(top, number)
            elif ch in "]}":
                self._stack.pop()
                i += 1
            elif ch == ",":
                top[3] = True
                i += 1
            elif top[0] == "table" and top[3]:
                eq = self._find_eq(s[i:])
                if eq < 0:
                    return
                key = self._resolve_key(top[1], s[i : i + eq], number)
                top[3] = False
                i += eq + 1
                while i < len(s) and s[i] in " \t":
                    i += 1
                if i < len(s) and s[i] in "[{":
                    self._stack.append(["array" if s[i] == "[" else "table", key, 0, True])
                    i += 1
            elif top[0] == "array" and top[3]:
                path = self._element(top, number)
                if ch in "[{":
                    self._stack.append(["array" if ch == "[" else "table", path, 0, True])
                i += 1
            else:
                i += 1

    def _element(self, top: list[Any], number: int) -> str:
        path = f"{top[1]}[{top[2]}]"
        top[2] += 1
        top[3] = False
        self._record(path, number)
        return path

    def find(self, loc: str) -> int | None:
        """The line of ``loc`` or of its nearest enclosing key that is in the file."""
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            cut = max(loc.rfind("."), loc.rfind("["))
            loc = loc[: max(cut, 0)]
        return None

    def find_quoted(self, message: str) -> int | None:
        """The last line holding the first quoted name of ``message`` as a TOML string."""
        m = re.search(r"'([^']+)'", message)
        if m is None:
            return None
        found = None
        for number, line in enumerate(self.text.splitlines(), start=1):
            if f'"{m.group(1)}"' in line or f"'{m.group(1)}'" in line:
                found = number
        return found


def _fields(loc: str) -> list[str]:
    """The setting names valid where ``loc`` points (for "did you mean")."""
    from typing import get_args

    from pydantic import BaseModel

    from .config import ConsentConfig

    model: type[BaseModel] = ConsentConfig
    for part in re.sub(r"\[\d+\]", "", loc).split(".")[:-1]:
        field = model.model_fields.get(part)
        if field is None:
            return []
        todo: list[Any] = [field.annotation]
        nxt = None
        while todo:
            t = todo.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                nxt = t
                break
            todo.extend(get_args(t))
        if nxt is None:
            return []
        model = nxt
    return list(model.model_fields)


def _fix_unknown(loc: str, msg: str) -> str:
    import difflib

    name = re.split(r"[.\[]", loc)[-1] if loc else ""
    close = difflib.get_close_matches(name, _fields(loc), n=1, cutoff=0.75)
    if close:
        return f"unknown setting; did you mean {close[0]!r}?"
    return msg


def _explain(loc: str, msg: str) -> tuple[str, str]:
    """A sharper location and a fix for some of pydantic's messages."""
    if msg.startswith("unknown setting"):
        return loc, _fix_unknown(loc, msg)
    if msg == "this setting is required" and loc == "categories":
        return loc, msg + "; add at least one [[categories]] table"
    if loc == "secret_key" and msg.startswith("no secret key"):
        return loc, msg + "; or pass --no-secret to check the rest of the file"
    m = re.match(rf"{re.escape(loc)}\.(\w+) ", msg) if loc else None
    # "theme.color_text = 'red;' may not contain ..." and "theme.color_text #777 on
    # theme.color_background ..." name the key itself.
    if m:
        return f"{loc}.{m.group(1)}", msg
    return loc, msg


def _lints(config: Any) -> list[tuple[str, str]]:
    """Things that are valid but weaken the site's compliance (warnings, exit 0)."""
    out: list[tuple[str, str]] = []
    for i, cat in enumerate(config.categories):
        if cat.required and not cat.justification:
            out.append(
                (
                    f"categories[{i}].justification",
                    f"strictly necessary category {cat.key!r} has no 'justification'; "
                    "say why each of its cookies is needed (it is shown in the cookie policy)",
                )
            )
        for j, rule in enumerate(cat.cookies):
            missing = [f for f in ("provider", "purpose") if not getattr(rule, f)]
            if missing:
                out.append(
                    (
                        f"categories[{i}].cookies[{j}]",
                        f"cookie {rule.name!r} has no {' or '.join(missing)}; visitors must be "
                        "told who sets it and why (cookie declaration)",
                    )
                )
            if cat.required and rule.max_age is not None and rule.max_age > 395 * 86_400:
                out.append(
                    (
                        f"categories[{i}].cookies[{j}].max_age",
                        f"strictly necessary cookie {rule.name!r} lives over 13 months; "
                        "keep it no longer than its purpose needs",
                    )
                )
    return out


def _check_config(args: argparse.Namespace) -> int:
    from .config import ConsentConfig
    from .log import redact_url

    name = args.file
    try:
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{name}: cannot read the file: {exc}", file=sys.stderr)
        return 1
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        if m:
            where = f"{name}:{m.group(1)}:{m.group(2)}"
        elif msg.endswith("(at end of document)"):
            where = f"{name}:{text.count(chr(10)) + 1}"
            msg = msg.removesuffix("(at end of document)").rstrip() + " at the end of the file"
        else:
            where = name
        print(
            f"{where}: TOML syntax error: {_TOML_POS.sub('', msg)}; fix the TOML there",
            file=sys.stderr,
        )
        return 1
    if args.no_secret:
        data["secret_key"] = "x" * 32
    lines = _TomlLines(text)
    try:
        config = ConsentConfig.from_mapping(data, source=name, allow_placeholder_secret=False)
    except ConfigError as exc:
        found: list[tuple[int, str]] = []
        for loc, msg in exc.problems:
            loc, msg = _explain(loc, msg)
            # A setting that is not in the file (cookie_name: 'consent' listed in a
            # category) is pointed at by the name its message quotes.
            line = (lines.find(loc) if loc else None) or lines.find_quoted(msg)
            where = f"{name}:{line or 1}"
            found.append((line or 1, f"{where}: {loc}: {msg}" if loc else f"{where}: {msg}"))
        # In file order, as a compiler lists errors.
        for _, out in sorted(found, key=lambda f: f[0]):
            print(out, file=sys.stderr)
        print(f"{name}: {len(found)} problem(s) found", file=sys.stderr)
        return 1
    warnings = _lints(config)
    for loc, msg in warnings:
        print(f"{name}:{lines.find(loc) or 1}: {loc}: warning: {msg}", file=sys.stderr)
    required = [c.key for c in config.categories if c.required]
    optional = [c.key for c in config.categories if not c.required]
    print(
        f"{name}: OK: {len(config.categories)} categories "
        f"(necessary: {', '.join(required) or 'none'}; optional: {', '.join(optional) or 'none'}), "
        f"{len(config.rules())} cookie rules, revision {config.revision}, "
        f"log {redact_url(config.log)}" + (f", {len(warnings)} warning(s)" if warnings else "")
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
