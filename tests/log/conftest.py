from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from consent.log import LogStore, open_store

from ._helpers import PG_ENV, drop_schema, unique_schema, with_params


@pytest.fixture
def anyio_backend() -> str:
    # The stores are asyncio-only (a writer thread answering through the loop,
    # and psycopg's asyncio pool), so these tests do not run under trio.
    return "asyncio"


@pytest.fixture
def pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(
            f"{PG_ENV} is not set; PostgreSQL tests need a real server, "
            "e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    return url


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A PostgreSQL log URL in a schema of its own, dropped afterwards."""
    schema = unique_schema()
    yield with_params(pg_base_url, schema=schema)
    drop_schema(pg_base_url, schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'consent.db'}"  # tmp_path is absolute: sqlite:////…


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_url")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable_url(request: pytest.FixtureRequest) -> str:
    """The stores that survive their process."""
    url: str = request.getfixturevalue(f"{'pg' if request.param == 'postgres' else 'sqlite'}_url")
    return url


@pytest.fixture
async def store(log_url: str) -> AsyncIterator[LogStore]:
    s = open_store(log_url)
    await s.open()
    yield s
    await s.close()
