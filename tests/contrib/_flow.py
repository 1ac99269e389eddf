"""The consent flow every framework example must pass, whatever drives it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FORM = {"content-type": "application/x-www-form-urlencoded"}
TRACKERS = {"_ga", "_fbp"}


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    @property
    def kept(self) -> dict[str, str]:
        """Cookies set with a value, name -> ``name=value`` (deletions left out)."""
        out = {}
        for c in self.set_cookies():
            c = c.strip()  # Django's WSGI handler puts a space first
            if "Max-Age=0" not in c and "expires=Thu, 01 Jan 1970" not in c:
                out[c.split("=", 1)[0]] = c.split(";", 1)[0]
        return out


#: ``client(method, path, headers, body) -> Resp``; no cookie jar, no redirects followed.
Client = Callable[[str, str, dict[str, str], bytes], Resp]


def banner_shown(body: bytes) -> bool:
    """The banner is on the page (a decided visitor's page has only the settings control)."""
    return b"data-consent-banner" in body


def check_flow(client: Client, necessary: set[str]) -> tuple[Resp, Resp]:
    """Undecided visit, accept all through the banner's form, visit again.

    ``necessary`` are the framework's own cookies the page sets (session, CSRF).
    Returns the first and the last page.
    """
    first = client("GET", "/", {}, b"")
    assert first.status == 200, first.body[:500]
    assert banner_shown(first.body)
    assert b'method="post" action="/_consent"' in first.body
    assert b'type="text/plain" data-consent="analytics"' in first.body
    assert set(first.kept) == necessary, first.set_cookies()  # trackers blocked
    assert b"Visit number 1 " in first.body
    if first.header("content-length") is not None:
        assert int(first.header("content-length") or -1) == len(first.body)

    own = "; ".join(first.kept.values())  # the framework's cookies, sent back as they came
    post = client("POST", "/_consent", {**FORM, "cookie": own}, b"action=accept_all&next=%2F")
    assert post.status == 303 and post.header("location") == "/", post.body
    consent = post.kept["consent"]

    second = client("GET", "/", {"cookie": f"{own}; {consent}"}, b"")
    assert second.status == 200
    assert not banner_shown(second.body)
    assert b"data-consent-open" in second.body
    assert set(second.kept) >= TRACKERS, second.set_cookies()  # granted: now set
    assert set(second.kept) & necessary  # the session, re-set with the new count
    # The session cookie came back intact: the framework still reads it.
    assert b"Visit number 2 " in second.body
    return first, second
