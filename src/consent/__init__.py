"""asgi-consent: GDPR cookie consent, enforced on the server.

.. code-block:: python

    from consent import Category, ConsentConfig, ConsentMiddleware

    config = ConsentConfig(
        secret_key="...",
        categories=[
            Category(key="necessary", required=True, cookies=["session"]),
            Category(key="analytics", cookies=["_ga", "_ga_*"]),
        ],
    )
    app = ConsentMiddleware(app, config=config)
"""

from __future__ import annotations

from .asgi import ConsentMiddleware as ConsentMiddleware
from .asgi import get_consent as get_consent
from .config import Category as Category
from .config import ConsentConfig as ConsentConfig
from .config import CookieRule as CookieRule
from .config import Theme as Theme
from .errors import BadSignature as BadSignature
from .errors import ConfigError as ConfigError
from .errors import ConsentError as ConsentError
from .errors import LogUnavailable as LogUnavailable
from .state import ConsentState as ConsentState

__all__ = [
    "BadSignature",
    "Category",
    "ConfigError",
    "ConsentConfig",
    "ConsentError",
    "ConsentMiddleware",
    "ConsentState",
    "CookieRule",
    "LogUnavailable",
    "Theme",
    "get_consent",
]
__version__ = "0.1.0"
