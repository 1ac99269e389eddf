"""A tiny raw-ASGI app for the SIGKILL test: one log record per POST.

It answers 200 only after ``append`` returned, like the real consent endpoint.
Run by the test under uvicorn with ``CONSENT_TEST_LOG`` naming the log.
"""

from __future__ import annotations

import os
from typing import Any

from consent.errors import LogUnavailable
from consent.log import LogStore, open_store

from ._helpers import make_entry

_state: dict[str, LogStore] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                store = open_store(os.environ["CONSENT_TEST_LOG"])
                await store.open()
                _state["store"] = store
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _state.pop("store").close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, reply = 200, b"ready"
    if scope["method"] == "POST":
        try:
            record = await _state["store"].append(make_entry(consent_id=body.decode()))
        except LogUnavailable:
            status, reply = 503, b"log unavailable"
        else:
            reply = str(record.seq).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(reply)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": reply})
