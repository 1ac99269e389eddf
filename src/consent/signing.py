"""HMAC-SHA256 signing with key rotation.

The newest key signs; every key in the list verifies, so a key can be rotated
without logging anybody out of their consent: put the new key first, keep the
old one after it for as long as cookies signed with it may live.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from .errors import BadSignature, ConfigError

__all__ = ["Signer", "b64decode", "b64encode"]

_SEP = b"."


def b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64decode(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class Signer:
    """Signs and verifies byte strings: ``payload + b"." + base64url(mac)``.

    ``keys`` is one secret or a sequence of secrets, **newest first**. Each
    secret is stretched with a purpose string (``salt``) so the same secret used
    elsewhere in the application never yields the same MAC.
    """

    def __init__(self, keys: str | bytes | Sequence[str | bytes], *, salt: bytes = b"consent"):
        if isinstance(keys, str | bytes):
            keys = [keys]
        raw = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
        if not raw or any(len(k) < 16 for k in raw):
            raise ConfigError(
                [
                    (
                        "secret_key",
                        "each secret key must be at least 16 characters long; "
                        "generate one with `consent keygen`",
                    )
                ]
            )
        self._keys = [
            hmac.new(k, b"asgi-consent.signer." + salt, hashlib.sha256).digest() for k in raw
        ]

    def _mac(self, key: bytes, payload: bytes) -> bytes:
        return b64encode(hmac.new(key, payload, hashlib.sha256).digest())

    def sign(self, payload: bytes) -> bytes:
        """Return ``payload`` with the newest key's signature appended."""
        return payload + _SEP + self._mac(self._keys[0], payload)

    def unsign(self, signed: bytes) -> bytes:
        """Return the payload of ``signed``; raise :class:`BadSignature` if no key verifies it."""
        payload, sep, mac = signed.rpartition(_SEP)
        if not sep:
            raise BadSignature("no signature", signed)
        for key in self._keys:
            if hmac.compare_digest(self._mac(key, payload), mac):
                return payload
        raise BadSignature("signature does not match", signed)
