"""The endpoint logic and page snippets, pure: no server, no event loop."""

from __future__ import annotations

import json

import pytest

from consent.core.endpoint import (
    Decision,
    Endpoint,
    EndpointRequest,
    EndpointResponse,
    browser_family,
    endpoint_subpath,
    truncate_ip,
)
from consent.core.page import csp_nonce, page_snippets
from consent.core.response import CookiePolicy
from consent.state import ConsentState

from ..conftest import make_config


class FakeBanner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def negotiate(self, accept_language: str | None, override: str | None = None) -> str:
        self.calls.append(("negotiate", accept_language or "", override or ""))
        return override or "en"

    def texts_bundle(self, locale: str) -> tuple[str, str]:
        return "h-" + locale, json.dumps({"locale": locale})

    def static(self, name: str) -> tuple[bytes, str, str] | None:
        return (b"js", "text/javascript", '"e1"') if name == "consent.js" else None

    def policy_page(
        self, state: ConsentState, locale: str, *, prefix: str, nonce: str | None = None
    ) -> str:
        return f"policy {locale} {prefix}"

    def banner_fragment(
        self, state: ConsentState, locale: str, *, prefix: str, next_url: str = "/"
    ) -> str:
        return f"banner {locale} {prefix} {next_url} {sorted(state.granted)}"

    def snippet(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        next_url: str = "/",
        nonce: str | None = None,
    ) -> str:
        return (
            f"<b data-next='{next_url}' data-nonce='{nonce}' data-prefix='{prefix}'>é{locale}</b>"
        )

    def head_snippet(self, state: ConsentState, *, nonce: str | None = None) -> str:
        return f"<i>{nonce}</i>"

    def snippet_bytes(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        charset: str,
        next_url: str = "/",
        nonce: str | None = None,
    ) -> bytes:
        text = self.snippet(state, locale, prefix=prefix, next_url=next_url, nonce=nonce)
        return text.encode(charset, "xmlcharrefreplace")

    def head_snippet_bytes(
        self, state: ConsentState, *, charset: str, nonce: str | None = None
    ) -> bytes:
        return self.head_snippet(state, nonce=nonce).encode(charset, "xmlcharrefreplace")


def endpoint(**kw: object) -> Endpoint:
    config = make_config(**kw)
    return Endpoint(config, CookiePolicy(config), FakeBanner())


def req(
    method: str = "GET", sub: str = "", *headers: tuple[bytes, bytes], **kw: object
) -> EndpointRequest:
    return EndpointRequest(
        method, sub, [(b"host", b"site.test"), *headers], kw.pop("scheme", "http"), **kw
    )  # type: ignore[arg-type]


UNDECIDED = ConsentState(granted=frozenset({"necessary"}))
FORM = (b"content-type", b"application/x-www-form-urlencoded")


def test_truncate_ip() -> None:
    assert truncate_ip("192.0.2.155") == "192.0.2.0"
    assert truncate_ip("2001:db8:1234:5678::1") == "2001:db8:1234::"
    assert truncate_ip("[2001:db8:1234:5678::1]") == "2001:db8:1234::"
    assert truncate_ip("::ffff:192.0.2.155") == "192.0.2.0"  # IPv4-mapped: treated as IPv4
    assert truncate_ip("fe80::1%eth0") == "fe80::"
    assert truncate_ip("not-an-ip") is None
    assert truncate_ip(None) is None


