from __future__ import annotations

from pathlib import Path

import pytest
from examples.quart.app import create_app

from ._flow import Resp, check_flow
from ._server import free_port, http_client, running

pytestmark = pytest.mark.anyio


async def test_example_consent_flow() -> None:
    app = create_app(log="memory://")
    responses: list[Resp] = []

    async def fetch(method: str, path: str, headers: dict[str, str], body: bytes) -> Resp:
        client = app.test_client(use_cookies=False)
        r = await client.open(path, method=method, headers=headers, data=body)
        return Resp(r.status_code, list(r.headers.items()), await r.get_data())

    # check_flow is synchronous: replay it over responses fetched ahead, one step at a time.
    async with app.test_app():
        first = await fetch("GET", "/", {}, b"")
        own = "; ".join(v.split(";", 1)[0] for k, v in first.headers if k.lower() == "set-cookie")
        post = await fetch(
            "POST",
            "/_consent",
            {"content-type": "application/x-www-form-urlencoded", "cookie": own},
            b"action=accept_all&next=%2F",
        )
        consent = post.kept.get("consent", "")
        second = await fetch("GET", "/", {"cookie": f"{own}; {consent}"}, b"")
        responses = [first, post, second]

    steps = iter(responses)
    first, second = check_flow(lambda *args: next(steps), {"session"})
    assert b"Analytics is off." in first.body
    assert b"Thank you for allowing analytics." in second.body  # the template global


@pytest.mark.slow
def test_example_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "examples.quart.app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(args, tmp_path, {}, port):
        check_flow(http_client(port), {"session"})
    assert (tmp_path / "example-consent.db").exists()  # the decision was logged
