"""FastAPI: the consent state as a dependency, and a consent guard.

.. code-block:: python

    from consent.contrib.fastapi import Consent, require_consent

    @app.get("/")
    async def home(consent: Consent) -> dict[str, bool]:
        return {"analytics": consent.allows("analytics")}

    @app.get("/stats", dependencies=[require_consent("analytics")])
    async def stats() -> dict[str, int]: ...
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from ..asgi import get_consent
from ..state import ConsentState

__all__ = ["Consent", "consent_state", "require_consent"]


def consent_state(request: Request) -> ConsentState:
    """The visitor's :class:`ConsentState` (``ConsentMiddleware`` must wrap the app)."""
    return get_consent(request)


#: ``consent: Consent`` in a path operation's parameters.
Consent = Annotated[ConsentState, Depends(consent_state)]


def require_consent(category: str) -> Any:
    """A dependency refusing the request with ``403`` unless ``category`` is granted.

    The answer is JSON: ``{"detail": {"error": "consent_required", "category": …,
    "detail": …}}``.
    """

    def check(consent: Consent) -> ConsentState:
        if not consent.allows(category):
            raise HTTPException(
                status_code=403,
                detail={
                    "error": "consent_required",
                    "category": category,
                    "detail": f"this needs consent to the {category!r} category",
                },
            )
        return consent

    return Depends(check)
