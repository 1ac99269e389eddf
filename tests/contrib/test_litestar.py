from __future__ import annotations

from typing import Any

from examples.litestar.app import create_app
from litestar import Litestar, get
from litestar.testing import TestClient

from consent.contrib.litestar import Consent, consent_app, provide_consent

from ..conftest import make_config
from ._flow import Resp, check_flow


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
