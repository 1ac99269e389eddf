"""LogEntry validation, the canonical form, the chain check and the privacy helpers."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.log import (
    GENESIS,
    ChainVerifier,
    ConsentRecord,
    browser_family,
    canonical,
    seal,
    truncate_ip,
)

from ._helpers import make_entry


def test_entry_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        make_entry(time=datetime(2024, 5, 1, 12, 0))


def test_entry_rejects_raw_ip() -> None:
    with pytest.raises(ValueError, match="truncated"):
        make_entry(ip="203.0.113.77")


def test_entry_accepts_truncated_ip() -> None:
    assert make_entry(ip="203.0.113.0").ip == "203.0.113.0"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", "delete"),
        ("source", "email"),
        ("granted", ("necessary", "analytics")),  # not sorted
        ("granted", ("a,b",)),  # a comma would make the canonical form ambiguous
        ("denied", ("analytics",)),  # also granted
        ("consent_id", "id\x1fwith-separator"),
        ("locale", "en\nUS"),
        ("browser", "Mozilla/5.0 (X11; Linux x86_64)"),  # a full user agent
        ("texts_hash", "not-a-hash"),
        ("revision", -1),
    ],
)
def test_entry_rejects_invalid_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        make_entry(**{field: value})


def test_entry_is_immutable() -> None:
    entry = make_entry()
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.consent_id = "other"  # type: ignore[misc]


def test_seal_hash_is_sha256_of_canonical_form() -> None:
    (row,) = seal([make_entry()], 0, GENESIS, "host:1")
    assert row[0] == 1
    assert row[13] == GENESIS
    assert row[14] == hashlib.sha256(canonical(row)).hexdigest()


def test_canonical_form_is_documented_layout() -> None:
    (row,) = seal([make_entry(ip="203.0.113.0")], 41, "f" * 64, "web-1:7")
    assert canonical(row).decode().split("\x1f") == [
        "consent-log/1",
        "42",
        "2024-05-01T12:00:00.000000Z",
        "visitor-000000",
        "save",
        "banner",
        "analytics,necessary",
        "marketing",
        "1",
        "ab" * 32,
        "en",
        "firefox",
        "203.0.113.0",
        "web-1:7",
        "f" * 64,
    ]


def test_record_row_round_trip() -> None:
    (row,) = seal([make_entry(ip="2001:db8:1::")], 0, GENESIS, "host:1")
    record = ConsentRecord.from_row(row)
    assert record.to_row() == row
    assert record.granted == ("analytics", "necessary")


def test_verifier_accepts_sealed_chain() -> None:
    rows = seal([make_entry(i) for i in range(50)], 0, GENESIS, "host:1")
    v = ChainVerifier()
    assert v.feed(rows[:20]) and v.feed(rows[20:])
    result = v.result()
    assert result.ok and result.records == 50
    assert (result.head_seq, result.head_hash) == (50, rows[-1][14])


@pytest.mark.parametrize("index", [0, 7, 49])
@pytest.mark.parametrize("column", [1, 2, 3, 5, 6, 7, 9, 10, 11, 12])
def test_verifier_names_altered_record(index: int, column: int) -> None:
    rows = seal([make_entry(i) for i in range(50)], 0, GENESIS, "host:1")
    bad = list(rows[index])
    bad[column] = "x" if column != 7 else 2
    rows[index] = tuple(bad)  # type: ignore[call-overload]
    v = ChainVerifier()
    assert not v.feed(rows)
    result = v.result()
    assert not result.ok
    assert result.broken is not None and result.broken.seq == index + 1
    assert "altered" in result.broken.reason
    assert result.records == index


def test_verifier_names_record_after_a_gap() -> None:
    rows = seal([make_entry(i) for i in range(10)], 0, GENESIS, "host:1")
    del rows[4]
    v = ChainVerifier()
    assert not v.feed(rows)
    assert v.broken is not None and v.broken.seq == 6
    assert "missing" in v.broken.reason


def test_verifier_detects_rehashed_record_at_the_next_one() -> None:
    # Someone who edits record 3 and recomputes its hash breaks the link to record 4.
    rows = seal([make_entry(i) for i in range(10)], 0, GENESIS, "host:1")
    forged = list(rows[2])
    forged[5] = "analytics,marketing,necessary"
    forged[6] = ""
    forged[14] = hashlib.sha256(canonical(tuple(forged))).hexdigest()  # type: ignore[arg-type]
    rows[2] = tuple(forged)  # type: ignore[call-overload]
    v = ChainVerifier()
    assert not v.feed(rows)
    assert v.broken is not None and v.broken.seq == 4
    assert "prev_hash" in v.broken.reason


def test_verifier_from_checkpoint() -> None:
    rows = seal([make_entry(i) for i in range(10)], 0, GENESIS, "host:1")
    assert ChainVerifier(5, rows[4][14]).feed(rows[5:])
    assert not ChainVerifier(5, "0" * 64).feed(rows[5:])


@pytest.mark.parametrize(
    ("raw", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        (" 10.1.2.3 ", "10.1.2.0"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("[2001:db8:abcd:12::1]", "2001:db8:abcd::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("not an ip", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_truncate_ip(raw: str, truncated: str | None) -> None:
    assert truncate_ip(raw) == truncated


@given(st.ip_addresses())
def test_truncate_ip_keeps_only_the_network_part(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    out = truncate_ip(str(addr))
    assert out is not None
    kept = ipaddress.ip_address(out)
    if addr.version == 6 and addr.ipv4_mapped is None:  # type: ignore[union-attr]
        assert int(kept) & ((1 << 80) - 1) == 0
        assert int(kept) >> 80 == int(addr) >> 80
    else:
        v4 = addr.ipv4_mapped if addr.version == 6 else addr  # type: ignore[union-attr]
        assert int(kept) & 0xFF == 0
        assert int(kept) >> 8 == int(v4) >> 8  # type: ignore[arg-type]
    assert truncate_ip(out) == out  # idempotent, so LogEntry accepts it


@pytest.mark.parametrize(
    ("ua", "family"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            "chrome",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
            "edge",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "firefox"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4 Safari/605.1.15",
            "safari",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
            "chrome",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
            "opera",
        ),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "bot"),
        ("curl/8.5.0", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_browser_family(ua: str | None, family: str) -> None:
    assert browser_family(ua) == family
