"""Quart: the middleware around ``app.asgi_app``, the state and a template global.

.. code-block:: python

    app = Quart(__name__)
    ConsentQuart(app, config)

In a view: ``consent_state().allows("analytics")``; in a template:
``{% if consent.allows("analytics") %}``.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, request

from ..asgi import ConsentMiddleware, get_consent
from ..config import ConsentConfig
from ..errors import ConsentError
from ..log import LogStore
from ..state import ConsentState

__all__ = ["ConsentQuart", "consent_state"]

_NOTHING = ConsentState(granted=frozenset())


def consent_state() -> ConsentState:
    """The current visitor's :class:`ConsentState` (inside a request context)."""
    return get_consent(request.scope)


def _template_context() -> dict[str, Any]:
    try:
        return {"consent": consent_state()}
    except (ConsentError, RuntimeError):  # no request, or not through the middleware
        return {"consent": _NOTHING}


class ConsentQuart:
    """Installs :class:`ConsentMiddleware` around ``app.asgi_app``.

    ``ConsentQuart(app, config)`` or, with an application factory,
    ``ext = ConsentQuart(); ext.init_app(app, config)``.
    """

    middleware: ConsentMiddleware | None = None

    def __init__(
        self,
        app: Quart | None = None,
        config: ConsentConfig | str | None = None,
        *,
        store: LogStore | None = None,
    ) -> None:
        if app is not None:
            self.init_app(app, config, store=store)

    def init_app(
        self,
        app: Quart,
        config: ConsentConfig | str | None = None,
        *,
        store: LogStore | None = None,
    ) -> None:
        if config is None:
            config = app.config["CONSENT"]
        # Quart's ASGI types are TypedDicts; the middleware takes any mapping.
        self.middleware = ConsentMiddleware(app.asgi_app, config=config, store=store)  # type: ignore[arg-type]
        app.asgi_app = self.middleware  # type: ignore[method-assign,assignment]
        app.context_processor(_template_context)
        app.extensions["consent"] = self
