"""Locale files, plural forms, durations and Accept-Language parsing (no Jinja here)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from importlib import resources

__all__ = [
    "RTL",
    "fmt",
    "format_duration",
    "load_shipped",
    "normalize_tag",
    "parse_accept_language",
    "plural",
]

#: Primary language subtags written right to left.
RTL = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "ks", "ku", "ps", "sd", "ug", "ur", "yi"})

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_TAG = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8})*")


def load_shipped() -> dict[str, dict[str, str]]:
    """Every ``locales/<code>.json`` shipped in the package."""
    out: dict[str, dict[str, str]] = {}
    for entry in (resources.files(__package__) / "locales").iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[entry.name.removesuffix(".json")] = {str(k): str(v) for k, v in data.items()}
    return out


def fmt(text: str, /, **values: str) -> str:
    """``{name}`` placeholders replaced; unknown ones and stray braces left alone.

    Texts come from translators and site owners, so ``str.format`` (which raises
    on a lone brace) is too strict here.
    """
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def placeholders(text: str) -> frozenset[str]:
    return frozenset(_PLACEHOLDER.findall(text))


# -- plural forms --------------------------------------------------------------------
# CLDR plural rules for whole numbers, enough for the durations on the policy page.
# A plural text holds its forms separated by "|", in the order the rule numbers them.
def _one(n: int) -> int:
    return 0 if n == 1 else 1


def _fr(n: int) -> int:
    return 0 if n in (0, 1) else 1


def _cs(n: int) -> int:  # one, few, other
    return 0 if n == 1 else 1 if 2 <= n <= 4 else 2


def _pl(n: int) -> int:  # one, few, many
    if n == 1:
        return 0
    return 1 if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else 2


def _hr(n: int) -> int:  # one, few, other
    if n % 10 == 1 and n % 100 != 11:
        return 0
    return 1 if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else 2


def _sl(n: int) -> int:  # one, two, few, other
    return {1: 0, 2: 1, 3: 2, 4: 2}.get(n % 100, 3)


def _lt(n: int) -> int:  # one, few, other
    if 11 <= n % 100 <= 19:
        return 2
    return 0 if n % 10 == 1 else 1 if n % 10 >= 2 else 2


def _lv(n: int) -> int:  # zero, one, other
    if n % 10 == 0 or 11 <= n % 100 <= 19:
        return 0
    return 1 if n % 10 == 1 else 2


def _ro(n: int) -> int:  # one, few, other
    if n == 1:
        return 0
    return 1 if n == 0 or 1 <= n % 100 <= 19 else 2


def _ga(n: int) -> int:  # one, two, few, many, other
    return 0 if n == 1 else 1 if n == 2 else 2 if 3 <= n <= 6 else 3 if 7 <= n <= 10 else 4


def _mt(n: int) -> int:  # one, two, few, many, other
    if n in (1, 2):
        return n - 1
    return 2 if n == 0 or 3 <= n % 100 <= 10 else 3 if 11 <= n % 100 <= 19 else 4


def _ar(n: int) -> int:  # zero, one, two, few, many, other
    if n <= 2:
        return n
    return 3 if 3 <= n % 100 <= 10 else 4 if 11 <= n % 100 <= 99 else 5


_PLURALS: dict[str, tuple[Callable[[int], int], int]] = {
    "fr": (_fr, 2),
    "cs": (_cs, 3),
    "sk": (_cs, 3),
    "pl": (_pl, 3),
    "hr": (_hr, 3),
    "sl": (_sl, 4),
    "lt": (_lt, 3),
    "lv": (_lv, 3),
    "ro": (_ro, 3),
    "ga": (_ga, 5),
    "mt": (_mt, 5),
    "ar": (_ar, 6),
}


def plural_forms(lang: str) -> int:
    """How many "|"-separated forms a plural text of ``lang`` holds."""
    return _PLURALS.get(lang.split("-")[0], (_one, 2))[1]


def plural(text: str, lang: str, n: int) -> str:
    rule = _PLURALS.get(lang.split("-")[0], (_one, 2))[0]
    forms = text.split("|")
    return fmt(forms[min(rule(n), len(forms) - 1)], n=str(n))


def format_duration(max_age: int | None, lang: str, texts: Mapping[str, str]) -> str:
    """A cookie lifetime as people say it: "2 years", "390 days", "30 minutes"."""
    if max_age is None:
        return texts["session"]
    year, day, hour = 365 * 86_400, 86_400, 3600
    # Years only when exact: "1 year" for 395 days would understate the lifetime.
    if max_age >= year and max_age % year == 0:
        return plural(texts["dur_years"], lang, max_age // year)
    for key, size in (("dur_days", day), ("dur_hours", hour), ("dur_minutes", 60)):
        if max_age >= size:
            return plural(texts[key], lang, round(max_age / size))
    return plural(texts["dur_seconds"], lang, max_age)


# -- Accept-Language -----------------------------------------------------------------
def normalize_tag(tag: str) -> str | None:
    """``"de_AT "`` → ``"de-at"``; ``None`` for anything that is not a language tag."""
    t = tag.strip().lower().replace("_", "-")
    return t if len(t) <= 35 and _TAG.fullmatch(t) else None


def parse_accept_language(header: str) -> Iterator[str]:
    """Language ranges of an Accept-Language header, best first (RFC 9110 §12.5.4).

    Tolerant: a bad entry is skipped, never raised on; ``q=0`` means "not
    acceptable"; equal weights keep the header's order. Only the first 64
    entries count, so a huge header costs little.
    """
    ranked: list[tuple[float, int, str]] = []
    for i, item in enumerate(header[:4096].split(",")[:64]):
        tag, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";") if params else ():
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if not 0 < q <= 1:
            continue
        t = tag.strip()
        if t == "*":
            ranked.append((-q, i, "*"))
            continue
        norm = normalize_tag(t)
        if norm is not None:
            ranked.append((-q, i, norm))
    ranked.sort()
    return (t for _, _, t in ranked)
