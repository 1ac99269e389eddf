"""The WSGI twin under a threaded server: every shared cache holds up.

Threaded WSGI servers (gunicorn ``--threads``, waitress, mod_wsgi) run requests of
one middleware at once. Here many threads send requests with more distinct
``Cookie`` headers, cookie names, languages and pages than any memo holds (the
memos are made tiny, so they are emptied all the time), with a tiny switch
interval so that threads change places inside every few bytecodes. Not one
request may fail, and every answer must still be right.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from consent.wsgi import ConsentWSGIMiddleware

from .conftest import make_config

THREADS = 16
REQUESTS = 400
PAGE = b"<html><head></head><body><p>hi</p></body></html>"


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    n = environ["QUERY_STRING"]
    headers = [
        ("Content-Type", "text/html; charset=utf-8" if int(n) % 2 else "text/plain"),
        ("Set-Cookie", "session=1; Path=/"),
        ("Set-Cookie", f"_ga_{n}=1; Path=/"),  # analytics, a new name every time
        ("Set-Cookie", f"ads_{n}=1; Max-Age=3600"),  # marketing
        ("Set-Cookie", f"unknown{n}=1"),
    ]
    start_response("200 OK", headers)
    return [PAGE]


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("tiny_switch_interval")
def test_many_threads_and_more_values_than_any_memo_holds() -> None:
    mw = ConsentWSGIMiddleware(app, config=make_config())  # type: ignore[arg-type]
    # Tiny memos: they fill and empty all the time while the threads run.
    mw.policy._cache_size = 8
    mw.policy.matcher._cache_size = 8
    mw.policy.codec._cache_size = 8
    mw.snippets._size = 2
    errors: list[BaseException] = []
    wrong: list[str] = []
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(REQUESTS):
            n = t * REQUESTS + i
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": f"/p{n % 7}",
                "QUERY_STRING": str(n),
                "HTTP_COOKIE": f"sid={n}; _gid={n}; stale{n}=1",
                "HTTP_ACCEPT_LANGUAGE": ("de", "fr", "en-GB", f"x-{n}")[n % 4],
                "wsgi.url_scheme": "http",
            }
            got: list[tuple[str, str]] = []

            def start_response(
                status: str, headers: list[tuple[str, str]], exc: Any = None, got: Any = got
            ) -> Any:
                got.extend(headers)
                return lambda data: None

            try:
                body = b"".join(mw(environ, start_response))
            except BaseException as exc:  # every failure is the finding
                errors.append(exc)
                continue
            kept = [
                v.split("=", 1)[0]
                for k, v in got
                if k.lower() == "set-cookie" and "Max-Age=0" not in v
            ]
            if kept != ["session"] or (n % 2 and b"data-consent-banner" not in body):
                wrong.append(f"{n}: {kept}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], f"{len(errors)} of {THREADS * REQUESTS} requests raised: {errors[:3]!r}"
    assert wrong == []
    assert mw.blocked.counts  # counted, and readable while nothing runs
