from __future__ import annotations

from pathlib import Path

import pytest
from examples.starlette.app import create_app
from starlette.testclient import TestClient

from ._flow import Resp, check_flow
from ._server import free_port, http_client, running


def client_for(app: object) -> object:
    def request(method: str, path: str, headers: dict[str, str], body: bytes) -> Resp:
        # A client per request: no cookie jar, so every cookie sent is explicit.
        r = TestClient(app).request(
            method, path, headers=headers, content=body, follow_redirects=False
        )
        return Resp(r.status_code, list(r.headers.multi_items()), r.content)

    return request


def test_example_consent_flow() -> None:
    first, second = check_flow(client_for(create_app(log="memory://")), {"session"})
    assert b"Analytics is off." in first.body
    assert b"Thank you for allowing analytics." in second.body  # install_jinja


def test_template_without_the_middleware_sees_nothing_granted() -> None:
    import jinja2
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route
    from starlette.templating import Jinja2Templates

    from consent.contrib.starlette import install_jinja

    env = jinja2.Environment(
        loader=jinja2.DictLoader({"t.html": '{{ consent.allows("necessary") }}'}),
        autoescape=True,
    )
    templates = install_jinja(Jinja2Templates(env=env))
    install_jinja(templates)  # twice is harmless
    assert len(templates.context_processors) == 1

    async def page(request: Request) -> object:
        return templates.TemplateResponse(request, "t.html")

    r = TestClient(Starlette(routes=[Route("/", page)])).get("/")  # type: ignore[arg-type]
    assert r.text == "False"


@pytest.mark.slow
def test_example_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "examples.starlette.app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(args, tmp_path, {}, port):
        check_flow(http_client(port), {"session"})
    assert (tmp_path / "example-consent.db").exists()  # the decision was logged
