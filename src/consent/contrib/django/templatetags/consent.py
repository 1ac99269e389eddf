"""``{% load consent %}``.

- ``{% if consent|allows:"analytics" %}`` with the context processor, or
  ``{% consent_allows "analytics" as ok %}`` from the request alone;
- ``{% consent_settings_link "Cookie settings" %}``: a link that reopens the banner.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html

from ....config import ConsentConfig
from ....errors import ConsentError
from ....state import ConsentState
from .. import consent_state, settings_config


def _prefix() -> str:
    # Read from the settings each time (tests override them), without
    # validating the whole configuration again when it is a plain dict.
    from django.conf import settings

    data = getattr(settings, "CONSENT", None)
    if isinstance(data, dict):
        return str(data.get("prefix", ConsentConfig.model_fields["prefix"].default))
    return settings_config().prefix


register = template.Library()


def allows(consent: Any, category: str) -> bool:
    """``consent|allows:"analytics"``; false for anything but a ConsentState."""
    return isinstance(consent, ConsentState) and consent.allows(category)


def consent_allows(context: Any, category: str) -> bool:
    request = context.get("request")
    try:
        return request is not None and consent_state(request).allows(category)
    except ConsentError:
        return False


def consent_settings_link(context: Any, text: str = "Cookie settings") -> str:
    request = context.get("request")
    script_name = getattr(request, "META", {}).get("SCRIPT_NAME", "") if request else ""
    href = f"{script_name}{_prefix()}/policy"
    link: str = format_html('<a href="{}" data-consent-open>{}</a>', href, text)
    return link


# Registered by call: the decorators are untyped (Django ships no type hints).
register.filter("allows", allows)
register.simple_tag(consent_allows, takes_context=True)
register.simple_tag(consent_settings_link, takes_context=True)
