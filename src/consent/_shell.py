"""What the ASGI and WSGI shells share: the parts built once from the configuration,
and the consent log behind the endpoint."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from .banner import Banner
from .config import ConsentConfig
from .core.endpoint import Decision, Endpoint, EndpointResponse, error
from .core.flow import Pipeline
from .core.kernels import sec_gpc
from .core.page import PageSnippets
from .core.response import BlockedCookies, CookiePolicy, RequestConsent
from .errors import ConsentError, LogUnavailable
from .log import LogEntry, LogStore, LogURLError, open_store, redact_secrets

logger = logging.getLogger("consent")

__all__ = ["LogKeeper", "Shell", "environ_headers", "log_unavailable"]


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

    def read_environ(self, environ: dict[str, Any]) -> RequestConsent:
        """The visitor's consent from a PEP 3333 environ (WSGI, Django's ``META``),
        also stored there as ``environ["consent"]``."""
        cookie = environ.get("HTTP_COOKIE")
        # A server joins repeated headers with commas: sec_gpc reads each value.
        gpc_header = environ.get("HTTP_SEC_GPC")
        gpc = (
            self._gpc
            and gpc_header is not None
            and sec_gpc(gpc_header.encode("latin-1", "replace"))
        )
        rc = self.policy.read_header(cookie.encode("latin-1", "replace") if cookie else b"", gpc)
        environ["consent"] = rc.state
        return rc


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
        self._warned_one_by_one = False

    async def store(self) -> LogStore:
        """The consent log, opened on first use; raises :class:`LogUnavailable`."""
        if self._store is not None and self._open:
            return self._store
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._store is None:
                try:
                    self._store = open_store(self._url)
                except LogURLError as exc:  # e.g. the driver it names is not installed
                    raise LogUnavailable(f"cannot open the consent log: {exc}") from exc
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
        """Write ``decision`` durably, all its records or none; raises :class:`LogUnavailable`."""
        entries = [LogEntry(**fields) for fields in decision.records]
        store = await self.store()
        if decision.texts_hash not in self._texts_stored:
            # Before the records, which refer to it; storing it twice changes nothing.
            await store.put_texts(decision.texts_hash, decision.texts_json)
            self._texts_stored.add(decision.texts_hash)
        append_many = getattr(store, "append_many", None)
        if append_many is not None:
            # One transaction: with Sec-GPC a decision is two records, and a 503
            # must not leave the first of them in the log.
            await append_many(entries)
            return
        if not self._warned_one_by_one and len(entries) > 1:
            self._warned_one_by_one = True
            logger.warning(
                "the consent log store %s has no append_many(): a decision's records "
                "are written one at a time, and a failure can leave some of them",
                type(store).__name__,
            )
        for entry in entries:
            await store.append(entry)

    async def settle(self, decision: Decision) -> EndpointResponse:
        """The answer to ``decision``: its response once recorded, else a 503."""
        try:
            await self.record(decision)
        except LogUnavailable as exc:
            return log_unavailable(self._redacted(exc))
        except Exception as exc:
            # A store's own failure (or a bug): the decision is not recorded either.
            return log_unavailable(exc)
        return decision.response

    def _redacted(self, exc: LogUnavailable) -> LogUnavailable:
        """``exc``, or a copy whose message quotes no secret of the log URL."""
        text = str(exc)
        clean = redact_secrets(text, self._url)
        if clean == text:
            return exc
        return LogUnavailable(clean)

    async def close(self) -> None:
        """Close the consent log."""
        if self._store is not None and self._open:
            self._open = False
            await self._store.close()


#: What the visitor is told when the log is down: nothing about the server.
_UNAVAILABLE = "your choice could not be recorded, so it was not applied; please retry"


def log_unavailable(exc: Exception) -> EndpointResponse:
    """The answer when a decision could not be recorded: 503, and no cookie set.

    The visitor gets a generic message; why goes to the ``consent`` logger
    (``exc``'s message, which for :class:`LogUnavailable` names the log with any
    password masked; with a traceback for anything else).
    """
    if isinstance(exc, LogUnavailable):
        logger.error("a consent decision was not recorded and was answered 503: %s", exc)
    else:
        logger.error(
            "a consent decision was not recorded and was answered 503: the log raised %s",
            type(exc).__name__,
            exc_info=exc,
        )
    return error(503, "log_unavailable", _UNAVAILABLE, [(b"retry-after", b"5")])


def environ_headers(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """A PEP 3333 environ's request headers as the core reads them: lowercase bytes
    names, Latin-1 values (the WSGI twin's and Django's consent requests)."""
    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        if value:
            headers.append((name.encode("latin-1"), str(value).encode("latin-1", "replace")))
    return headers
