"""What the ASGI and WSGI shells share: the parts built once from the configuration,
and the consent log behind the endpoint."""

from __future__ import annotations

import asyncio
import os

from .banner import Banner
from .config import ConsentConfig
from .core.endpoint import Decision, Endpoint, EndpointResponse, error
from .core.flow import Pipeline
from .core.page import PageSnippets
from .core.response import BlockedCookies, CookiePolicy
from .errors import ConsentError, LogUnavailable
from .log import LogEntry, LogStore, open_store

__all__ = ["LogKeeper", "Shell", "log_unavailable"]


class Shell:
    """Configuration and everything derived from it; no per-request state."""

    def __init__(
        self,
        config: ConsentConfig | str | os.PathLike[str] | None,
        *,
        who: str,
        store: LogStore | None = None,
    ) -> None:
        if config is None:
            raise ConsentError(f"{who} needs config=ConsentConfig(...) or the path of a TOML file")
        if not isinstance(config, ConsentConfig):
            config = ConsentConfig.from_toml(config)
        self.config = config
        self.policy = CookiePolicy(config)
        self.banner = Banner(config)
        self.endpoint = Endpoint(config, self.policy, self.banner)
        #: The injected snippets, memoised per page and visitor state.
        self.snippets = PageSnippets(self.banner, config.prefix)
        #: What every response flow shares.
        self.pipeline = Pipeline(config, self.policy, self.snippets)
        #: Names of cookies blocked so far, with counts (for reports): the policy counts.
        self.blocked: BlockedCookies = self.policy.blocked
        #: The consent log, opened on first use.
        self.log = LogKeeper(config, store)
        self._prefix = config.prefix
        self._gpc = config.gpc


class LogKeeper:
    """The consent log behind the endpoint: opened on first use, reopened after a
    failure; a decision is acknowledged only once its records are durable.

    Its methods are coroutines: the ASGI shell awaits them, the WSGI shell runs them
    on a :class:`~consent.log.LoopThread`.
    """

    def __init__(self, config: ConsentConfig, store: LogStore | None = None) -> None:
        self._url = config.log
        self._store = store
        self._open = False
        self._lock: asyncio.Lock | None = None
        # Texts bundles already archived in the log by this process.
        self._texts_stored: set[str] = set()

    async def store(self) -> LogStore:
        """The consent log, opened on first use; raises :class:`LogUnavailable`."""
        if self._store is not None and self._open:
            return self._store
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._store is None:
                self._store = open_store(self._url)
            if not self._open:
                try:
                    await self._store.open()
                except LogUnavailable:
                    raise
                except Exception as exc:
                    raise LogUnavailable(f"cannot open the consent log: {exc}") from exc
                self._open = True
        return self._store

    async def record(self, decision: Decision) -> None:
        """Write ``decision`` durably; raises :class:`LogUnavailable`."""
        store = await self.store()
        if decision.texts_hash not in self._texts_stored:
            await store.put_texts(decision.texts_hash, decision.texts_json)
            self._texts_stored.add(decision.texts_hash)
        for fields in decision.records:
            await store.append(LogEntry(**fields))

    async def settle(self, decision: Decision) -> EndpointResponse:
        """The answer to ``decision``: its response once recorded, else a 503."""
        try:
            await self.record(decision)
        except LogUnavailable as exc:
            return log_unavailable(exc)
        return decision.response

    async def close(self) -> None:
        """Close the consent log."""
        if self._store is not None and self._open:
            self._open = False
            await self._store.close()


def log_unavailable(exc: LogUnavailable) -> EndpointResponse:
    """The answer when a decision could not be recorded: 503, and no cookie set."""
    return error(
        503,
        "log_unavailable",
        f"your choice could not be recorded, so it was not applied; please retry ({exc})",
        [(b"retry-after", b"5")],
    )
