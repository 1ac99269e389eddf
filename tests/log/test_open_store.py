"""open_store(): which URL gives which store, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent.log import LogURLError, MemoryStore, PostgresStore, SQLiteStore, open_store


def test_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_memory_cannot_be_opened_read_only() -> None:
    # Another process (the audit CLI) would read an empty log and report it "OK".
    with pytest.raises(LogURLError, match="only inside"):
        open_store("memory://", create=False)


def test_sqlite_relative_and_absolute() -> None:
    relative = open_store("sqlite:///data/consent.db")
    absolute = open_store("sqlite:////var/lib/consent.db")
    assert isinstance(relative, SQLiteStore) and relative.path == Path("data/consent.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == Path("/var/lib/consent.db")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_schemes(scheme: str) -> None:
    store = open_store(f"{scheme}://u:secret@db.example/consent?schema=audit&sslmode=require")
    assert isinstance(store, PostgresStore)
    assert store.schema == "audit"
    assert "secret" not in store.url and "secret" not in repr(store)


@pytest.mark.parametrize(
    "url",
    [
        "consent.db",
        "mysql://localhost/db",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite://host/consent.db",
        "sqlite:///consent.db?timeout=soon",
        "sqlite:///consent.db?mode=ro",
        "postgresql://localhost/db?schema=Robert');DROP",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(LogURLError):
        open_store(url)
