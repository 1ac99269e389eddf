"""What the ASGI and WSGI shells share: the parts built once from the configuration."""

from __future__ import annotations

import os

from .banner import Banner
from .config import ConsentConfig
from .core.endpoint import Endpoint, EndpointResponse, error
from .core.page import PageSnippets
from .core.response import BlockedCookies, CookiePolicy
from .errors import ConsentError, LogUnavailable

__all__ = ["Shell", "log_unavailable"]


class Shell:
    """Configuration and everything derived from it; no per-request state."""

    def __init__(self, config: ConsentConfig | str | os.PathLike[str] | None, *, who: str) -> None:
        if config is None:
            raise ConsentError(f"{who} needs config=ConsentConfig(...) or the path of a TOML file")
        if not isinstance(config, ConsentConfig):
            config = ConsentConfig.from_toml(config)
        self.config = config
        self.policy = CookiePolicy(config)
        self.banner = Banner(config)
        self.endpoint = Endpoint(config, self.policy, self.banner)
        #: Names of cookies blocked so far, with counts (for reports): the policy counts.
        self.blocked: BlockedCookies = self.policy.blocked
        self._prefix = config.prefix
        self._gpc = config.gpc
        self._inject = config.inject
        self._exclude = tuple(config.exclude_paths)
        self._window = config.inject_window
        #: The injected snippets, memoised per page and visitor state.
        self.snippets = PageSnippets(self.banner, config.prefix)
        # Texts bundles already archived in the log by this process.
        self._texts_stored: set[str] = set()


def log_unavailable(exc: LogUnavailable) -> EndpointResponse:
    """The answer when a decision could not be recorded: 503, and no cookie set."""
    return error(
        503,
        "log_unavailable",
        f"your choice could not be recorded, so it was not applied; please retry ({exc})",
        [(b"retry-after", b"5")],
    )
