"""The endpoint logic and page snippets, pure: no server, no event loop."""

from __future__ import annotations

import functools
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.banner import Banner
from consent.core.endpoint import (
    MAX_BODY,
    Decision,
    Endpoint,
    EndpointRequest,
    EndpointResponse,
    browser_family,
    declared_length,
    endpoint_subpath,
    truncate_ip,
)
from consent.core.page import csp_nonce, page_snippets
from consent.core.response import CookiePolicy
from consent.log import LogEntry
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


# -- hostile bodies: every error path is a 4xx, never an exception ----------------------

JSON_CT = (b"content-type", b"application/json")


def post_json(body: bytes | str, state: ConsentState = UNDECIDED) -> EndpointResponse | Decision:
    raw = body.encode() if isinstance(body, str) else body
    return endpoint().handle(req("POST", "", JSON_CT), raw, state)


def refused(out: EndpointResponse | Decision, status: int = 400) -> str:
    """The detail of an error answer (asserting it is one, short and cookie-free)."""
    assert isinstance(out, EndpointResponse), out
    assert out.status == status, out.body
    assert not any(k == b"set-cookie" for k, _ in out.headers)
    detail: str = json.loads(out.body)["detail"]
    assert len(detail) <= 200, detail
    return detail


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000,
        "[" * 5000 + "]" * 5000,
        '{"a":' * 2500 + "1" + "}" * 2500,
        '{"action":"save","categories":' + "[" * 5000 + "]" * 5000 + "}",
        '{"action":"accept_all","x":' + '[{"y":' * 1500 + "0" + "}]" * 1500 + "}",
        "[" * 33 + "]" * 33,
    ],
    ids=["open-arrays", "closed-arrays", "objects", "in-categories", "mixed", "just-too-deep"],
)
def test_deeply_nested_json_is_a_400(body: str) -> None:
    assert len(body.encode()) <= MAX_BODY
    assert "nested deeper than" in refused(post_json(body))


def test_brackets_inside_json_strings_do_not_count_as_nesting() -> None:
    body = json.dumps({"action": "accept_all", "note": "[" * 5000 + '\\"{' * 100})
    assert isinstance(post_json(body), Decision)
    shallow = {"action": "accept_all", "meta": [[[[{"a": [1, 2, 3]}]]]] * 40}
    assert isinstance(post_json(json.dumps(shallow)), Decision)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"action":"save","categories":"analytics"}', "'categories' must be a list"),
        ('{"action":"save","categories":{"analytics":true}}', "'categories' must be a list"),
        ('{"action":"save","categories":null}', "'categories' must be a list"),
        ('{"action":"save","categories":["analytics",1]}', "'categories' must be a list"),
        ('{"action":"save","categories":[["analytics"]]}', "'categories' must be a list"),
    ],
)
def test_json_categories_must_be_a_list_of_strings(body: str, why: str) -> None:
    assert why in refused(post_json(body))


def test_a_form_with_a_single_category_field_still_works() -> None:
    out = endpoint().handle(req("POST", "", FORM), b"action=save&categories=analytics", UNDECIDED)
    assert isinstance(out, Decision) and out.records[0]["granted"] == ("analytics",)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"action":"save","action":"accept_all"}', "repeated"),
        ('{"action":"accept_all","x":{"k":1,"k":2}}', "repeated"),
        ('{"action":"accept_all","n":' + "9" * 5000 + "}", "number"),
        ('{"action":"accept_all","n":NaN}', "NaN"),
        ('{"action":"accept_all","n":-Infinity}', "NaN"),
        ("\ufeff{}", "malformed JSON"),
        ('{"action":"accept_all"', "malformed JSON"),
        ('{"action":"accept_all"} {}', "malformed JSON"),
    ],
)
def test_malformed_json_is_a_400_with_a_short_precise_message(body: str, why: str) -> None:
    detail = refused(post_json(body))
    assert why in detail and "sys." not in detail


def test_error_messages_echo_at_most_a_little_of_the_input() -> None:
    for body in (
        json.dumps({"action": "x" * 10000}),
        json.dumps({"action": "save", "categories": ["y" * 3000] * 4}),
        '{"action":"save","' + "x" * 5000 + '":1,"' + "x" * 5000 + '":2}',  # a repeated key
    ):
        refused(post_json(body))
    out = endpoint().handle(req("GET", "/" + "z" * 10000), b"", UNDECIDED)
    refused(out, 404)
    out = endpoint().handle(req("POST", "", (b"content-type", b"t/" + b"q" * 9000)), b"", UNDECIDED)
    refused(out, 415)
    out = endpoint().handle(
        req("POST", "", FORM, (b"origin", b"https://" + b"e" * 9000)),
        b"action=accept_all",
        UNDECIDED,
    )
    refused(out, 403)


@pytest.mark.parametrize(
    ("value", "length"),
    [
        (None, None),
        ("12", 12),
        (b"12", 12),
        (" 12\t", 12),
        (b"0", 0),
        ("²", None),
        ("1²", None),
        ("١٢", None),  # Arabic-Indic digits: int() would read them as 12
        ("\uff11\uff12", None),  # fullwidth digits
        ("²".encode(), None),
        ("١٢".encode(), None),
        ("-1", None),
        ("+1", None),
        ("1_000", None),
        ("", None),
        ("0x10", None),
        ("1 2", None),
        ("\xa012", None),  # a no-break space is not HTTP whitespace
    ],
)
def test_declared_length_reads_ascii_digits_only(
    value: bytes | str | None, length: int | None
) -> None:
    assert declared_length(value) == length


