from __future__ import annotations

import time

import pytest

from consent.errors import BadSignature, ConfigError
from consent.signing import Signer
from consent.state import ConsentState, StateCodec

KEY = "k" * 32
OPTIONAL = ("preferences", "analytics", "marketing", "social", "video", "ads", "personalization")
REQUIRED = frozenset({"necessary"})


def codec(keys: str | list[str] = KEY, revision: int = 1, max_age: int = 3600) -> StateCodec:
    return StateCodec(
        Signer(keys), revision=revision, max_age=max_age, required=REQUIRED, optional=OPTIONAL
    )


def granted(*keys: str) -> ConsentState:
    return ConsentState(
        granted=frozenset(keys) | REQUIRED, decided=True, revision=1, source="banner"
    )


def test_round_trip() -> None:
    c = codec()
    value = c.encode(granted("analytics"))
    state = c.decode(value)
    assert state is not None
    assert state.decided and state.granted == {"necessary", "analytics"}
    assert state.allows("necessary") and state.allows("analytics") and not state.allows("marketing")
    assert state.consent_id is not None and len(state.consent_id) == 22


def test_cookie_is_compact_for_eight_categories() -> None:
    value = codec().encode(granted(*OPTIONAL))
    assert len(value) < 200, len(value)


def test_tampered_value_is_undecided() -> None:
    c = codec()
    value = c.encode(granted("analytics"))
    assert c.decode(value.replace("analytics", "marketing")) is None
    assert c.decode(value[:-2] + "AA") is None
    assert c.decode("garbage") is None
    assert c.decode("") is None
    assert c.decode("x" * 5000) is None


def test_other_revision_is_undecided() -> None:
    value = codec(revision=1).encode(granted("analytics"))
    assert codec(revision=2).decode(value) is None


def test_expired_cookie_is_undecided() -> None:
    c = codec(max_age=60)
    state = ConsentState(
        granted=REQUIRED, decided=True, revision=1, issued_at=int(time.time()) - 120
    )
    assert c.decode(c.encode(state)) is None
    assert c.decode(c.encode(state), now=time.time() - 100) is not None


def test_key_rotation_old_cookies_still_verify() -> None:
    old = codec(["old-key-0123456789ab"]).encode(granted("marketing"))
    rotated = codec(["new-key-0123456789ab", "old-key-0123456789ab"])
    assert rotated.decode(old) is not None
    assert codec(["new-key-0123456789ab"]).decode(old) is None
    new = rotated.encode(granted("marketing"))
    assert codec(["new-key-0123456789ab"]).decode(new) is not None


def test_unknown_categories_in_a_valid_cookie_are_ignored() -> None:
    c = codec()
    state = c.decode(c.encode(granted("analytics", "gone")))
    assert state is not None and state.granted == {"necessary", "analytics"}


def test_signer_rejects_short_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError):
        Signer("short")
    s = Signer(KEY)
    assert s.unsign(s.sign(b"payload")) == b"payload"
    with pytest.raises(BadSignature) as exc:
        s.unsign(b"nosignature")
    assert exc.value.payload == b"nosignature"


def test_gpc_denies_opt_out_categories() -> None:
    c = codec()
    s = c.with_gpc(granted("analytics", "marketing"), frozenset({"marketing"}))
    assert s.gpc and s.granted == {"necessary", "analytics"} and s.gpc_denied == {"marketing"}
