"""``"consent.contrib.django.context_processors.consent"`` in ``TEMPLATES``."""

from __future__ import annotations

from typing import Any

from ...errors import ConsentError
from ...state import ConsentState
from . import consent_state

_NOTHING = ConsentState(granted=frozenset())


def consent(request: Any) -> dict[str, ConsentState]:
    """``{{ consent }}``: the visitor's state (nothing granted if the app is not wrapped)."""
    try:
        return {"consent": consent_state(request)}
    except ConsentError:
        return {"consent": _NOTHING}