@pytest.mark.parametrize(
    ("ua", "family"),
    [
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit Chrome/130.0 Safari/537.36 Edg/130.0", "edge"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "firefox"),
        ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15", "safari"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36", "chrome"),
        ("Googlebot/2.1", "bot"),
        ("curl/8.5.0", "other"),
        ("Mozilla/5.0 HeadlessChrome/130.0", "bot"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_browser_family_is_coarse(ua: str | None, family: str) -> None:
    assert browser_family(ua) == family


def test_endpoint_subpath() -> None:
    assert endpoint_subpath("/_consent", "/_consent", True) == ""
    assert endpoint_subpath("/_consent/policy", "/_consent", True) == "/policy"
    assert endpoint_subpath("/_consentx", "/_consent", True) is None
    assert endpoint_subpath("/.well-known/gpc.json", "/_consent", True) == "/.well-known/gpc.json"
    assert endpoint_subpath("/.well-known/gpc.json", "/_consent", False) is None
    assert endpoint_subpath("/other", "/_consent", True) is None


def test_cookie_domain_and_forced_secure() -> None:
    e = endpoint(cookie_domain=".site.test", secure=True)
    out = e.handle(req("POST", "", FORM), b"action=reject_all", UNDECIDED)
    assert isinstance(out, Decision)
    cookie = dict(out.response.headers)[b"set-cookie"]
    assert b"Domain=.site.test" in cookie and b"Secure" in cookie


def test_secure_false_never_marks_the_cookie_secure() -> None:
    e = endpoint(secure=False)
    out = e.handle(req("POST", "", FORM, scheme="https"), b"action=reject_all", UNDECIDED)
    assert isinstance(out, Decision)
    assert b"Secure" not in dict(out.response.headers)[b"set-cookie"]


def test_same_origin_by_origin_header() -> None:
    e = endpoint()
    out = e.handle(
        req("POST", "", FORM, (b"origin", b"http://site.test")), b"action=reject_all", UNDECIDED
    )
    assert isinstance(out, Decision)


@pytest.mark.parametrize(
    "sub", ["/.well-known/gpc.json", "/policy", "/banner", "/static/consent.js"]
)
def test_get_only_resources_refuse_other_methods(sub: str) -> None:
    out = endpoint().handle(req("DELETE", sub), b"", UNDECIDED)
    assert isinstance(out, EndpointResponse) and out.status == 405


def test_policy_page_uses_the_language_override_cookie() -> None:
    out = endpoint().handle(
        req(
            "GET",
            "/policy",
            (b"cookie", b"consent_lang=de"),
            (b"accept-language", b"fr"),
            root_path="/sub",
        ),
        b"",
        UNDECIDED,
    )
    assert isinstance(out, EndpointResponse) and out.body == b"policy de /sub/_consent"


def test_banner_fragment_for_the_visitor_locale_and_page() -> None:
    decided = ConsentState(granted=frozenset({"necessary", "analytics"}), decided=True)
    out = endpoint().handle(
        req(
            "GET",
            "/banner",
            (b"cookie", b"consent_lang=de"),
            (b"accept-language", b"fr"),
            root_path="/sub",
            query=b"x=1&next=%2Fsub%2Fshop%3Fp%3D2",
        ),
        b"",
        decided,
    )
    assert isinstance(out, EndpointResponse) and out.status == 200
    assert out.body == b"banner de /sub/_consent /sub/shop?p=2 ['analytics', 'necessary']"
    headers = dict(out.headers)
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"cache-control"] == b"private, no-cache"
    assert headers[b"vary"] == b"Cookie, Accept-Language, Sec-GPC"
    assert headers[b"content-length"] == str(len(out.body)).encode()


@pytest.mark.parametrize(
    ("query", "nxt"),
    [
        (b"", "/"),  # no page named: home
        (b"next=", "/"),
        (b"next=%2F%2Fevil.example%2Fx", "/"),  # another site: never
        (b"next=https%3A%2F%2Fevil.example%2F", "/"),
        (b"next=%2Fa%0D%0Ab", "/"),
        (b"next=%2Fcaf%C3%A9&next=%2Fsecond", "/café"),  # the first one, %-escapes as UTF-8
        (b"&".join([b"f=1"] * 20) + b"&next=%2Fa", "/"),  # more fields than a page sends
    ],
)
def test_banner_fragment_returns_only_to_a_path_of_this_site(query: bytes, nxt: str) -> None:
    out = endpoint().handle(req("GET", "/banner", query=query), b"", UNDECIDED)
    assert isinstance(out, EndpointResponse) and out.status == 200
    assert out.body.decode() == f"banner en /_consent {nxt} ['necessary']"


def test_unknown_static_file() -> None:
    out = endpoint().handle(req("GET", "/static/nope.js"), b"", UNDECIDED)
    assert isinstance(out, EndpointResponse) and out.status == 404


def test_too_many_form_fields() -> None:
    body = "&".join(f"f{i}=1" for i in range(100)).encode()
    out = endpoint().handle(req("POST", "", FORM), b"action=save&" + body, UNDECIDED)
    assert isinstance(out, EndpointResponse) and out.status == 400
    assert b"malformed form" in out.body


def test_oversized_body_is_refused_by_the_core_too() -> None:
    out = endpoint().handle(req("POST", "", FORM), b"a" * 20000, UNDECIDED)
    assert isinstance(out, EndpointResponse) and out.status == 413


def test_next_must_be_a_string() -> None:
    out = endpoint().handle(
        req("POST", "", (b"content-type", b"application/json")),
        b'{"action":"reject_all","next":5}',
        UNDECIDED,
    )
    assert isinstance(out, EndpointResponse) and out.status == 400 and b"'next'" in out.body


def test_gpc_without_conflict_writes_one_record() -> None:
    e = endpoint()
    gpc_state = e.policy.codec.with_gpc(UNDECIDED, e.policy.gpc_opt_out)
    out = e.handle(req("POST", "", FORM), b"action=save&categories=analytics", gpc_state)
    assert isinstance(out, Decision)
    assert [r["action"] for r in out.records] == ["save"]


def test_required_categories_may_be_posted_and_are_ignored() -> None:
    out = endpoint().handle(req("POST", "", FORM), b"action=save&categories=necessary", UNDECIDED)
    assert isinstance(out, Decision) and out.records[0]["granted"] == ()


def test_csp_nonce_and_page_snippets() -> None:
    headers = [(b"Content-Security-Policy", b"script-src 'self' 'nonce-abc123'")]
    assert csp_nonce(headers) == "abc123"
    assert csp_nonce([(b"content-security-policy", b"default-src 'self'")]) is None
    banner = FakeBanner()
    head, body = page_snippets(
        banner,
        UNDECIDED,
        headers,
        charset="iso8859-1",
        accept_language="de",
        query="a=1&consent_lang=fr",
        root_path="/sub",
        path="/page",
        prefix="/_consent",
    )
    assert head == b"<i>abc123</i>"
    assert (
        body
        == "<b data-next='/sub/page?a=1&consent_lang=fr' data-nonce='abc123' data-prefix='/sub/_consent'>éfr</b>".encode(
            "latin-1"
        )
    )
    _, ascii_body = page_snippets(
        banner,
        UNDECIDED,
        [],
        charset="ascii",
        accept_language=None,
        query="",
        root_path="",
        path="/",
        prefix="/c",
    )
    assert b"&#233;en" in ascii_body


def test_read_cache_evicts_oldest() -> None:
    p = CookiePolicy(make_config())
    p._cache_size = 2
    for i in range(4):
        p.read_header(f"x={i}".encode(), now=1.0)
    assert len(p.readings) == 2


def test_refused_cookies_are_not_expired_when_disabled() -> None:
    p = CookiePolicy(make_config(expire_refused=False))
    assert p.read([b"_ga=1"], now=1.0).expire == ()


def test_filter_keeps_allowed_after_a_blocked_one_and_appends_expiry() -> None:
    p = CookiePolicy(make_config())
    headers = [
        (b"set-cookie", b"_ga=1"),
        (b"set-cookie", b"session=1"),
        (b"set-cookie", b"x=; Max-Age=0"),
    ]
    out, blocked = p.filter_headers(headers, p.undecided, (b"_fbp=; Max-Age=0",))
    assert out == [
        (b"set-cookie", b"session=1"),
        (b"set-cookie", b"x=; Max-Age=0"),
        (b"set-cookie", b"_fbp=; Max-Age=0"),
    ]
    assert blocked == ["_ga"]


def test_verdict_cache_is_bounded_and_the_consent_cookie_always_passes() -> None:
    p = CookiePolicy(make_config())
    p._cache_size = 3
    headers = [(b"set-cookie", f"x{i}=1".encode()) for i in range(5)]
    _, blocked = p.filter_headers(headers, p.undecided)
    assert blocked == [f"x{i}" for i in range(5)] and len(p._names) <= 3
    assert p.allows("consent", p.undecided)
