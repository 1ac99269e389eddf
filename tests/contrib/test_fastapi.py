from __future__ import annotations

from pathlib import Path

import pytest
from examples.fastapi.app import create_app
from starlette.testclient import TestClient

from ._flow import check_flow
from ._server import free_port, http_client, running
from .test_starlette import client_for


def test_example_consent_flow() -> None:
    first, second = check_flow(client_for(create_app(log="memory://")), {"session"})
    assert b"Analytics allowed: no." in first.body
    assert b"Analytics allowed: yes." in second.body  # the Consent dependency


def test_require_consent_answers_403_then_lets_through() -> None:
    app = create_app(log="memory://")
    client = TestClient(app)
    r = client.get("/api/stats")
    assert r.status_code == 403
    assert r.json() == {
        "detail": {
            "error": "consent_required",
            "category": "analytics",
            "detail": "this needs consent to the 'analytics' category",
        }
    }
    r = client.post("/_consent", json={"action": "save", "categories": ["analytics"]})
    assert r.status_code == 200
    assert client.get("/api/stats").json() == {"page_views": 42}  # the jar sends the consent


@pytest.mark.slow
def test_example_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "examples.fastapi.app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(args, tmp_path, {}, port):
        check_flow(http_client(port), {"session"})
    assert (tmp_path / "example-consent.db").exists()  # the decision was logged
