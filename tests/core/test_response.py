from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consent.config import ConsentConfig
from consent.core.response import BlockedCookies, CookiePolicy
from consent.state import ConsentState

from ..conftest import make_config

NOW = 1_800_000_000.0


def policy(**kw: object) -> CookiePolicy:
    return CookiePolicy(make_config(**kw))


def state(p: CookiePolicy, *keys: str) -> ConsentState:
    return ConsentState(
        granted=frozenset(keys) | p.required, decided=True, revision=1, issued_at=int(NOW)
    )


def cookie_for(p: CookiePolicy, *keys: str) -> bytes:
    return f"{p.cookie_name}={p.codec.encode(state(p, *keys))}".encode()


def names(headers: list[tuple[bytes, bytes]]) -> list[str]:
    return [v.split(b"=")[0].decode() for k, v in headers if k.lower() == b"set-cookie"]


def test_undecided_keeps_only_necessary() -> None:
    p = policy()
    headers = [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"session=1; HttpOnly"),
        (b"set-cookie", b"_ga=GA1; Max-Age=100"),
        (b"Set-Cookie", b"_fbp=fb"),
        (b"set-cookie", b"mystery=1"),
        (b"x-other", b"1"),
    ]
    out, blocked = p.filter_headers(headers, p.undecided)
    assert out == [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"session=1; HttpOnly"),
        (b"x-other", b"1"),
    ]
    assert blocked == ["_ga", "_fbp", "mystery"]


def test_granted_category_passes_in_order_with_mixed_case() -> None:
    p = policy()
    headers = [
        (b"Set-Cookie", b"_ga_ABC=1"),
        (b"set-cookie", b"_fbp=1"),
        (b"SET-COOKIE", b"session=2"),
        (b"set-cookie", b"_gid=3"),
    ]
    out, blocked = p.filter_headers(headers, state(p, "analytics"))
    assert out == [
        (b"Set-Cookie", b"_ga_ABC=1"),
        (b"SET-COOKIE", b"session=2"),
        (b"set-cookie", b"_gid=3"),
    ]
    assert blocked == ["_fbp"]


def test_unchanged_headers_are_returned_as_is() -> None:
    p = policy()
    headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"session=1")]
    out, blocked = p.filter_headers(headers, p.undecided)
    assert out is headers and blocked == []


def test_deletions_and_consent_cookie_always_pass() -> None:
    p = policy()
    headers = [(b"set-cookie", b"_ga=; Max-Age=0"), (b"set-cookie", b"consent=abc; Path=/")]
    out, blocked = p.filter_headers(headers, p.undecided)
    assert out == headers and blocked == []


def test_unknown_cookies_allowed_when_configured() -> None:
    p = policy(unknown_cookies="allow")
    out, blocked = p.filter_headers([(b"set-cookie", b"mystery=1")], p.undecided)
    assert names(out) == ["mystery"] and blocked == []


def test_regex_rule() -> None:
    p = policy()
    out, _ = p.filter_headers(
        [(b"set-cookie", b"ads_42=1"), (b"set-cookie", b"ads_x=1")], state(p, "marketing")
    )
    assert names(out) == ["ads_42"]


def test_expire_headers_are_appended() -> None:
    p = policy()
    out, _ = p.filter_headers([(b"content-type", b"x")], p.undecided, (b"_ga=; Max-Age=0",))
    assert out == [(b"content-type", b"x"), (b"set-cookie", b"_ga=; Max-Age=0")]


def test_read_undecided_without_cookie() -> None:
    p = policy()
    rc = p.read([], now=NOW)
    assert rc.state is p.undecided and not rc.state.decided and rc.expire == ()


def test_read_valid_cookie() -> None:
    p = policy()
    rc = p.read([cookie_for(p, "analytics") + b"; session=x"], now=NOW)
    assert rc.state.decided and rc.state.granted == {"necessary", "analytics"}
    assert rc.expire == ()


def test_read_tampered_cookie_is_undecided_and_refused_cookies_expire() -> None:
    p = policy()
    good = cookie_for(p, "analytics")
    bad = good.replace(b"analytics", b"marketing")
    rc = p.read([bad, b"_ga=GA1; _fbp=x; session=1; unknown=1"], now=NOW)
    assert not rc.state.decided
    assert rc.expired_names == ("_ga", "_fbp", "unknown")
    assert any(v.startswith(b"_ga=; Max-Age=0") and b"Domain=.example.com" in v for v in rc.expire)
    assert any(v.startswith(b"_ga=; Max-Age=0") and b"Domain" not in v for v in rc.expire)


def test_read_several_cookie_headers_and_a_malformed_pair() -> None:
    p = policy()
    rc = p.read([b"junk; _gid=1", cookie_for(p, "analytics")], now=NOW)
    assert rc.state.allows("analytics") and rc.expire == ()


def test_read_is_cached_per_value_and_expires() -> None:
    p = policy(max_age=3600)
    value = [cookie_for(p, "analytics")]
    first = p.read(value, now=NOW)
    assert p.read(value, now=NOW + 10) is first
    assert not p.read(value, now=NOW + 4000).state.decided


def test_gpc_denies_marketing_even_when_granted() -> None:
    p = policy()
    rc = p.read([cookie_for(p, "analytics", "marketing") + b"; _fbp=1"], gpc=True, now=NOW)
    assert rc.state.gpc and rc.state.allows("analytics") and not rc.state.allows("marketing")
    assert rc.expired_names == ("_fbp",)


def test_blocked_counter_is_bounded() -> None:
    b = BlockedCookies(limit=2)
    b.add(["a", "b", "c", "a"])
    assert b.counts == {"a": 2, "b": 1}


CATS = ["preferences", "analytics", "marketing"]
NAMES = [
    "session",
    "csrftoken",
    "theme",
    "lang",
    "_ga",
    "_ga_X1",
    "_gid",
    "_fbp",
    "IDE",
    "ads_7",
    "other",
    "consent",
]
CONFIG: ConsentConfig = make_config()
POLICY = CookiePolicy(CONFIG)


@given(
    st.sets(st.sampled_from(CATS)),
    st.lists(
        st.tuples(
            st.sampled_from([b"set-cookie", b"Set-Cookie", b"content-type", b"x"]),
            st.tuples(
                st.sampled_from(NAMES), st.sampled_from(["=1", "=; Max-Age=0", "=v; Path=/"])
            ),
        ),
        max_size=12,
    ),
)
def test_filter_never_drops_granted_nor_keeps_refused(granted: set[str], spec: list) -> None:  # type: ignore[type-arg]
    s = state(POLICY, *granted)
    headers = [(k, (n + rest).encode()) for k, (n, rest) in spec]
    out, blocked = POLICY.filter_headers(headers, s)
    kept = [v for k, v in out if k.lower() == b"set-cookie"]
    for k, v in headers:
        if k.lower() != b"set-cookie":
            continue
        name = v.split(b"=")[0].decode()
        category = POLICY.category(name)
        allowed = name == "consent" or (category is not None and category in s.granted)
        if allowed or b"Max-Age=0" in v:
            assert v in kept
        else:
            assert v not in kept and name in blocked
    assert [h for h in out if h[0].lower() != b"set-cookie"] == [
        h for h in headers if h[0].lower() != b"set-cookie"
    ]
