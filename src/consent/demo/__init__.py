"""``consent demo``: a small news site behind :class:`~consent.ConsentMiddleware`.

It shows every part of the library at work on one machine, with no internet:
a server-set marketing cookie (``_fbp``) that is dropped until marketing is
granted, a self-hosted analytics script that runs only after consent, a video
iframe gated by ``marketing``, a login that sets a strictly necessary
``session`` cookie, a text-size preference, and the consent log in SQLite that
``consent audit`` verifies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..asgi import ConsentMiddleware, get_consent
from ..config import ConsentConfig

__all__ = ["config_path", "create_app", "load_secret_key", "run"]

_TEXT_SIZES = ("normal", "large")


@dataclass(frozen=True, slots=True)
class Article:
    slug: str
    section: str
    title: str
    standfirst: str
    author: str
    date: str
    minutes: int
    paragraphs: tuple[str, ...]


ARTICLES: tuple[Article, ...] = (
    Article(
        slug="harbour-wall-reopens",
        section="Town",
        title="Harbour wall reopens after a winter of repairs",
        standfirst="Walkers are back on the old sea wall, four months and 1,200 new granite blocks later.",
        author="Mira Okafor",
        date="12 May 2025",
        minutes=3,
        paragraphs=(
            "The eastern harbour wall reopened on Saturday morning, ending a closure that began "
            "when January's storms lifted whole sections of paving into the sea.",
            "Engineers replaced 1,200 granite blocks and anchored the parapet with stainless "
            "steel ties. \u201cIt should see out the century,\u201d said site manager Tom Rees.",
            "The steps down to the lower landing stay closed until the handrail is fitted, "
            "which the council expects by the end of the month.",
        ),
    ),
    Article(
        slug="ferry-timetable",
        section="Transport",
        title="Summer ferry timetable adds a late sailing on Fridays",
        standfirst="The 22:40 crossing returns after three years, on a trial until September.",
        author="Daniel Haas",
        date="11 May 2025",
        minutes=2,
        paragraphs=(
            "Islanders who work evening shifts on the mainland have campaigned for the late "
            "boat since it was cut in 2022.",
            "The operator says the trial will continue if the average load passes 60 "
            "passengers. Tickets cost the same as daytime fares.",
        ),
    ),
    Article(
        slug="lifeboat-crew",
        section="People",
        title="Lifeboat crew marks 150 years with an open day",
        standfirst="Visitors can board the all-weather boat and try on a drysuit on Sunday.",
        author="Aisha Rahman",
        date="9 May 2025",
        minutes=4,
        paragraphs=(
            "The station was founded in 1875 after a schooner was lost within sight of the "
            "quay. Today 24 volunteers answer around 40 calls a year.",
            "Helm Sarah Lind, who joined at seventeen, will lead tours of the boathouse "
            "every half hour from ten o'clock.",
            "Donations on the day go to a new launching tractor.",
        ),
    ),
    Article(
        slug="market-hall",
        section="Business",
        title="Market hall traders vote to open on Sundays",
        standfirst="Twenty-nine of the thirty-four stallholders backed the change.",
        author="Mira Okafor",
        date="7 May 2025",
        minutes=3,
        paragraphs=(
            "Sunday trading starts in June, from nine until two. The fishmongers will sit it "
            "out: there is no landing on Saturdays.",
            "The hall's manager hopes cruise passengers, who arrive mostly at weekends, will "
            "make the difference.",
        ),
    ),
)
_BY_SLUG = {a.slug: a for a in ARTICLES}


def config_path() -> Path:
    """The demo's ``consent.toml``, shipped inside the package."""
    return Path(str(resources.files(__package__) / "consent.toml"))


def load_secret_key(db: str | os.PathLike[str]) -> tuple[str, str]:
    """The demo's secret key and where it came from.

    ``CONSENT_SECRET_KEY`` wins; otherwise a key kept in a file next to the
    database (``consent-demo.key`` beside ``consent-demo.db``), created on first
    use, so consent cookies stay valid across restarts.
    """
    env = os.environ.get("CONSENT_SECRET_KEY", "").strip()
    if env:
        return env, "the CONSENT_SECRET_KEY environment variable"
    key_file = Path(db).with_suffix(".key")
    try:
        key = key_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if len(key) < 16:
        key = secrets.token_urlsafe(32)
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
        return key, f"{key_file} (new; delete it to forget every visitor's choice)"
    return key, f"{key_file}"


