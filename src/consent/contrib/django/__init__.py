"""Django: the consent middleware around the project's ASGI or WSGI application.

In ``asgi.py`` (or ``wsgi.py``)::

    from django.core.asgi import get_asgi_application
    from consent.contrib.django import wrap_asgi

    application = wrap_asgi(get_asgi_application())   # wrap_wsgi(get_wsgi_application())

The configuration is ``settings.CONSENT``: a dict with the keys of the TOML file,
or the path of a TOML file. Add ``"consent.contrib.django"`` to ``INSTALLED_APPS``
for ``{% load consent %}`` and ``consent.contrib.django.context_processors.consent``
for ``{{ consent }}`` in templates.
"""

from __future__ import annotations

from typing import Any

from ...asgi import ConsentMiddleware
from ...config import ConsentConfig
from ...errors import ConsentError
from ...log import LogStore
from ...state import ConsentState
from ...wsgi import ConsentWSGIMiddleware

__all__ = ["consent_state", "settings_config", "wrap_asgi", "wrap_wsgi"]


def settings_config() -> ConsentConfig:
    """The :class:`ConsentConfig` described by ``settings.CONSENT``."""
    from django.conf import settings

    data = getattr(settings, "CONSENT", None)
    if data is None:
        raise ConsentError("settings.CONSENT is not set: give it a dict or a TOML file path")
    if isinstance(data, ConsentConfig):
        return data
    if isinstance(data, dict):
        return ConsentConfig.from_mapping(data, source="settings.CONSENT")
    return ConsentConfig.from_toml(str(data))


def wrap_asgi(
    application: Any, config: ConsentConfig | None = None, *, store: LogStore | None = None
) -> ConsentMiddleware:
    """``application`` (from ``get_asgi_application()``) behind :class:`ConsentMiddleware`."""
    return ConsentMiddleware(application, config=config or settings_config(), store=store)


def wrap_wsgi(
    application: Any, config: ConsentConfig | None = None, *, store: LogStore | None = None
) -> ConsentWSGIMiddleware:
    """``application`` (from ``get_wsgi_application()``) behind the WSGI twin."""
    return ConsentWSGIMiddleware(application, config=config or settings_config(), store=store)


def consent_state(request: Any) -> ConsentState:
    """The visitor's :class:`ConsentState` from a Django ``HttpRequest`` (ASGI or WSGI).

    Raises :class:`~consent.errors.ConsentError` when the application is not wrapped.
    """
    # ASGIRequest keeps the scope; WSGIRequest's META is the environ itself.
    scope = getattr(request, "scope", None)
    for source in (scope, getattr(request, "META", None)):
        if source is not None and isinstance(source.get("consent"), ConsentState):
            state: ConsentState = source["consent"]
            return state
    raise ConsentError(
        "no consent state in this request: wrap the application with "
        "consent.contrib.django.wrap_asgi() or wrap_wsgi()"
    )
