from __future__ import annotations

from django.apps import AppConfig


class ConsentAppConfig(AppConfig):  # type: ignore[misc]  # Django has no stubs here
    name = "consent.contrib.django"
    label = "consent"
    verbose_name = "Cookie consent"
