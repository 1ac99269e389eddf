"""A small Flask site behind the WSGI twin of ConsentMiddleware.

Run: ``.venv/bin/flask --app examples.flask.app run`` and open http://127.0.0.1:5000
"""

from __future__ import annotations

import os

from flask import Flask, Response, render_template_string, session

from consent import Category, ConsentConfig
from consent.contrib.flask import Consent, consent_state

SECRET = os.environ.get("CONSENT_SECRET_KEY", "example-only-secret-change-me-0123456789")

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Example shop</title></head>
<body>
<h1>Welcome to the example shop</h1>
<p>Visit number {{ visits }} (counted in the session cookie).</p>
{% if consent.allows("analytics") %}<p>Thank you for allowing analytics.</p>
{% else %}<p>Analytics is off.</p>{% endif %}
<script type="text/plain" data-consent="analytics">console.log("analytics loaded");</script>
</body>
</html>
"""


def create_app(log: str = "sqlite:///example-consent.db") -> Flask:
    app = Flask(__name__)
    app.secret_key = SECRET
    Consent(
        app,
        ConsentConfig(
            secret_key=SECRET,
            log=log,
            controller="Example Shop Ltd",
            categories=[
                # Flask's session cookie is strictly necessary.
                Category(key="necessary", required=True, cookies=["session"]),
                Category(key="analytics", cookies=["_ga", "_ga_*"]),
                Category(key="marketing", cookies=["_fbp"]),
            ],
        ),
    )

    @app.get("/")
    def home() -> Response:
        session["visits"] = session.get("visits", 0) + 1
        app.logger.debug("analytics allowed: %s", consent_state().allows("analytics"))
        response = Response(render_template_string(PAGE, visits=session["visits"]))
        # Set on every visit; the consent middleware drops them until the visitor agrees.
        response.set_cookie("_ga", "GA1.1.1234567890", max_age=2 * 365 * 86400)
        response.set_cookie("_fbp", "fb.1.1234567890", max_age=90 * 86400)
        return response

    return app


app = create_app()
