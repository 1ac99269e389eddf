"""Hostile requests to the consent endpoint, through both shells: a clean 4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import pytest

from consent import ConsentMiddleware
from consent.wsgi import ConsentWSGIMiddleware

from .conftest import make_config
from .harness import call
from .test_endpoint import RecordingStore, page
from .test_shared_behaviour import ASGIShell, Shell, WSGIShell
from .test_wsgi import environ, serve

JSON = {"content-type": "application/json"}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture(params=[ASGIShell, WSGIShell], ids=["asgi", "wsgi"])
def shell(request: pytest.FixtureRequest, store: RecordingStore) -> Iterable[Shell]:
    factory: Callable[[RecordingStore], Shell] = request.param
    s = factory(store)
    yield s
    if isinstance(s.mw, ConsentWSGIMiddleware):
        s.mw.close()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 16000,
        b'{"action":"save","categories":' + b"[" * 8000 + b"]" * 8000 + b"}",
        b'{"a":' * 2500 + b"0" + b"}" * 2500,
    ],
    ids=["arrays", "in-categories", "objects"],
)
def test_deeply_nested_json_is_a_400_not_a_500(
    shell: Shell, store: RecordingStore, body: bytes
) -> None:
    r = shell.request("POST", "/_consent", JSON, body)
    assert r.status == 400, r.body
    payload = json.loads(r.body)
    assert payload["error"] == "bad_request" and "nested deeper than" in payload["detail"]
    assert r.cookies() == [] and store.entries == []


def test_json_categories_must_be_a_list(shell: Shell, store: RecordingStore) -> None:
    r = shell.request("POST", "/_consent", JSON, b'{"action":"save","categories":"analytics"}')
    assert r.status == 400 and "'categories' must be a list" in json.loads(r.body)["detail"]
    assert r.cookies() == [] and store.entries == []
    r = shell.request(
        "POST", "/_consent", {"content-type": FORM}, b"action=save&categories=analytics"
    )
    assert r.status == 303 and r.consent_cookie is not None  # a form's single field is fine


# -- Content-Length: ASCII digits only ------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("length", "status"),
    [
        ("²".encode(), 303),  # not a number: the body is read to its end, as without one
        ("١٢".encode(), 303),
        (b"9" * 5000, 413),  # int() refuses more than 4,300 digits
        (b"0" * 5000 + b"17", 303),
    ],
    ids=["superscript", "arabic-indic", "5000-digits", "leading-zeros"],
)
async def test_asgi_content_length_that_is_not_ascii_digits(length: bytes, status: int) -> None:
    store = RecordingStore()
    app = ConsentMiddleware(page, config=make_config(), store=store)  # type: ignore[arg-type]
    headers = [(b"content-type", FORM.encode()), (b"content-length", length)]
    r = await call(app, "POST", "/_consent", headers, body=b"action=accept_all")
    assert r.status == status, r.body
    assert len(store.entries) == (1 if status == 303 else 0)


@pytest.mark.parametrize(
    ("length", "terminated", "status"),
    [
        ("²", False, 400),  # unknown length, input not terminated: read as empty (PEP 3333)
        ("²", True, 303),  # the server ends the input: it is read to its end
        ("\u0661", True, 303),  # Arabic-Indic one: int() read it as 1, and one byte was read
        ("\uff11\uff17", True, 303),  # fullwidth digits
        ("9" * 5000, False, 413),
        ("0" * 5000 + "17", False, 303),
    ],
)
def test_wsgi_content_length_that_is_not_ascii_digits(
    length: str, terminated: bool, status: int
) -> None:
    store = RecordingStore()
    mw = ConsentWSGIMiddleware(lambda e, s: [], config=make_config(), store=store)  # type: ignore[arg-type]
    try:
        env = environ("POST", "/_consent", {"content-type": FORM}, b"action=accept_all")
        env["CONTENT_LENGTH"] = length
        if terminated:
            env["wsgi.input_terminated"] = True
        r = serve(mw, env)
    finally:
        mw.close()
    assert r.status.startswith(str(status)), (r.status, r.body)
    assert len(store.entries) == (1 if status == 303 else 0)
