"""A slow, literal reading of RFC 6265 for the tests to check the production parser by.

Written from the RFC text, step by step, not from ``consent.core.cookies``:
section 5.1.1 (cookie-date), 5.2 (splitting the attributes), 5.2.1 (Expires),
5.2.2 (Max-Age) and 5.3 step 3 (which expiry-time the cookie gets).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

__all__ = ["cookie_attribute_list", "date_tokens", "oracle_is_expiry", "parse_cookie_date"]

# delimiter = %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E
DELIMITERS = frozenset(
    [chr(0x09)]
    + [chr(c) for c in range(0x20, 0x2F + 1)]
    + [chr(c) for c in range(0x3B, 0x40 + 1)]
    + [chr(c) for c in range(0x5B, 0x60 + 1)]
    + [chr(c) for c in range(0x7B, 0x7E + 1)]
)

# The grammar of 5.1.1, one rule each. The RFC writes "( non-digit *OCTET )" after
# the digits of day-of-month, year and time, which no "01" or "1970" token could
# match; erratum 4148 (and RFC 6265bis) make that part optional: "[ ... ]".
DIGIT = "[0-9]"
NON_DIGIT = "[^0-9]"
OCTET = "."
TIME_FIELD = f"({DIGIT}{DIGIT}?)"
TIME_RULE = re.compile(f"{TIME_FIELD}:{TIME_FIELD}:{TIME_FIELD}(?:{NON_DIGIT}{OCTET}*)?", re.DOTALL)
DAY_OF_MONTH_RULE = re.compile(f"({DIGIT}{DIGIT}?)(?:{NON_DIGIT}{OCTET}*)?", re.DOTALL)
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
# ABNF strings are case-insensitive, in ASCII only.
MONTH_RULE = re.compile(f"({'|'.join(MONTHS)}){OCTET}*", re.DOTALL | re.IGNORECASE | re.ASCII)
YEAR_RULE = re.compile(f"({DIGIT}{DIGIT}{DIGIT}?{DIGIT}?)(?:{NON_DIGIT}{OCTET}*)?", re.DOTALL)

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def date_tokens(cookie_date: str) -> list[str]:
    """Step 1: the date-tokens, the runs of non-delimiters."""
    tokens: list[str] = []
    current = ""
    for ch in cookie_date:
        if ch in DELIMITERS:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += ch
    if current:
        tokens.append(current)
    return tokens


def parse_cookie_date(cookie_date: str) -> datetime | None:
    """Section 5.1.1; ``None`` where the algorithm says "abort"."""
    found_time = found_day_of_month = found_month = found_year = False
    hour_value = minute_value = second_value = 0
    day_of_month_value = month_value = year_value = 0
    # Step 2: each token in turn; the first sub-step that takes it ends its turn.
    for token in date_tokens(cookie_date):
        match = TIME_RULE.fullmatch(token)
        if not found_time and match:
            found_time = True
            hour_value = int(match.group(1))
            minute_value = int(match.group(2))
            second_value = int(match.group(3))
            continue
        match = DAY_OF_MONTH_RULE.fullmatch(token)
        if not found_day_of_month and match:
            found_day_of_month = True
            day_of_month_value = int(match.group(1))
            continue
        match = MONTH_RULE.fullmatch(token)
        if not found_month and match:
            found_month = True
            month_value = MONTHS.index(match.group(1).lower()) + 1
            continue
        match = YEAR_RULE.fullmatch(token)
        if not found_year and match:
            found_year = True
            year_value = int(match.group(1))
            continue
    # Steps 3 and 4.
    if 70 <= year_value <= 99:
        year_value += 1900
    if 0 <= year_value <= 69:
        year_value += 2000
    # Step 5.
    if not (found_day_of_month and found_month and found_year and found_time):
        return None
    if day_of_month_value < 1 or day_of_month_value > 31:
        return None
    if year_value < 1601:
        return None
    if hour_value > 23 or minute_value > 59 or second_value > 59:
        return None
    # Step 6: "If the date does not exist, abort these steps."
    try:
        return datetime(
            year_value,
            month_value,
            day_of_month_value,
            hour_value,
            minute_value,
            second_value,
            tzinfo=UTC,
        )
    except ValueError:
        return None


def cookie_avs(unparsed_attributes: str) -> list[tuple[str, str]]:
    """Section 5.2, the loop over unparsed-attributes: ``(name, value)`` per cookie-av."""
    out: list[tuple[str, str]] = []
    while unparsed_attributes:
        # 1. Discard the leading ";".
        unparsed_attributes = unparsed_attributes[1:]
        # 2. Up to the next ";", or all that is left.
        if ";" in unparsed_attributes:
            cookie_av = unparsed_attributes[: unparsed_attributes.index(";")]
            unparsed_attributes = unparsed_attributes[unparsed_attributes.index(";") :]
        else:
            cookie_av = unparsed_attributes
            unparsed_attributes = ""
        # 3. Name and value around the first "=" (no "=": all name, empty value).
        if "=" in cookie_av:
            name = cookie_av[: cookie_av.index("=")]
            value = cookie_av[cookie_av.index("=") + 1 :]
        else:
            name, value = cookie_av, ""
        # 4. Leading and trailing WSP (SP / HTAB) removed.
        out.append((name.strip(" \t"), value.strip(" \t")))
    return out


def cookie_attribute_list(attributes: str, now: datetime) -> list[tuple[str, datetime]]:
    """The Expires and Max-Age entries 5.2.1 and 5.2.2 append, in order."""
    out: list[tuple[str, datetime]] = []
    for name, value in cookie_avs(";" + attributes):
        if name.lower() == "expires":
            expiry_time = parse_cookie_date(value)
            if expiry_time is None:
                continue  # "ignore the cookie-av"
            out.append(("Expires", expiry_time))
        elif name.lower() == "max-age":
            if value == "" or value[0] not in "-0123456789":
                continue
            if any(ch not in "0123456789" for ch in value[1:]):
                continue
            # "-" alone passes both checks but is no base-10 integer to convert;
            # browsers ignore it, and so does this reading.
            if value == "-":
                continue
            delta_seconds = Decimal(value)  # no digit limit, unlike int()
            if delta_seconds <= 0:
                out.append(("Max-Age", EARLIEST))
            else:
                try:
                    out.append(("Max-Age", now + timedelta(seconds=int(delta_seconds))))
                except OverflowError:
                    out.append(("Max-Age", LATEST))
    return out


def oracle_is_expiry(attributes: bytes, now: float | None = None) -> bool:
    """Whether these ``Set-Cookie`` attributes (all after the first ``;``) give the
    cookie an expiry-time before ``now`` (epoch seconds; default: the current time),
    following 5.3 step 3: the last Max-Age if any, else the last Expires, else none."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    attribute_list = cookie_attribute_list(attributes.decode("latin-1"), moment)
    max_ages = [expiry for name, expiry in attribute_list if name == "Max-Age"]
    expires = [expiry for name, expiry in attribute_list if name == "Expires"]
    if max_ages:
        expiry_time = max_ages[-1]
    elif expires:
        expiry_time = expires[-1]
    else:
        return False  # a session cookie: no expiry-time at all
    return expiry_time < moment
