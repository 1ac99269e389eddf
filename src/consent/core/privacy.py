"""What the consent log may keep of a visitor: a truncated IP, a coarse browser family.

Pure functions shared by the endpoint and the log (data minimisation, GDPR Art. 5(1)(c)).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["browser_family", "truncate_ip"]


def truncate_ip(ip: str | None) -> str | None:
    """Truncate an address for the log: IPv4 to its /24, IPv6 to its /48.

    ``"203.0.113.77"`` → ``"203.0.113.0"``, ``"2001:db8:abcd:12::1"`` →
    ``"2001:db8:abcd::"``. IPv4-mapped IPv6 addresses are treated as IPv4.
    Anything that is not an address gives ``None``.
    """
    if not ip:
        return None
    text = ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone id says nothing useful
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("bot", re.compile(r"bot\b|crawl|spider|slurp|headless", re.I)),
    ("edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("samsung", re.compile(r"SamsungBrowser/")),
    ("firefox", re.compile(r"\b(Firefox|FxiOS)/")),
    ("chrome", re.compile(r"\b(Chrome|CriOS|Chromium)/")),
    ("safari", re.compile(r"\bSafari/|\bAppleWebKit/.*\bMobile/")),
)


def browser_family(user_agent: str | None) -> str:
    """The coarse browser family of a ``User-Agent``, never the string itself.

    One of ``"chrome"``, ``"firefox"``, ``"safari"``, ``"edge"``, ``"opera"``,
    ``"samsung"``, ``"bot"`` or ``"other"``.
    """
    if not user_agent:
        return "other"
    for family, pattern in _FAMILIES:
        if pattern.search(user_agent):
            return family
    return "other"
