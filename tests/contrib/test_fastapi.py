from __future__ import annotations

from examples.fastapi.app import create_app
from starlette.testclient import TestClient

from ._flow import check_flow
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
