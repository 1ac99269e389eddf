"""Litestar: wrapping the application, and the consent state as a dependency.

Litestar applies ``middleware=[...]`` per route handler (one instance per handler,
and paths without a route, like ``/_consent``, never reach it), so the consent
middleware wraps the application object instead:

.. code-block:: python

    from consent.contrib.litestar import consent_app, provide_consent

    app = consent_app(
        Litestar(route_handlers=[...], dependencies={"consent": provide_consent}), config
    )

Handlers then take ``consent: Consent`` (``NamedDependency[ConsentState]``).
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar.di import NamedDependency, Provide

from ..asgi import ConsentMiddleware, get_consent
from ..config import ConsentConfig
from ..log import LogStore
from ..state import ConsentState

__all__ = ["Consent", "consent_app", "consent_state", "provide_consent"]


def consent_state(request: Request[Any, Any, Any]) -> ConsentState:
    """The visitor's :class:`ConsentState` (for ``Provide``)."""
    return get_consent(request)


#: ``dependencies={"consent": provide_consent}``; handlers take ``consent: Consent``.
provide_consent = Provide(consent_state, sync_to_thread=False)

#: The parameter type of the ``consent`` dependency (Litestar >= 2.23 wants it marked).
Consent = NamedDependency[ConsentState]


def consent_app(
    app: Litestar, config: ConsentConfig | str, *, store: LogStore | None = None
) -> ConsentMiddleware:
    """``app`` behind :class:`ConsentMiddleware`; lifespan events still reach it."""
    return ConsentMiddleware(app, config=config, store=store)  # type: ignore[arg-type]
