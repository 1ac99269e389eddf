"""The consent endpoint as pure logic: a request in, a response (or a decision) out.

The shells read the body (at most :data:`MAX_BODY` bytes), call
:meth:`Endpoint.handle`, and for a :class:`Decision` write its log records and,
only once the log accepted them, send its response.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, parse_qsl

from ..config import ConsentConfig
from ..state import ConsentState, new_consent_id
from .cookies import parse_cookie_header
from .privacy import browser_family, truncate_ip
from .response import CookiePolicy

__all__ = [
    "MAX_BODY",
    "MAX_JSON_DEPTH",
    "Decision",
    "Endpoint",
    "EndpointRequest",
    "EndpointResponse",
    "browser_family",
    "declared_length",
    "endpoint_subpath",
    "too_large",
    "truncate_ip",
]

MAX_BODY = 16 * 1024
#: How deeply a JSON body may nest; a consent request needs two levels.
MAX_JSON_DEPTH = 32
Headers = list[tuple[bytes, bytes]]
ACTIONS = ("accept_all", "reject_all", "save", "withdraw")
_SOURCES = ("banner", "settings", "api")
_CTRL = re.compile(r"[\x00-\x1f\x7f]")
# A JSON string, removed before the brackets are counted. Scanning left to right it
# matches exactly the strings of valid JSON; on invalid JSON it can only miscount
# after the point where the parser stops. It never fails once it has seen a quote
# (an unterminated string runs to the end), so the scan is linear in the body.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
#: Digits in a JSON integer; int() refuses more than 4,300 with a long message.
_MAX_JSON_DIGITS = 40
_MAX_FIELDS = 64
#: What a Content-Length too long to be a real one reads as.
_HUGE = 10**18


class BannerLike(Protocol):
    """What the endpoint needs from :class:`consent.banner.Banner`."""

    def negotiate(self, accept_language: str | None, override: str | None = None) -> str: ...
    def texts_bundle(self, locale: str) -> tuple[str, str]: ...
    def static(self, name: str) -> tuple[bytes, str, str] | None: ...
    def policy_page(
        self, state: ConsentState, locale: str, *, prefix: str, nonce: str | None = None
    ) -> str: ...
    def banner_fragment(
        self, state: ConsentState, locale: str, *, prefix: str, next_url: str = "/"
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    method: str
    #: The path below the prefix: ``""``, ``"/policy"``, ``"/static/consent.js"``.
    subpath: str
    headers: Headers
    scheme: str
    #: Where the application is mounted (``root_path``), for redirects.
    root_path: str = ""
    client_ip: str | None = None
    query: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]


@dataclass(frozen=True, slots=True)
class EndpointResponse:
    status: int
    headers: Headers
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision to record; send :attr:`response` only after the log accepted it."""

    state: ConsentState
    #: One dict of :class:`consent.log.LogEntry` fields per record to write.
    records: list[dict[str, Any]]
    texts_hash: str
    texts_json: str
    response: EndpointResponse = field(repr=False)


def _json(
    status: int, payload: Mapping[str, Any], extra: Headers | None = None
) -> EndpointResponse:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if extra:
        headers.extend(extra)
    return EndpointResponse(status, headers, body)


def error(status: int, code: str, detail: str, extra: Headers | None = None) -> EndpointResponse:
    """A JSON error: ``{"error": code, "detail": detail}``; never sets a cookie."""
    return _json(status, {"error": code, "detail": detail}, extra)


def _shown(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters: what an error may echo of the input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Refused(ValueError):
    """JSON that parses but that the endpoint will not read (the message says why)."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # pragma: no branch - a repeated key is there
            if key in seen:
                raise _Refused(f"field {_shown(key)} is repeated")
            seen.add(key)
    return obj


def _json_int(digits: str) -> int:
    if len(digits) > _MAX_JSON_DIGITS:
        raise _Refused(f"a number in the JSON body has more than {_MAX_JSON_DIGITS} digits")
    return int(digits)


def _json_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON (NaN and Infinity are refused)")


def _too_deep(text: str) -> bool:
    """Whether the JSON ``text`` nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False  # the common case: too few brackets to nest that deep
    depth = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _load_json(text: str) -> dict[str, Any] | str:
    """The JSON object in ``text``, or why it is refused (a short message).

    Bounded: nesting deeper than :data:`MAX_JSON_DEPTH` is refused before it is
    parsed (the parser recurses once per level), as are integers longer than 40
    digits, ``NaN``/``Infinity`` and an object that repeats a key (the last one
    would silently win, as a repeated form field would).
    """
    if _too_deep(text):
        return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        parsed = json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_int=_json_int,
            parse_constant=_json_constant,
        )
    except _Refused as exc:
        return str(exc)
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except (ValueError, RecursionError):  # pragma: no cover - defensive: bounded above
        return "malformed JSON"
    if not isinstance(parsed, dict):
        return "the JSON body must be an object"
    return parsed


