from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from examples.litestar.app import create_app
from litestar import Litestar, get
from litestar.testing import TestClient

from consent.contrib.litestar import Consent, consent_app, provide_consent

from ..conftest import make_config
from ._flow import Resp, check_flow
from ._server import free_port, http_client, running


def test_example_consent_flow() -> None:
    app = create_app(log="memory://")

    def request(method: str, path: str, headers: dict[str, str], body: bytes) -> Resp:
        # A client per request: no cookie jar, so every cookie sent is explicit.
        with TestClient(app) as client:  # type: ignore[arg-type]  # any ASGI app will do
            r = client.request(method, path, headers=headers, content=body, follow_redirects=False)
            return Resp(r.status_code, list(r.headers.multi_items()), r.content)

    first, second = check_flow(request, {"session", "csrftoken"})
    assert b"Analytics allowed: no." in first.body
    assert b"Analytics allowed: yes." in second.body  # provide_consent


def test_consent_state_dependency() -> None:
    @get("/")
    async def show(consent: Consent) -> dict[str, Any]:
        return {"decided": consent.decided, "granted": sorted(consent.granted)}

    app = consent_app(Litestar([show], dependencies={"consent": provide_consent}), make_config())
    with TestClient(app) as client:  # type: ignore[arg-type]
        assert client.get("/").json() == {"decided": False, "granted": ["necessary"]}
        client.post("/_consent", json={"action": "save", "categories": ["analytics"]})
        assert client.get("/").json()["granted"] == ["analytics", "necessary"]


@pytest.mark.slow
def test_example_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "examples.litestar.app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(args, tmp_path, {}, port):
        check_flow(http_client(port), {"session", "csrftoken"})
    assert (tmp_path / "example-consent.db").exists()  # the decision was logged