def _templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("consent.demo", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def create_app(
    db: str | os.PathLike[str] = "consent-demo.db", secret_key: str | None = None
) -> Starlette:
    """The demo site wrapped in :class:`~consent.ConsentMiddleware`.

    ``db`` is the SQLite consent log; ``secret_key`` defaults to
    :func:`load_secret_key`.
    """
    if secret_key is None:
        secret_key, _ = load_secret_key(db)
    config = ConsentConfig.from_toml(config_path(), secret_key=secret_key, log=_log_url(db))
    templates = _templates()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        # A fresh nonce per page: the middleware finds it in the CSP header and puts
        # it on the banner's script, and consent.js carries it over to gated scripts.
        nonce = secrets.token_urlsafe(16)
        state = get_consent(request)
        size = request.cookies.get("text_size", "normal")
        context.update(
            nonce=nonce,
            consent=state,
            received=sorted(request.cookies),
            text_size=size if size in _TEXT_SIZES else "normal",
            user=request.cookies.get("session"),
            path=request.url.path,
        )
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["content-security-policy"] = (
            f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
            "img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'self'"
        )
        if "_fbp" not in request.cookies:
            # What an advertising pixel's server-side integration does on every page.
            # The middleware drops this header unless the visitor granted "marketing".
            response.set_cookie(
                "_fbp",
                f"fb.1.{int(time.time() * 1000)}.{secrets.randbelow(10**10)}",
                max_age=7_776_000,
                samesite="lax",
            )
        return response

    async def home(request: Request) -> Response:
        return page(request, "home.html", lead=ARTICLES[0], articles=ARTICLES[1:])

    async def article(request: Request) -> Response:
        found = _BY_SLUG.get(request.path_params["slug"])
        if found is None:
            return page(request, "404.html", status=404)
        others = [a for a in ARTICLES if a is not found][:3]
        return page(request, "article.html", article=found, others=others)

    async def video(request: Request) -> Response:
        return page(request, "video.html")

    async def player(request: Request) -> Response:
        response = templates.TemplateResponse(request, "player.html", {})
        if "tube_visitor" not in request.cookies:
            response.set_cookie(
                "tube_visitor", secrets.token_hex(8), max_age=15_552_000, samesite="lax"
            )
        return response

    async def privacy(request: Request) -> Response:
        return page(request, "privacy.html", controller=config.controller)

    async def login(request: Request) -> Response:
        error = None
        if request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            name = form.get("name", "").strip()
            if name.isalnum() and len(name) <= 32:
                response = RedirectResponse("/account", status_code=303)
                # Strictly necessary: the middleware lets it through for everyone.
                response.set_cookie("session", name, httponly=True, samesite="lax")
                return response
            error = "Use 1 to 32 letters or digits."
        return page(request, "login.html", status=400 if error else 200, error=error)

    async def account(request: Request) -> Response:
        if not request.cookies.get("session"):
            return RedirectResponse("/login", status_code=303)
        return page(request, "account.html")

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie("session")
        return response

    async def text_size(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        size = form.get("size", "normal")
        back = form.get("next", "/")
        if not back.startswith("/") or back.startswith("//"):
            back = "/"
        response = RedirectResponse(back, status_code=303)
        # A preference: dropped by the middleware unless "preferences" is granted.
        response.set_cookie(
            "text_size",
            size if size in _TEXT_SIZES else "normal",
            max_age=31_536_000,
            samesite="lax",
        )
        return response

    async def favicon(request: Request) -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    async def not_found(request: Request, exc: Exception) -> Response:
        return page(request, "404.html", status=404)

    routes = [
        Route("/", home),
        Route("/articles/{slug}", article),
        Route("/video", video),
        Route("/embed/player", player),
        Route("/privacy", privacy),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/account", account),
        Route("/logout", logout, methods=["POST"]),
        Route("/text-size", text_size, methods=["POST"]),
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(packages=[("consent.demo", "static")]), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(ConsentMiddleware, config=config)],
        exception_handlers={404: not_found},
    )


def _log_url(db: str | os.PathLike[str]) -> str:
    # "sqlite:///" + "consent-demo.db" is relative, + "/tmp/x.db" absolute.
    return f"sqlite:///{os.fspath(db)}"


def _port_free(host: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _command() -> str:
    """How to call ``consent`` from another terminal: by name if it is on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "consent")
    found = shutil.which("consent")
    if found and os.path.realpath(found) == os.path.realpath(here):
        return "consent"
    return os.path.relpath(here) if os.path.exists(here) else "consent"


def _banner(url: str, db: str, key_source: str) -> str:
    log = _log_url(db)
    consent = _command()
    return f"""
  asgi-consent demo: the Harbour Gazette, a small news site
  ---------------------------------------------------------
  Open  {url}

  Things to try:
    1. Reject all   -> only necessary cookies; "analytics ran" never shows;
                       the _fbp cookie the server sets on every page is dropped.
    2. Cookie settings (footer, or the button at the bottom left) -> Customise
                    -> tick Analytics only -> Save choices.
    3. Accept all   -> the analytics script runs, the video on /video loads.
    4. Withdraw consent (Cookie settings -> Customise) -> the cookies are expired.
    5. Sign in on /login: the "session" cookie is necessary and always allowed.

  Every choice is a record in the consent log ({db}). In another terminal:
    {consent} audit verify --log {log}
    {consent} audit export --log {log}
    {consent} audit stats  --log {log}

  Secret key: {key_source}
  Cookie policy: {url}/_consent/policy
  Press Ctrl-C to stop.
"""


def run(host: str = "127.0.0.1", port: int = 8000, db: str = "consent-demo.db") -> int:
    """Serve the demo with uvicorn until Ctrl-C; returns the exit status."""
    try:
        import uvicorn
    except ImportError:
        print(
            "consent demo needs uvicorn: pip install 'asgi-consent[server]'",
            file=sys.stderr,
        )
        return 1
    problem = _port_free(host, port)
    if problem is not None:
        if problem.errno == errno.EADDRINUSE:
            print(
                f"consent demo: port {port} on {host} is already in use (another demo?).\n"
                f"Stop that program, or pick another port: consent demo --port {port + 1}"
                f"  (with make: make demo PORT={port + 1})",
                file=sys.stderr,
            )
        else:
            print(f"consent demo: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
        return 1
    secret_key, key_source = load_secret_key(db)
    app = create_app(db, secret_key=secret_key)
    shown_host = f"[{host}]" if ":" in host else host
    print(_banner(f"http://{shown_host}:{port}", db, key_source), flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    # On Ctrl-C uvicorn shuts down gracefully, then raises the captured signal again.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        print("consent demo: the server did not start (see the message above)", file=sys.stderr)
        return 1
    print("Demo stopped. The consent log is kept in", db)
    return 0
