"""Bounded memos that threads may share: the one way the package stores into a cache.

Every cache on the request path is a plain ``dict`` read with ``dict.get`` and
written with :func:`remember`. Each of those is a single dict operation, atomic
under the GIL and internally locked on free-threaded CPython; a full memo is
emptied at once with ``clear()``. Nothing iterates a shared memo or deletes one
key (``del cache[next(iter(cache))]`` raises when two threads evict together),
and each entry is one value, so no reader can see half of what a writer stores.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, size: int) -> V:
    """Store ``value`` under ``key`` in ``memo``, which holds at most ``size`` entries
    (it is emptied first when full); return ``value``."""
    if len(memo) >= size:
        memo.clear()
    memo[key] = value
    return value