@pytest.mark.parametrize("value", ["9" * 5000, b"9" * 5000, "1" + "0" * 30])
def test_a_content_length_of_thousands_of_digits_is_too_large_not_an_error(
    value: bytes | str,
) -> None:
    length = declared_length(value)  # int() refuses more than 4,300 digits
    assert length is not None and length > MAX_BODY


def test_leading_zeros_of_a_content_length_do_not_count() -> None:
    assert declared_length("0" * 4999 + "12") == 12


# -- property: nothing a client sends makes the endpoint raise ------------------------------

_JSON_TYPES = [b"application/json", b"application/json; charset=latin-1", b"APPLICATION/JSON "]
_FORM_TYPES = [
    b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=utf-8",
]
_CONTENT_TYPES = (
    st.sampled_from(_JSON_TYPES + _FORM_TYPES)
    | st.sampled_from([b"text/plain", b"multipart/form-data; boundary=x", b""])
    | st.binary(max_size=40)
)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["analytics", "marketing", "necessary", "accept_all", "save", "/x"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(["action", "categories", "source", "next"]) | st.text(max_size=8)
_JSON_OBJECTS = st.dictionaries(_KEYS, _JSON_VALUES, max_size=5).map(
    lambda d: json.dumps(d).encode()
)


@st.composite
def _json_ish(draw: st.DrawFn) -> bytes:
    """Almost-JSON: a valid object, cut, spliced with noise, deeply nested, or huge numbers."""
    text = draw(_JSON_OBJECTS)
    how = draw(st.sampled_from(["as is", "cut", "splice", "deep", "numbers"]))
    if how == "cut":
        return text[: draw(st.integers(0, len(text)))]
    if how == "splice":
        at = draw(st.integers(0, len(text)))
        noise = draw(
            st.sampled_from([b"[", b"{", b'"', b"\\", b",", b":", b"NaN", b"\x00", b"\xff"])
        )
        return text[:at] + noise * draw(st.integers(1, 3000)) + text[at:]
    if how == "deep":
        # Hypothesis itself raises the recursion limit to about 2,000 frames while
        # a test runs, so the deepest bodies that fit the size limit are drawn often.
        n = draw(st.sampled_from([1, 32, 33, 1000, MAX_BODY]) | st.integers(0, MAX_BODY))
        opening = draw(st.sampled_from([b"[", b'{"a":', b'[{"b":']))
        return (b'{"action":"save","categories":' + opening * n)[:MAX_BODY]
    if how == "numbers":
        return b'{"action":"accept_all","n":' + b"7" * draw(st.integers(1, 6000)) + b"}"
    return text


_FORMS = st.lists(st.tuples(_KEYS, st.text(max_size=20) | _JSON_VALUES.map(str)), max_size=80).map(
    lambda pairs: urlencode(pairs).encode()
)
#: Random bytes, JSON-ish bodies, forms, and bodies around the size limit.
_BODIES = (
    st.binary(max_size=2000)
    | _json_ish()
    | _FORMS
    | st.binary(min_size=MAX_BODY - 4, max_size=MAX_BODY + 4)
)
_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [b"cookie", b"accept-language", b"user-agent", b"host", b"origin", b"sec-fetch-site"]
        ),
        st.binary(max_size=60) | st.sampled_from([b"same-origin", b"http://site.test"]),
    ),
    max_size=2,
)


@functools.cache
def _real_endpoint() -> Endpoint:
    # The real banner: its texts hash and locale go into the log records checked below.
    config = make_config()
    return Endpoint(config, CookiePolicy(config), Banner(config))


def _check_answer(out: EndpointResponse | Decision) -> None:
    if isinstance(out, Decision):
        # What the log is handed must be valid: LogEntry checks every field.
        assert [LogEntry(**fields) for fields in out.records]
        assert out.response.status in (200, 303)
        return
    assert isinstance(out, EndpointResponse)
    if out.status >= 400:
        assert out.status < 500, out.body
        assert json.loads(out.body)["error"]
        assert not any(k == b"set-cookie" for k, _ in out.headers)


@settings(max_examples=300)
@given(
    body=_BODIES,
    ctype=_CONTENT_TYPES,
    json_ish=_json_ish(),
    as_json=st.booleans(),
    gpc=st.booleans(),
    headers=_HEADERS,
)
def test_a_post_never_raises_and_answers_a_4xx_or_a_decision(
    body: bytes,
    ctype: bytes,
    json_ish: bytes,
    as_json: bool,
    gpc: bool,
    headers: list[tuple[bytes, bytes]],
) -> None:
    e = _real_endpoint()
    state = e.policy.codec.with_gpc(UNDECIDED, e.policy.gpc_opt_out) if gpc else UNDECIDED
    if as_json:  # half the examples: a JSON-ish body sent as JSON
        body, ctype = json_ish, _JSON_TYPES[0]
    out = e.handle(req("POST", "", (b"content-type", ctype), *headers), body, state)
    _check_answer(out)
    if isinstance(out, EndpointResponse):
        assert out.status >= 400, out


@given(
    body=_BODIES,
    ctype=_CONTENT_TYPES,
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"]),
    sub=st.sampled_from(["", "/", "/policy", "/banner", "/static/consent.js", "/static/"])
    | st.text(max_size=30).map(lambda t: "/" + t),
    query=st.binary(max_size=60),
    headers=_HEADERS,
)
def test_any_method_and_path_never_raises(
    body: bytes,
    ctype: bytes,
    method: str,
    sub: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    out = _real_endpoint().handle(
        req(method, sub, (b"content-type", ctype), *headers, query=query), body, UNDECIDED
    )
    _check_answer(out)
