"""The exception hierarchy of asgi-consent."""

from __future__ import annotations

__all__ = ["BadSignature", "ConfigError", "ConsentError", "LogUnavailable"]


class ConsentError(Exception):
    """Base class of every error raised by asgi-consent."""


class ConfigError(ConsentError, ValueError):
    """The configuration is invalid.

    ``problems`` lists each problem as ``(location, message)``; ``str()`` of the
    error gives them one per line, each with the fix.
    """

    def __init__(self, problems: list[tuple[str, str]] | str, *, source: str | None = None):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = problems
        self.source = source
        lines = [f"{loc}: {msg}" if loc else msg for loc, msg in problems]
        head = f"invalid consent configuration{f' in {source}' if source else ''}"
        super().__init__(head + ":\n  " + "\n  ".join(lines))


class BadSignature(ConsentError):
    """A signed value did not verify. ``payload`` is the value as received."""

    def __init__(self, message: str, payload: bytes | str | None = None):
        super().__init__(message)
        self.payload = payload


class LogUnavailable(ConsentError):
    """The consent log could not durably record a decision."""
