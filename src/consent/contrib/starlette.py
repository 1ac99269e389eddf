"""Starlette: the consent state in Jinja2 templates.

.. code-block:: python

    templates = Jinja2Templates(directory="templates")
    install_jinja(templates)
    app = Starlette(routes=[...], middleware=[Middleware(ConsentMiddleware, config=config)])

and in a template: ``{% if consent.allows("analytics") %}…{% endif %}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from ..asgi import get_consent
from ..errors import ConsentError
from ..state import ConsentState

__all__ = ["consent_context", "install_jinja"]

# What a template sees on a request ConsentMiddleware did not handle (an error
# page rendered outside it): nothing optional is allowed.
_NOTHING = ConsentState(granted=frozenset())


def consent_context(request: Request) -> dict[str, Any]:
    """A Jinja2 context processor: ``consent`` is the visitor's :class:`ConsentState`."""
    try:
        return {"consent": get_consent(request)}
    except ConsentError:
        return {"consent": _NOTHING}


def install_jinja(templates: Jinja2Templates) -> Jinja2Templates:
    """Make ``consent`` available in every template ``templates`` renders."""
    if consent_context not in templates.context_processors:
        templates.context_processors.append(consent_context)
    return templates
