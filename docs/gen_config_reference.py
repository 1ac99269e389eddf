"""Write docs/reference/configuration.md from the pydantic models in consent.config.

    .venv/bin/python docs/gen_config_reference.py          # rewrite the page
    .venv/bin/python docs/gen_config_reference.py --check  # exit 1 if it is stale

Every setting, its type and its default come from the models themselves; the
descriptions come from the ``#:`` comments above each field in config.py (the
Sphinx convention), or from NOTES below for fields that have none. tests/test_docs.py
fails when the page is out of date, so the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

from consent import config as config_module
from consent.config import Category, ConsentConfig, CookieRule, Theme

OUT = Path(__file__).resolve().parent / "reference" / "configuration.md"

#: Descriptions for fields without a ``#:`` comment in config.py.
NOTES: dict[tuple[str, str], str] = {
    ("ConsentConfig", "categories"): "The consent categories, in the order the banner shows "
    "them. At least one. See [Categories](#categories).",
    ("ConsentConfig", "log_ip"): "Keep a truncated IP (IPv4 /24, IPv6 /48) in each log record.",
    ("ConsentConfig", "cookie_name"): "Name of the consent cookie that stores the choice.",
    ("ConsentConfig", "cookie_domain"): "`Domain` attribute of the consent cookie, to share "
    "one choice across sub-domains (e.g. `example.com`).",
    ("ConsentConfig", "prefix"): "Path of the consent endpoint (`POST` a choice, `GET` the "
    "state, `/policy`, `/banner`, `/static/…`). Honours `root_path`.",
    ("ConsentConfig", "default_locale"): "Locale used when the browser's `Accept-Language` "
    "matches none of `locales`.",
    ("ConsentConfig", "theme"): "How the banner looks. See [Theme](#theme).",
    ("Category", "key"): "Identifier of the category: a lowercase slug such as `analytics`. "
    "Sent by the banner form and stored in the consent cookie and the log.",
    ("Category", "required"): "Strictly necessary: always allowed, shown checked and disabled. "
    "A tracking key (`analytics`, `marketing`…) needs a `justification` to be required.",
    ("Category", "cookies"): 'The cookies of this category: names (`"_ga"`) or tables '
    "(see [Cookie rules](#cookie-rules)).",
    ("Category", "legal_basis"): "`consent` for every optional category; `exempt` or "
    "`legitimate_interest` only on required ones.",
    ("CookieRule", "name"): "Cookie name; a glob when it contains `*`, `?` or `[` (`_ga_*`), "
    'a regular expression with `match = "regex"`.',
    ("CookieRule", "match"): "How `name` is matched: `auto` (glob if it has `*?[`, else "
    "exact), `exact`, `glob` or `regex`.",
    ("CookieRule", "category"): "The category key; only for rules in the top-level "
    "`[[cookies]]` list (rules inside a category belong to it).",
    ("CookieRule", "domain"): "`Domain` the cookie was set with; needed to delete it.",
    ("CookieRule", "path"): "`Path` the cookie was set with; needed to delete it.",
    ("CookieRule", "provider"): "Who sets the cookie (cookie policy).",
    ("CookieRule", "purpose"): "What the cookie is for (cookie policy).",
    ("CookieRule", "third_party"): "Set by or shared with a third party (cookie policy, "
    "and listed on the banner's first layer).",
    ("CookieRule", "storage"): "Kind of storage, for the cookie policy.",
    ("Category", "description"): "What the category is for, shown under its title on the "
    "banner's second layer and in the cookie policy; per locale or one string. Shipped "
    "defaults exist for common keys.",
    ("Theme", "layout"): "`bar` across the page, `box` in a corner, or a centred `modal`.",
    ("Theme", "position"): "Where a `bar` or `box` sits.",
    ("Theme", "color_scheme"): "`auto` follows the visitor's light/dark preference; "
    "`light` or `dark` forces one set of colours.",
    ("Theme", "radius"): "Corner radius of the panel and buttons (CSS length).",
    ("Theme", "font_family"): "CSS `font-family` of the banner.",
    ("Theme", "font_size"): "Base CSS `font-size` of the banner.",
}
SECTIONS: list[tuple[type[BaseModel], str, str]] = [
    (
        ConsentConfig,
        "Top-level settings",
        "Keys at the top of `consent.toml` (or arguments of `ConsentConfig(...)`).",
    ),
    (
        Category,
        "Categories",
        "One `[[categories]]` table per consent category (purpose).",
    ),
    (
        CookieRule,
        "Cookie rules",
        "One `[[categories.cookies]]` table per cookie, right after its category, or an "
        "inline table in the category's `cookies = [...]` list. A rule in the top-level "
        "`[[cookies]]` list names its `category`.",
    ),
    (
        Theme,
        "Theme",
        "The `[theme]` table. Every colour is any CSS colour; `dark_*` colours apply when "
        'the visitor prefers a dark scheme (with `color_scheme = "auto"`).',
    ),
]


def field_comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment lines right above each field of ``cls`` in its source."""
    lines, _ = inspect.getsourcelines(cls)
    source = "".join(lines)
    tree = ast.parse(source)
    out: dict[str, str] = {}
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            comment: list[str] = []
            i = node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#:"):
                comment.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            if comment:
                out[node.target.id] = " ".join(comment)
    return out


