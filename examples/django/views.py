from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from consent.contrib.django import consent_state


def home(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    response = render(
        request,
        "index.html",
        {
            "visits": request.session["visits"],
            "tracked": consent_state(request).allows("analytics"),
        },
    )
    # Set on every visit; the consent middleware drops them until the visitor agrees.
    response.set_cookie("_ga", "GA1.1.1234567890", max_age=2 * 365 * 86400)
    response.set_cookie("_fbp", "fb.1.1234567890", max_age=90 * 86400)
    return response
