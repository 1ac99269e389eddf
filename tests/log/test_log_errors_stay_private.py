"""A log outage tells the visitor nothing about the server; the details go to the log.

The 503 body is generic on both shells; the ``consent`` logger gets the reason,
with the log URL's password masked; no store message carries a raw password.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from consent import ConsentMiddleware
from consent.errors import LogUnavailable
from consent.log import open_store, redact_secrets, redact_url
from consent.wsgi import ConsentWSGIMiddleware

from ..conftest import make_config
from ..harness import call
from ..test_endpoint import RecordingStore, page
from ..test_wsgi import environ, serve
from ._helpers import free_port

PASSWORD = "pw-S3cr3t"
QUERY_PASSWORD = "qs-S3cr3t"
FORM = "application/x-www-form-urlencoded"
GENERIC = "your choice could not be recorded, so it was not applied; please retry"


@pytest.fixture
def pg_url_with_passwords() -> str:
    pytest.importorskip("psycopg")
    # Nothing listens there: opening the log fails at once, "connection refused".
    port = free_port()
    return (
        f"postgresql://consent:{PASSWORD}@127.0.0.1:{port}/test?password={QUERY_PASSWORD}&timeout=1"
    )


@pytest.fixture
def sqlite_url_in_missing_dir(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/private-dir/consent.db"


def assert_generic_503(status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    assert status == 503
    assert ("retry-after", "5") in [(k.lower(), v) for k, v in headers]
    assert not any(k.lower() == "set-cookie" for k, _ in headers)
    assert json.loads(body) == {"error": "log_unavailable", "detail": GENERIC}


def consent_log_errors(caplog: pytest.LogCaptureFixture) -> str:
    found = [r for r in caplog.records if r.name == "consent" and r.levelno >= logging.WARNING]
    assert found, "the reason was not logged"
    return "\n".join(r.getMessage() for r in found)


async def post_asgi(url: str) -> tuple[int, list[tuple[str, str]], bytes]:
    app = ConsentMiddleware(page, config=make_config(log=url))
    try:
        r = await call(
            app, "POST", "/_consent", [(b"content-type", FORM.encode())], body=b"action=accept_all"
        )
    finally:
        await app.log.close()
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in r.headers]
    return r.status, headers, r.body


def post_wsgi(url: str) -> tuple[int, list[tuple[str, str]], bytes]:
    mw = ConsentWSGIMiddleware(lambda e, s: [], config=make_config(log=url))
    try:
        r = serve(mw, environ("POST", "/_consent", {"content-type": FORM}, b"action=accept_all"))
    finally:
        mw.close()
    return int(r.status[:3]), r.headers, r.body


async def post(shell: str, url: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return await post_asgi(url) if shell == "asgi" else post_wsgi(url)


@pytest.mark.anyio
@pytest.mark.parametrize("shell", ["asgi", "wsgi"])
async def test_503_for_a_postgres_log_reveals_neither_password_nor_host(
    shell: str, pg_url_with_passwords: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="consent")
    status, headers, body = await post(shell, pg_url_with_passwords)
    assert_generic_503(status, headers, body)
    for private in (PASSWORD, QUERY_PASSWORD, "127.0.0.1", "postgresql", "refused"):
        assert private.encode() not in body
    logged = consent_log_errors(caplog)
    assert "postgresql://consent:***@127.0.0.1:" in logged and "password=***" in logged
    assert "refused" in logged  # the reason is there for the operator
    assert PASSWORD not in caplog.text and QUERY_PASSWORD not in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize("shell", ["asgi", "wsgi"])
async def test_503_for_a_sqlite_log_reveals_no_path(
    shell: str, sqlite_url_in_missing_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="consent")
    status, headers, body = await post(shell, sqlite_url_in_missing_dir)
    assert_generic_503(status, headers, body)
    path = sqlite_url_in_missing_dir.removeprefix("sqlite:///")
    for private in (path, "private-dir", "sqlite", "/tmp"):
        assert private.encode() not in body
    assert "private-dir" in consent_log_errors(caplog)


@pytest.mark.anyio
async def test_a_store_raising_something_unexpected_is_a_503_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenStore(RecordingStore):
        async def append(self, entry: Any) -> Any:
            raise RuntimeError("disk quota at /srv/private/consent.db")

        async def append_many(self, entries: list[Any]) -> list[Any]:
            raise RuntimeError("disk quota at /srv/private/consent.db")

    app = ConsentMiddleware(page, config=make_config(), store=BrokenStore())  # type: ignore[arg-type]
    r = await call(
        app, "POST", "/_consent", [(b"content-type", FORM.encode())], body=b"action=accept_all"
    )
    headers = [(k.decode(), v.decode()) for k, v in r.headers]
    assert_generic_503(r.status, headers, r.body)
    [record] = [rec for rec in caplog.records if rec.name == "consent"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "RuntimeError" in record.getMessage() and b"/srv" not in r.body


@pytest.mark.anyio
async def test_a_log_url_that_cannot_be_opened_is_a_503_not_a_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As when the PostgreSQL driver is not installed: open_store raises LogURLError.
    from consent.log import _postgres

    def missing() -> None:
        raise _postgres.LogURLError("a PostgreSQL consent log needs psycopg 3")

    monkeypatch.setattr(_postgres, "import_psycopg", missing)
    monkeypatch.setattr("consent.log.import_psycopg", missing)
    status, headers, body = await post_asgi(f"postgresql://u:{PASSWORD}@db.example/consent")
    assert_generic_503(status, headers, body)
    assert "psycopg" in consent_log_errors(caplog) and PASSWORD not in caplog.text


# -- redaction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@db/consent", "postgresql://u:***@db/consent"),
        ("postgresql://u:@db/consent", "postgresql://u:***@db/consent"),
        ("postgresql://u@db/consent", "postgresql://u@db/consent"),
        ("postgresql://db/consent", "postgresql://db/consent"),
        ("postgresql://u:p%40ss@db:5432/consent", "postgresql://u:***@db:5432/consent"),
        ("postgresql://u:p@ss@db/consent", "postgresql://u:***@db/consent"),
        ("postgresql://u:pa/ss@db/consent", "postgresql://u:***@db/consent"),
        ("postgresql://u:p@s/s?x@db/consent", "postgresql://u:***@db/consent"),
        ("postgresql://u:pw@[::1]:5432/consent", "postgresql://u:***@[::1]:5432/consent"),
        (
            "postgresql://u@db/consent?password=secret&sslmode=require",
            "postgresql://u@db/consent?password=***&sslmode=require",
        ),
        (
            "postgres://db/c?sslmode=require&PassWord=secret&sslpassword=k",
            "postgres://db/c?sslmode=require&PassWord=***&sslpassword=***",
        ),
        ("postgresql://db/c?api_token=t0k3n", "postgresql://db/c?api_token=***"),
        ("sqlite:////var/lib/consent.db", "sqlite:////var/lib/consent.db"),
        ("sqlite:////var/lib/a:b@c.db", "sqlite:////var/lib/a:b@c.db"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url_masks_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_masks_more_rather_than_less_when_ambiguous() -> None:
    # An "@" in the query could end a password holding "/": everything up to it goes.
    shown = redact_url("postgresql://u:pw@db/consent?application_name=a@b")
    assert "pw" not in shown.replace("postgresql", "")


def test_redact_secrets_finds_a_password_quoted_anywhere_in_a_message() -> None:
    url = f"postgresql://u:{PASSWORD}@db/consent?password=a%26b"
    message = f'{url} failed: invalid token "{PASSWORD}", and "a&b"'
    clean = redact_secrets(message, url)
    assert (
        clean == 'postgresql://u:***@db/consent?password=*** failed: invalid token "***", and "***"'
    )


@pytest.mark.anyio
async def test_postgres_messages_never_quote_the_password() -> None:
    pytest.importorskip("psycopg")
    # libpq quotes a token it cannot decode: 'invalid percent-encoded token: "…"'.
    bad = f"postgresql://consent:{PASSWORD}%zz@127.0.0.1:{free_port()}/test?timeout=1"
    store = open_store(bad)
    with pytest.raises(LogUnavailable) as caught:
        await store.open()
    message = str(caught.value)
    assert "percent-encoded" in message and PASSWORD not in message
    assert "consent:***@127.0.0.1" in message and PASSWORD not in repr(store)
    # Nor would a traceback print it through the driver's own exception.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.anyio
async def test_postgres_keeps_the_cause_when_it_quotes_no_secret() -> None:
    pytest.importorskip("psycopg")
    store = open_store(f"postgresql://consent:{PASSWORD}@127.0.0.1:{free_port()}/test?timeout=1")
    with pytest.raises(LogUnavailable, match="refused") as caught:
        await store.open()
    assert caught.value.__cause__ is not None and PASSWORD not in str(caught.value)