class Endpoint:
    """Serves ``{prefix}``, ``{prefix}/policy``, ``{prefix}/banner``, ``{prefix}/static/*``
    and ``gpc.json``."""

    def __init__(self, config: ConsentConfig, policy: CookiePolicy, banner: BannerLike) -> None:
        self.config = config
        self.policy = policy
        self.banner = banner
        self.prefix = config.prefix
        self._optional = frozenset(policy.optional)
        self._gpc_json = json.dumps(
            {"gpc": True, "lastUpdate": (config.gpc_last_update or date.today()).isoformat()}
        ).encode()

    # -- helpers --------------------------------------------------------------------
    def _cookie_header(self, state: ConsentState, secure: bool) -> bytes:
        value = self.policy.codec.encode(state)
        parts = [
            f"{self.config.cookie_name}={value}",
            f"Max-Age={self.config.max_age}",
            "Path=/",
            "SameSite=Lax",
        ]
        if self.config.cookie_domain:
            parts.append(f"Domain={self.config.cookie_domain}")
        if secure:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")

    def _secure(self, req: EndpointRequest) -> bool:
        if self.config.secure == "auto":
            return req.scheme in ("https", "wss")
        return bool(self.config.secure)

    def cross_site(self, req: EndpointRequest) -> str | None:
        """Why a state-changing request is refused as cross-site, or ``None``."""
        site = req.header(b"sec-fetch-site")
        if site is not None:
            if site.strip().lower() not in (b"same-origin", b"none"):
                shown = _shown(site.decode("latin-1"))
                return f"Sec-Fetch-Site is {shown}; only same-origin posts are accepted"
            return None
        origin = req.header(b"origin")
        if origin is None:
            return None  # not a browser, or an old one: nothing claims another site
        host = req.header(b"host") or b""
        if origin.strip().lower() != f"{req.scheme}://".encode() + host.strip().lower():
            return f"Origin {_shown(origin.decode('latin-1'))} is not this site"
        return None

    def _safe_next(self, raw: str | None, req: EndpointRequest) -> str:
        home = (req.root_path or "") + "/"
        if not raw or _CTRL.search(raw) or not raw.startswith("/") or raw.startswith(("//", "/\\")):
            return home
        if "\\" in raw:
            return home
        return raw

    # -- dispatch --------------------------------------------------------------------
    def handle(
        self, req: EndpointRequest, body: bytes, state: ConsentState
    ) -> EndpointResponse | Decision:
        """Answer ``req``; ``state`` is the visitor's current consent."""
        if req.subpath == "/.well-known/gpc.json":
            if req.method not in ("GET", "HEAD"):
                return error(405, "method_not_allowed", "use GET", [(b"allow", b"GET, HEAD")])
            return EndpointResponse(
                200,
                [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._gpc_json)).encode()),
                    (b"cache-control", b"public, max-age=86400"),
                ],
                self._gpc_json,
            )
        if req.subpath in ("", "/"):
            if req.method in ("GET", "HEAD"):
                return _json(200, state.as_json(), [(b"vary", b"Cookie, Sec-GPC")])
            if req.method == "POST":
                return self._post(req, body, state)
            return error(
                405, "method_not_allowed", "use GET or POST", [(b"allow", b"GET, HEAD, POST")]
            )
        if req.subpath in ("/policy", "/banner"):
            if req.method not in ("GET", "HEAD"):
                return error(405, "method_not_allowed", "use GET", [(b"allow", b"GET, HEAD")])
            locale = self._locale(req)
            prefix = req.root_path + self.prefix
            if req.subpath == "/policy":
                text = self.banner.policy_page(state, locale, prefix=prefix)
            else:
                # The settings layer consent.js fetches for a decided visitor, whose
                # pages carry only the "Cookie settings" control. Its form returns to
                # the page the visitor was on, when that is a path of this site.
                text = self.banner.banner_fragment(
                    state, locale, prefix=prefix, next_url=self._safe_next(self._next(req), req)
                )
            page = text.encode()
            return EndpointResponse(
                200,
                [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(page)).encode()),
                    (b"cache-control", b"private, no-cache"),
                    (b"vary", b"Cookie, Accept-Language, Sec-GPC"),
                ],
                page,
            )
        if req.subpath.startswith("/static/"):
            return self._static(req)
        return error(
            404, "not_found", f"no such consent resource: {_shown(self.prefix + req.subpath, 80)}"
        )

    def _static(self, req: EndpointRequest) -> EndpointResponse:
        if req.method not in ("GET", "HEAD"):
            return error(405, "method_not_allowed", "use GET", [(b"allow", b"GET, HEAD")])
        found = self.banner.static(req.subpath.removeprefix("/static/"))
        if found is None:
            return error(404, "not_found", f"no such file: {_shown(req.subpath, 80)}")
        content, ctype, etag = found
        headers: Headers = [
            (b"content-type", ctype.encode()),
            (b"cache-control", b"public, max-age=31536000, immutable"),
            (b"etag", etag.encode()),
        ]
        if req.header(b"if-none-match") == etag.encode():
            return EndpointResponse(304, headers)
        headers.append((b"content-length", str(len(content)).encode()))
        return EndpointResponse(200, headers, content)

    @staticmethod
    def _next(req: EndpointRequest) -> str | None:
        """The ``next`` query parameter (the first one), or ``None``."""
        try:  # latin-1 never fails; parse_qs decodes the %-escapes as UTF-8
            found = parse_qs(req.query.decode("latin-1"), max_num_fields=16).get("next")
        except ValueError:  # more fields than any page of ours sends
            return None
        return found[0] if found else None

    def _locale(self, req: EndpointRequest) -> str:
        al = req.header(b"accept-language")
        override = None
        for v in req.header_values(b"cookie"):
            for name, value in parse_cookie_header(v):
                if name == "consent_lang":
                    override = value
        return self.banner.negotiate(al.decode("latin-1") if al else None, override)

    # -- the decision ------------------------------------------------------------------
    def _parse(
        self, req: EndpointRequest, body: bytes
    ) -> tuple[dict[str, Any], bool] | EndpointResponse:
        ctype = (req.header(b"content-type") or b"").split(b";")[0].strip().lower()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return error(400, "bad_request", "the body is not valid UTF-8")
        if ctype == b"application/x-www-form-urlencoded":
            try:
                pairs = parse_qsl(
                    text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, strict_parsing=False
                )
            except ValueError:
                return error(400, "bad_request", f"malformed form: over {_MAX_FIELDS} fields")
            data: dict[str, Any] = {}
            for k, v in pairs:
                if k == "categories":
                    # Always a list: one checkbox ticked is a list of one.
                    data.setdefault("categories", []).append(v)
                elif k in data:
                    return error(400, "bad_request", f"field {_shown(k)} is repeated")
                else:
                    data[k] = v
            return data, True
        if ctype == b"application/json":
            parsed = _load_json(text)
            if isinstance(parsed, str):
                return error(400, "bad_request", parsed)
            return parsed, False
        shown = _shown(ctype.decode("latin-1")) if ctype else "none"
        return error(
            415,
            "unsupported_media_type",
            f"content type {shown}; send application/x-www-form-urlencoded or application/json",
        )

    def _post(
        self, req: EndpointRequest, body: bytes, state: ConsentState
    ) -> EndpointResponse | Decision:
        why = self.cross_site(req)
        if why is not None:
            return error(403, "cross_site", why)
        if len(body) > MAX_BODY:
            return too_large()
        parsed = self._parse(req, body)
        if isinstance(parsed, EndpointResponse):
            return parsed
        data, is_form = parsed
        action = data.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            return error(
                400,
                "bad_request",
                f"'action' must be one of {', '.join(ACTIONS)}; got {_shown(action)}",
            )
        raw_cats = data.get("categories", [])
        # A list of strings, from JSON as from a form (whose parser always makes a list).
        if not isinstance(raw_cats, list) or not all(isinstance(c, str) for c in raw_cats):
            return error(400, "bad_request", "'categories' must be a list of category keys")
        unknown = [c for c in raw_cats if c not in self._optional and c not in self.policy.required]
        if unknown:
            shown = ", ".join(_shown(c, 24) for c in unknown[:3])
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            return error(
                400,
                "bad_request",
                f"unknown categories {shown}{more}; known: {', '.join(self.policy.optional)}",
            )
        source = data.get("source", "banner" if is_form else "api")
        if source not in _SOURCES:
            return error(400, "bad_request", f"'source' must be one of {', '.join(_SOURCES)}")
        nxt = data.get("next")
        if nxt is not None and not isinstance(nxt, str):
            return error(400, "bad_request", "'next' must be a path")

        if action == "accept_all":
            chosen = frozenset(self._optional)
        elif action == "save":
            chosen = frozenset(raw_cats) & self._optional
        else:
            chosen = frozenset()
        now = time.time()
        new = ConsentState(
            granted=chosen | self.policy.required,
            decided=True,
            consent_id=state.consent_id or new_consent_id(),
            revision=self.config.revision,
            issued_at=int(now),
            source=source,
        )
        locale = self._locale(req)
        texts_hash, texts_json = self.banner.texts_bundle(locale)
        ua = req.header(b"user-agent")
        base = {
            "time": datetime.fromtimestamp(now, UTC),
            "consent_id": new.consent_id,
            "revision": self.config.revision,
            "texts_hash": texts_hash,
            "locale": locale,
            "browser": browser_family(ua.decode("latin-1") if ua else None),
            "ip": truncate_ip(req.client_ip) if self.config.log_ip else None,
        }
        records = [
            dict(
                base,
                action=action,
                source=source,
                granted=tuple(sorted(chosen)),
                denied=tuple(sorted(self._optional - chosen)),
            )
        ]
        effective = new
        if state.gpc:
            effective = self.policy.codec.with_gpc(new, self.policy.gpc_opt_out)
            if effective.gpc_denied:
                # The browser's Global Privacy Control signal overrides part of the
                # choice: record what was applied, as its own GPC-derived decision.
                eff = effective.granted - self.policy.required
                records.append(
                    dict(
                        base,
                        action="gpc",
                        source="gpc",
                        granted=tuple(sorted(eff)),
                        denied=tuple(sorted(self._optional - eff)),
                    )
                )
        secure = self._secure(req)
        set_cookies: Headers = [(b"set-cookie", self._cookie_header(new, secure))]
        cookie_values = req.header_values(b"cookie")
        for name, _ in parse_cookie_header(b"; ".join(cookie_values)):
            if name != self.config.cookie_name and not self.policy.allows(name, effective):
                set_cookies.extend((b"set-cookie", v) for v in self.policy.deletions(name))
        if is_form:
            location = self._safe_next(nxt, req)
            response = EndpointResponse(
                303,
                [
                    (b"location", location.encode("latin-1", "replace")),
                    (b"content-length", b"0"),
                    (b"cache-control", b"no-store"),
                    *set_cookies,
                ],
            )
        else:
            response = _json(200, effective.as_json(), set_cookies)
        return Decision(effective, records, texts_hash, texts_json, response)


def endpoint_subpath(path: str, prefix: str, gpc: bool) -> str | None:
    """The sub-path below ``prefix`` if ``path`` belongs to the endpoint, else ``None``.

    ``/.well-known/gpc.json`` is served too when ``gpc`` is on.
    """
    if path.startswith(prefix):
        rest = path[len(prefix) :]
        if not rest or rest[0] == "/":
            return rest
        return None
    if gpc and path == "/.well-known/gpc.json":
        return path
    return None


def too_large() -> EndpointResponse:
    """The answer to a consent request whose body is over :data:`MAX_BODY` bytes."""
    return error(413, "too_large", f"the body is over {MAX_BODY} bytes")


def declared_length(value: bytes | str | None) -> int | None:
    """A request's ``Content-Length`` as a number; ``None`` when absent or not digits.

    Only ASCII digits count (``str.isdigit`` is also true for ``"²"`` and Arabic-Indic digits).
    A value too long to be a real length (over 18 digits) reads as ``10**18``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            return None
    digits = value.strip(b" \t")
    if not digits.isdigit():  # bytes.isdigit: ASCII digits only, and False when empty
        return None
    digits = digits.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 18 else _HUGE