def toml_type(annotation: Any, many: bool = False) -> str:
    """The TOML type of ``annotation`` in words (plural when ``many``)."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    s = "s" if many else ""
    if annotation is SecretStr or annotation is str:
        return f"string{s}"
    if annotation is bool:
        return f"boolean{s}"
    if annotation is int:
        return f"integer{s}"
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"table{s}"
    if getattr(annotation, "__name__", "") == "date":
        return f"date{s} (`YYYY-MM-DD`)"
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{render(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        parts = [toml_type(a, many) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"array{s} of {toml_type(args[0], many=True)}"
    if origin is dict:
        return f"table{s} of {toml_type(args[1], many=True)}"
    if hasattr(annotation, "__metadata__"):  # Annotated[...]
        return toml_type(args[0], many)
    return str(annotation)  # pragma: no cover - a new kind of type shows up plainly


def render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    if isinstance(value, int) and value >= 86_400 and value % 86_400 == 0:
        return f"{value} ({value // 86_400} days)"
    return str(value)


def default_of(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return "**required**"
    if name == "secret_key" and model is ConsentConfig:
        return "`$CONSENT_SECRET_KEY`"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "see below"
    else:
        value = field.default
    if value is None or value is PydanticUndefined:
        return "none"
    return f"`{render(value)}`"


def describe(model: type[BaseModel], name: str, comments: dict[str, str]) -> str:
    text = comments.get(name) or NOTES.get((model.__name__, name), "")
    if not text and model is Theme and "color_" in name:
        dark, _, what = name.partition("color_")
        text = f"{'Dark-scheme c' if dark else 'C'}olour: {what.replace('_', ' ')}."
    # config.py's comments use reStructuredText literals; this page is Markdown.
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


def table(model: type[BaseModel]) -> list[str]:
    comments = field_comments(model)
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        text = describe(model, name, comments)
        kind = toml_type(field.annotation)
        if name == "secret_key" and model is ConsentConfig:
            kind = "string or array of strings"
        rows.append(f"| `{name}` | {kind} | {default_of(model, name)} | {text} |")
    return rows


def generate() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by docs/gen_config_reference.py from consent/config.py: do not edit. -->",
        "",
        "Every key of `consent.toml`, generated from the pydantic models, so it always "
        "matches the installed version. Check a file with `consent check-config FILE`: it "
        "lists every problem with its line and the fix. The "
        "[site-owner guide](../site-owners.md) explains how the pieces fit together.",
        "",
    ]
    for model, title, intro in SECTIONS:
        lines += [f"## {title}", "", intro, "", *table(model), ""]
    lines += [
        "## Validation rules",
        "",
        "Besides each key's type, the whole configuration is checked when it is loaded "
        "(these rules come from `ConsentConfig` and `Category`):",
        "",
        "- each category `key` is unique, and a cookie belongs to exactly one category "
        "(also when a glob or regex of another category matches it);",
        '- an optional category has `legal_basis = "consent"`;',
        "- a tracking category ("
        + ", ".join(f"`{k}`" for k in sorted(config_module.TRACKING_KEYS))
        + ") can be `required` only with a `justification`;",
        "- `consent_mode` names Google Consent Mode v2 types only: "
        + ", ".join(f"`{t}`" for t in sorted(config_module.CONSENT_MODE_TYPES))
        + ";",
        "- each secret key has at least 16 characters, and there is at least one "
        "(`consent keygen` prints one);",
        "- theme values cannot contain `;`, `{`, `}`, `<`, `>` or `\\`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = generate()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
