"""The Django example, wrapped under ASGI and WSGI, in process and under real servers."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from werkzeug.test import Client

from ..harness import Result, check, make_scope
from ._flow import FORM, Resp, check_flow
from ._server import free_port, http_client, running

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django.settings")
os.environ.setdefault("CONSENT_LOG", "memory://")

from examples.django.asgi import application as asgi_application
from examples.django.wsgi import application as wsgi_application

DJANGO_COOKIES = {"sessionid", "csrftoken"}
_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def wsgi_request(method: str, path: str, headers: dict[str, str], body: bytes) -> Resp:
    r = Client(wsgi_application, use_cookies=False).open(
        path, method=method, headers=headers, data=body
    )
    try:
        return Resp(r.status_code, r.headers.to_wsgi_list(), r.get_data())
    finally:
        r.close()


def check_django_flow(client: Any) -> None:
    first, second = check_flow(client, DJANGO_COOKIES)
    assert b"Analytics is off." in first.body
    assert b"Thank you for allowing analytics." in second.body  # context processor + filter
    assert b'<a href="/_consent/policy" data-consent-open>Cookie settings</a>' in first.body
    # The CSRF cookie passed untouched: a form post with it and the page's token works.
    csrf = first.kept["csrftoken"]
    token = _TOKEN.search(first.body)
    assert token is not None
    ok = client("POST", "/", {**FORM, "cookie": csrf}, b"csrfmiddlewaretoken=" + token.group(1))
    assert ok.status == 200
    refused = client("POST", "/", {**FORM, "cookie": csrf}, b"csrfmiddlewaretoken=wrong")
    assert refused.status == 403


def test_wsgi_in_process() -> None:
    check_django_flow(wsgi_request)


@pytest.mark.anyio
async def test_asgi_mixed_case_set_cookie_headers_are_filtered() -> None:
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()  # Django listens for a disconnect meanwhile
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi_application(make_scope(), receive, send)
    r = Result(sent)
    check(r)
    names = [k for k, _ in r.headers]
    assert b"Set-Cookie" in names  # Django keeps the header case
    assert sorted(r.kept_cookie_names) == sorted(DJANGO_COOKIES)
    assert b"data-consent-banner" in r.body


@pytest.mark.slow
def test_asgi_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    args = ["-m", "uvicorn", "examples.django.asgi:application", "--port", str(port)]
    env = {
        "CONSENT_LOG": f"sqlite:///{tmp_path}/consent.db",
        "DJANGO_SETTINGS_MODULE": "examples.django.settings",
    }
    with running([*args, "--log-level", "warning"], tmp_path, env, port):
        check_django_flow(http_client(port))
    assert (tmp_path / "consent.db").exists()


@pytest.mark.slow
def test_wsgi_under_wsgiref(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "CONSENT_LOG": f"sqlite:///{tmp_path}/consent.db",
        "DJANGO_SETTINGS_MODULE": "examples.django.settings",
        "PORT": str(port),
    }
    with running(["-m", "examples.django.wsgi"], tmp_path, env, port):
        check_django_flow(http_client(port))
    assert (tmp_path / "consent.db").exists()
