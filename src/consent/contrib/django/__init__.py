"""Django: the consent middleware in ``settings.MIDDLEWARE``.

In ``settings.py``::

    INSTALLED_APPS = [..., "consent.contrib.django"]
    MIDDLEWARE = ["consent.contrib.django.ConsentMiddleware", ...]   # first
    CONSENT = {...}

The configuration is ``settings.CONSENT``: a dict with the keys of the TOML file,
or the path of a TOML file. The app gives ``{% load consent %}``, and
``consent.contrib.django.context_processors.consent`` gives ``{{ consent }}`` in
templates. ``wrap_asgi(get_asgi_application())`` and ``wrap_wsgi(...)`` put the
ASGI or WSGI middleware around the whole application instead, for routes outside
Django.
"""

from __future__ import annotations

from typing import Any

from ...asgi import ConsentMiddleware as ConsentASGIMiddleware
from ...config import ConsentConfig
from ...errors import ConsentError
from ...log import LogStore
from ...state import ConsentState
from ...wsgi import ConsentWSGIMiddleware
from ._middleware import ConsentMiddleware

__all__ = ["ConsentMiddleware", "consent_state", "settings_config", "wrap_asgi", "wrap_wsgi"]


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
) -> ConsentASGIMiddleware:
    """``application`` (from ``get_asgi_application()``) behind :class:`consent.ConsentMiddleware`."""
    return ConsentASGIMiddleware(application, config=config or settings_config(), store=store)


def wrap_wsgi(
    application: Any, config: ConsentConfig | None = None, *, store: LogStore | None = None
) -> ConsentWSGIMiddleware:
    """``application`` (from ``get_wsgi_application()``) behind the WSGI twin."""
    return ConsentWSGIMiddleware(application, config=config or settings_config(), store=store)


def consent_state(request: Any) -> ConsentState:
    """The visitor's :class:`ConsentState` from a Django ``HttpRequest`` (ASGI or WSGI).

    Raises :class:`~consent.errors.ConsentError` when the application is not wrapped.
    """
    # ConsentMiddleware sets META; ASGIRequest keeps the scope of wrap_asgi();
    # WSGIRequest's META is the environ itself.
    scope = getattr(request, "scope", None)
    for source in (scope, getattr(request, "META", None)):
        if source is not None and isinstance(source.get("consent"), ConsentState):
            state: ConsentState = source["consent"]
            return state
    raise ConsentError(
        "no consent state in this request: add consent.contrib.django.ConsentMiddleware "
        "to MIDDLEWARE, or wrap the application with wrap_asgi() or wrap_wsgi()"
    )
