"""Flask: the WSGI twin around ``app.wsgi_app``, the state and a template global.

.. code-block:: python

    app = Flask(__name__)
    Consent(app, config)          # or Consent().init_app(app, config)

In a view: ``consent_state().allows("analytics")``; in a template:
``{% if consent.allows("analytics") %}``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, request

from ..config import ConsentConfig
from ..log import LogStore
from ..state import ConsentState
from ..wsgi import ConsentWSGIMiddleware, get_consent

__all__ = ["Consent", "consent_state"]

_NOTHING = ConsentState(granted=frozenset())


def consent_state() -> ConsentState:
    """The current visitor's :class:`ConsentState` (inside a request context)."""
    state: ConsentState = get_consent(request.environ)
    return state


def _template_context() -> dict[str, Any]:
    if has_request_context() and "consent" in request.environ:
        return {"consent": request.environ["consent"]}
    return {"consent": _NOTHING}


class Consent:
    """The Flask extension: installs :class:`ConsentWSGIMiddleware` around ``app.wsgi_app``.

    ``config`` defaults to ``app.config["CONSENT"]`` (a :class:`ConsentConfig`
    or a TOML path).
    """

    middleware: ConsentWSGIMiddleware | None = None

    def __init__(
        self,
        app: Flask | None = None,
        config: ConsentConfig | str | None = None,
        *,
        store: LogStore | None = None,
    ) -> None:
        if app is not None:
            self.init_app(app, config, store=store)

    def init_app(
        self,
        app: Flask,
        config: ConsentConfig | str | None = None,
        *,
        store: LogStore | None = None,
    ) -> None:
        if config is None:
            config = app.config["CONSENT"]
        self.middleware = ConsentWSGIMiddleware(app.wsgi_app, config=config, store=store)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        app.context_processor(_template_context)
        app.extensions["consent"] = self
