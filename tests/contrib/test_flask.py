from __future__ import annotations

from pathlib import Path

import pytest
from examples.flask.app import create_app
from flask import Flask, render_template_string

from consent.contrib.flask import Consent, consent_state

from ..conftest import make_config
from ._flow import Resp, check_flow
from ._server import free_port, http_client, running


def test_example_consent_flow() -> None:
    app = create_app(log="memory://")

    def request(method: str, path: str, headers: dict[str, str], body: bytes) -> Resp:
        r = app.test_client(use_cookies=False).open(path, method=method, headers=headers, data=body)
        return Resp(r.status_code, r.headers.to_wsgi_list(), r.get_data())

    first, second = check_flow(request, {"session"})
    assert b"Analytics is off." in first.body
    assert b"Thank you for allowing analytics." in second.body  # the template global


def test_init_app_with_config_from_app_config() -> None:
    app = Flask(__name__)
    app.config["CONSENT"] = make_config()
    ext = Consent()
    ext.init_app(app)
    assert app.extensions["consent"] is ext and app.wsgi_app is ext.middleware

    @app.get("/")
    def page() -> str:
        return render_template_string(
            "{{ consent.allows('necessary') }} {{ consent.allows('analytics') }} "
            + str(consent_state().decided)
        )

    assert app.test_client().get("/").get_data().startswith(b"True False False")
    with app.test_request_context("/"):  # outside the middleware: nothing granted
        assert render_template_string("{{ consent.allows('necessary') }}") == "False"


@pytest.mark.slow
def test_example_under_flask_run(tmp_path: Path) -> None:
    port = free_port()
    args = ["-m", "flask", "--app", "examples.flask.app", "run", "--port", str(port)]
    with running(args, tmp_path, {}, port):
        check_flow(http_client(port), {"session"})
    assert (tmp_path / "example-consent.db").exists()  # the decision was logged
