"""``consent.contrib.django.ConsentMiddleware`` in ``MIDDLEWARE``, sync and async."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django.settings")
os.environ.setdefault("CONSENT_LOG", "memory://")

import django
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpResponse, StreamingHttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from werkzeug.test import Client as WerkzeugClient

from consent.contrib.django import ConsentMiddleware, consent_state
from consent.log import MemoryStore

from ..conftest import SECRET

PAGE = "<html><head><title>t</title></head><body><h1>{}</h1></body></html>"
FORM = "application/x-www-form-urlencoded"
CONSENT = {
    "secret_key": SECRET,
    "log": "memory://",
    "categories": [
        {"key": "necessary", "required": True, "cookies": ["sessionid", "csrftoken"]},
        {"key": "analytics", "cookies": ["_ga", "_ga_*"]},
    ],
}


def _page(request: Any) -> HttpResponse:
    state = consent_state(request)
    response = HttpResponse(PAGE.format(f"analytics={state.allows('analytics')}"))
    response.set_cookie("csrftoken", "tok", samesite="Lax")
    response.set_cookie("_ga", "GA1.1")
    return response


def page(request: Any) -> HttpResponse:
    return _page(request)


async def async_page(request: Any) -> HttpResponse:
    return _page(request)


def stream(request: Any) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"<html><body><h1>streamed"
        yield b"</h1></bo"
        yield b"dy></html>"

    response = StreamingHttpResponse(chunks(), content_type="text/html")
    response.set_cookie("_ga", "GA1.1")
    return response


async def async_stream(request: Any) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"<html><body><h1>streamed"
        yield b"</h1></body></html>"

    return StreamingHttpResponse(chunks(), content_type="text/html")


urlpatterns = [
    path("", page),
    path("async", async_page),
    path("stream", stream),
    path("async-stream", async_stream),
]


class StoreMiddleware(ConsentMiddleware):
    """The middleware with a log store the test can read."""


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryStore]:
    django.setup()
    memory = MemoryStore()
    monkeypatch.setattr(StoreMiddleware, "store", memory)
    with override_settings(
        ROOT_URLCONF=__name__,
        CONSENT=CONSENT,
        MIDDLEWARE=[
            f"{__name__}.StoreMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
    ):
        yield memory


def set_cookies(response: Any) -> list[str]:
    """The Set-Cookie values Django's handlers send for ``response``."""
    return [c.output(header="").strip() for c in response.cookies.values()]


def kept(response: Any) -> set[str]:
    return {c.split("=", 1)[0] for c in set_cookies(response) if "Max-Age=0" not in c}


def deleted(response: Any) -> set[str]:
    return {c.split("=", 1)[0] for c in set_cookies(response) if "Max-Age=0" in c}


def check_first_page(r: Any, body: bytes) -> None:
    assert r.status_code == 200
    assert b"data-consent-banner" in body
    assert b"analytics=False" in body
    assert kept(r) == {"csrftoken"}  # _ga refused, the necessary one kept
    assert "private" in r.headers["Cache-Control"]
    assert "Cookie" in r.headers["Vary"]


@pytest.mark.usefixtures("store")
def test_page_gets_banner_and_cookies_filtered() -> None:
    r = Client().get("/", HTTP_COOKIE="_ga=old")
    check_first_page(r, r.content)
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert deleted(r) == {"_ga"}  # the refused cookie the browser sent is expired


def test_accept_all_then_analytics_kept(store: MemoryStore) -> None:
    client = Client()
    r = client.post("/_consent", "action=accept_all", content_type=FORM)
    assert r.status_code == 303
    assert any(c.startswith("consent=") for c in set_cookies(r)), set_cookies(r)
    assert len(store._rows) == 1
    second = client.get("/")
    assert b"data-consent-banner" not in second.content
    assert b"analytics=True" in second.content
    assert kept(second) == {"csrftoken", "_ga"}


@pytest.mark.usefixtures("store")
def test_endpoint_sends_every_set_cookie_on_the_wire() -> None:
    app = WerkzeugClient(WSGIHandler(), use_cookies=False)
    form = {"content-type": "application/x-www-form-urlencoded", "cookie": "_ga=old"}
    r = app.post("/_consent", headers=form, data=b"action=reject_all")
    values = [v for k, v in r.headers.to_wsgi_list() if k.lower() == "set-cookie"]
    assert r.status_code == 303
    assert len(values) >= 2, values
    assert values[0].strip().startswith("consent=")
    assert any(v.strip().startswith("_ga=") and "Max-Age=0" in v for v in values)


@pytest.mark.usefixtures("store")
def test_streaming_page_gets_banner() -> None:
    r = Client().get("/stream")
    body = b"".join(r.streaming_content)
    assert body.startswith(b"<html><body><h1>streamed</h1>")
    assert b"data-consent-banner" in body
    assert body.endswith(b"</body></html>")
    assert "_ga" not in kept(r)


@pytest.mark.usefixtures("store")
def test_json_endpoint_state() -> None:
    r = Client().get("/_consent")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["decided"] is False


@pytest.mark.anyio
async def test_async_page_and_endpoint(store: MemoryStore) -> None:
    client = AsyncClient()
    r = await client.get("/async")
    check_first_page(r, r.content)
    assert int(r.headers["Content-Length"]) == len(r.content)
    r = await client.post("/_consent", "action=accept_all", content_type=FORM)
    assert r.status_code == 303
    assert len(store._rows) == 1
    second = await client.get("/async")
    assert b"data-consent-banner" not in second.content
    assert kept(second) == {"csrftoken", "_ga"}


@pytest.mark.anyio
@pytest.mark.usefixtures("store")
async def test_async_streaming_page_gets_banner() -> None:
    r = await AsyncClient().get("/async-stream")
    body = b"".join([chunk async for chunk in r.streaming_content])
    assert b"data-consent-banner" in body
    assert body.endswith(b"</body></html>")


@pytest.mark.anyio
@pytest.mark.usefixtures("store")
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_sync_streaming_page_under_async_gets_banner() -> None:
    r = await AsyncClient().get("/stream")
    body = b"".join([chunk async for chunk in r])
    assert b"data-consent-banner" in body
    assert body.endswith(b"</body></html>")
    assert "_ga" not in kept(r)


@pytest.mark.usefixtures("store")
def test_endpoint_refuses_a_body_over_the_cap() -> None:
    r = Client().post("/_consent", "action=accept_all&" + "x" * 20000, content_type=FORM)
    assert r.status_code == 413
    assert set_cookies(r) == []


@pytest.mark.usefixtures("store")
def test_outer_set_cookie_replaces_a_passed_through_value() -> None:
    r = Client().post("/_consent", "action=accept_all", content_type=FORM)
    r.set_cookie("consent", "changed")
    assert r.cookies["consent"].OutputString().startswith("consent=changed")


@pytest.mark.usefixtures("store")
def test_gpc_resource_is_served() -> None:
    r = Client().get("/.well-known/gpc.json")
    assert r.status_code == 200
    assert r.json()["gpc"] is True
