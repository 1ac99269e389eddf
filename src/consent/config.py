"""Configuration: consent categories, the cookies that belong to them, and settings.

Built in Python or loaded from a TOML file with :meth:`ConsentConfig.from_toml`.
Every validation error names the field and says how to fix it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "Category",
    "ConsentConfig",
    "CookieRule",
    "Theme",
    "is_css_colour",
]

_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DAY = 86_400
#: Category keys that name tracking purposes; making one of them ``required``
#: needs a written justification (COMPLIANCE.md items 3-5).
TRACKING_KEYS = frozenset(
    {
        "analytics",
        "statistics",
        "marketing",
        "advertising",
        "ads",
        "tracking",
        "social",
        "targeting",
        "personalization",
        "personalisation",
    }
)
#: Google Consent Mode v2 consent types a category may map to.
CONSENT_MODE_TYPES = frozenset(
    {
        "ad_storage",
        "ad_user_data",
        "ad_personalization",
        "analytics_storage",
        "functionality_storage",
        "personalization_storage",
        "security_storage",
    }
)
_DEFAULT_CONSENT_MODE: dict[str, tuple[str, ...]] = {
    "necessary": ("security_storage",),
    "preferences": ("functionality_storage", "personalization_storage"),
    "functional": ("functionality_storage",),
    "analytics": ("analytics_storage",),
    "statistics": ("analytics_storage",),
    "marketing": ("ad_storage", "ad_user_data", "ad_personalization"),
    "advertising": ("ad_storage", "ad_user_data", "ad_personalization"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CookieRule(_Model):
    """One cookie (or family of cookies) and what the visitor is told about it.

    ``name`` is matched exactly, as a glob when it contains ``*``, ``?`` or ``[``
    (``_ga_*``), or as a regular expression with ``match = "regex"``.
    ``domain`` and ``path`` are needed to delete a cookie that was set with them.
    """

    name: Annotated[str, Field(min_length=1, max_length=256)]
    match: Literal["auto", "exact", "glob", "regex"] = "auto"
    category: str | None = None
    domain: str | None = None
    path: str = "/"
    provider: str = ""
    purpose: str = ""
    #: How long the cookie lives, in seconds; ``None`` means a session cookie.
    max_age: int | None = Field(default=None, ge=0)
    third_party: bool = False
    storage: Literal["cookie", "local_storage", "session_storage", "pixel"] = "cookie"

    @model_validator(mode="after")
    def _check_pattern(self) -> CookieRule:
        problems = _rule_checks(dict(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def kind(self) -> Literal["exact", "glob", "regex"]:
        return _rule_kind(self.name, self.match)

    def regex(self) -> str:
        """The rule as a regular expression matching the whole cookie name."""
        if self.kind == "regex":
            return f"(?:{self.name})"
        if self.kind == "glob":
            return f"(?:{fnmatch.translate(self.name)[4:-3]})"
        return re.escape(self.name)

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.regex(), name) is not None


def _rule_kind(name: str, match: str) -> Literal["exact", "glob", "regex"]:
    if match in ("exact", "glob", "regex"):
        return match  # type: ignore[return-value]
    return "glob" if any(c in name for c in "*?[") else "exact"


# The checks that look at several fields of one object are plain functions over a
# mapping, so that they also run on the raw data when some field failed validation
# (pydantic skips a model's "after" validators then); ``ConsentConfig.from_mapping``
# reports every problem of a file at once that way.


def _rule_checks(rule: Mapping[str, Any]) -> list[str]:
    """The problems of one cookie rule that no single field's type catches."""
    problems: list[str] = []
    name, match = rule.get("name"), rule.get("match", "auto")
    if isinstance(name, str) and 0 < len(name) <= 256 and match in _MATCH_KINDS:
        kind = _rule_kind(name, match)
        if kind == "regex":
            try:
                re.compile(name)
            except re.error as exc:
                problems.append(f"name {name!r} is not a valid regular expression: {exc}")
        elif kind == "exact" and not _COOKIE_NAME.match(name):
            problems.append(
                f"name {name!r} is not a valid cookie name; a cookie name has no spaces, "
                "quotes, commas, semicolons or control characters"
            )
    domain, path = rule.get("domain"), rule.get("path", "/")
    if isinstance(domain, str) and not re.fullmatch(r"\.?[A-Za-z0-9.-]+", domain):
        problems.append(f"domain {domain!r} is not a host name such as 'example.com'")
    if isinstance(path, str) and (not path.startswith("/") or any(c in path for c in ";, \r\n\t")):
        problems.append(f"path {path!r} must start with '/' and hold no ';', ',' or spaces")
    return problems


_MATCH_KINDS = ("auto", "exact", "glob", "regex")


def _coerce_rules(value: Any) -> Any:
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class Category(_Model):
    """A consent category (purpose): ``necessary``, ``analytics``, ``marketing``...

    ``required`` categories are always allowed and cannot be refused; only
    strictly necessary purposes qualify (ePrivacy Art. 5(3)).
    """

    key: str
    required: bool = False
    cookies: list[CookieRule] = Field(default_factory=list)
    #: Why a required category is strictly necessary (shown in the cookie policy).
    justification: str | None = None
    legal_basis: Literal["consent", "legitimate_interest", "exempt"] = "consent"
    #: Denied while the browser sends ``Sec-GPC: 1``; by default marketing-like keys.
    gpc_opt_out: bool | None = None
    #: Google Consent Mode v2 types this category drives; a default for common keys.
    consent_mode: list[str] | None = None
    #: Title and description per locale (``{"en": "Analytics"}``) or one string.
    title: dict[str, str] | str | None = None
    description: dict[str, str] | str | None = None

    _norm_cookies = field_validator("cookies", mode="before")(_coerce_rules)

    @field_validator("key")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(
                f"{v!r} is not a lowercase slug; use 1-32 characters a-z, 0-9, '-' or '_', "
                "starting with a letter (e.g. 'analytics')"
            )
        return v

    @field_validator("consent_mode")
    @classmethod
    def _mode(cls, v: list[str] | None) -> list[str] | None:
        for t in v or ():
            if t not in CONSENT_MODE_TYPES:
                raise ValueError(
                    f"{t!r} is not a Google Consent Mode v2 type; use one of "
                    + ", ".join(sorted(CONSENT_MODE_TYPES))
                )
        return v

    @model_validator(mode="after")
    def _check(self) -> Category:
        problems = _category_checks(dict(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def opts_out_on_gpc(self) -> bool:
        if self.gpc_opt_out is not None:
            return self.gpc_opt_out
        return self.key in {"marketing", "advertising", "ads", "targeting", "social"}

    @property
    def consent_mode_types(self) -> tuple[str, ...]:
        if self.consent_mode is not None:
            return tuple(self.consent_mode)
        return _DEFAULT_CONSENT_MODE.get(self.key, ())


def _category_checks(category: Mapping[str, Any]) -> list[str]:
    """The problems of one category that no single field's type catches."""
    problems: list[str] = []
    key, required = category.get("key"), category.get("required", False)
    if not isinstance(key, str) or not isinstance(required, bool):
        return problems
    if required and key in TRACKING_KEYS and not category.get("justification"):
        problems.append(
            f"category {key!r} is a tracking purpose and cannot be 'required' "
            "(strictly necessary) without a 'justification'; make it optional, or state "
            "why it is strictly necessary in 'justification'"
        )
    legal_basis = category.get("legal_basis", "consent")
    if not required and legal_basis in ("legitimate_interest", "exempt"):
        problems.append(
            f"category {key!r}: cookies that are not strictly necessary need consent; "
            f"legal_basis {legal_basis!r} is not allowed for them (remove it)"
        )
    return problems


#: The CSS named colours (CSS Color Module Level 4), ``transparent`` and ``currentcolor``.
_NAMED_COLOURS = """
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk
    crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki
    darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue
    dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite
    gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo ivory khaki
    lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen
    lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen
    magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen
    mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream
    mistyrose moccasin navajowhite navy oldlace olive olivedrab orange orangered orchid
    palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum
    powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown
    seagreen seashell sienna silver skyblue slateblue slategray slategrey snow springgreen
    steelblue tan teal thistle tomato turquoise violet wheat white whitesmoke yellow
    yellowgreen transparent currentcolor
"""
CSS_NAMED_COLOURS = frozenset(_NAMED_COLOURS.split())
_HEX_COLOUR = re.compile(r"#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_CSS_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?")
_CSS_VAR = re.compile(r"var\(\s*--[a-z0-9_-]+\s*(?:,\s*(?P<fallback>.+?))?\s*\)")
_CSS_FUNCTION = re.compile(r"(?P<fn>rgba?|hsla?)\(\s*(?P<args>[^()]*?)\s*\)")


def _css_number(text: str, low: float, high: float, *, percent: float | None = None) -> bool:
    """``text`` is a number in [low, high], or a percentage when ``percent`` scales it."""
    if text.endswith("%"):
        if percent is None or not _CSS_NUMBER.fullmatch(text[:-1]):
            return False
        return 0 <= float(text[:-1]) <= 100
    return _CSS_NUMBER.fullmatch(text) is not None and low <= float(text) <= high


def is_css_colour(value: str) -> bool:
    """Whether ``value`` is a CSS colour the banner can use.

    Hex (``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``), ``rgb()``/``rgba()`` and
    ``hsl()``/``hsla()`` with arguments in range (comma or space syntax), a CSS
    named colour, or ``var(--custom-property)`` (with an optional colour fallback).
    """
    v = value.strip().lower()
    if _HEX_COLOUR.fullmatch(v) or v in CSS_NAMED_COLOURS:
        return True
    m = _CSS_VAR.fullmatch(v)
    if m:
        return m["fallback"] is None or is_css_colour(m["fallback"])
    m = _CSS_FUNCTION.fullmatch(v)
    if m is None:
        return False
    args = m["args"]
    alpha: str | None = None
    if "," in args:
        parts = [a.strip() for a in args.split(",")]
        if len(parts) == 4:
            alpha = parts.pop()
    else:
        main, slash, rest = args.partition("/")
        parts = main.split()
        if slash:
            alpha = rest.strip()
    if len(parts) != 3 or alpha == "":
        return False
    if alpha is not None and not _css_number(alpha, 0, 1, percent=1):
        return False
    if m["fn"].startswith("rgb"):
        return all(_css_number(p, 0, 255, percent=255) for p in parts)
    hue = re.fullmatch(rf"({_CSS_NUMBER.pattern})(deg|grad|rad|turn)?", parts[0])
    return hue is not None and all(_css_number(p, 0, 100, percent=100) for p in parts[1:])


_UNSAFE_CSS = re.compile(r"[;{}<>\\\r\n]")
_COLOUR_FIELDS = tuple(
    f"{dark}color_{name}"
    for dark in ("", "dark_")
    for name in (
        "background",
        "text",
        "primary",
        "primary_text",
        "secondary",
        "secondary_text",
        "border",
    )
)


class Theme(_Model):
    """How the banner looks: CSS custom properties and the layout."""

    layout: Literal["bar", "box", "modal"] = "bar"
    position: Literal["bottom", "top"] = "bottom"
    color_background: str = "#ffffff"
    color_text: str = "#1a1a1a"
    color_primary: str = "#1d4ed8"
    color_primary_text: str = "#ffffff"
    color_secondary: str = "#1d4ed8"
    color_secondary_text: str = "#ffffff"
    color_border: str = "#6b7280"
    dark_color_background: str = "#111827"
    dark_color_text: str = "#f3f4f6"
    dark_color_primary: str = "#93c5fd"
    dark_color_primary_text: str = "#0b1220"
    dark_color_secondary: str = "#93c5fd"
    dark_color_secondary_text: str = "#0b1220"
    dark_color_border: str = "#9ca3af"
    color_scheme: Literal["auto", "light", "dark"] = "auto"
    radius: str = "8px"
    font_family: str = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
    font_size: str = "16px"

    @field_validator(*_COLOUR_FIELDS)
    @classmethod
    def _colour(cls, v: str) -> str:
        # A value with ; { } < > or \ is reported by _check, which says why.
        if _UNSAFE_CSS.search(v) or is_css_colour(v):
            return v
        raise ValueError(
            f"{v!r} is not a CSS colour; use a hex colour such as '#1d4ed8', rgb(...), "
            "hsl(...) or a CSS colour name such as 'navy'"
        )

    @model_validator(mode="after")
    def _check(self) -> Theme:
        problems = _theme_checks(dict(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _theme_checks(theme: Mapping[str, Any]) -> list[str]:
    """CSS safety and contrast; ``theme`` holds every field (defaults filled in)."""
    problems: list[str] = []
    for name, value in theme.items():
        if isinstance(value, str) and _UNSAFE_CSS.search(value):
            problems.append(f"theme.{name} = {value!r} may not contain ; {{ }} < > or \\")
    # WCAG 2.2 AA (1.4.3) asks 4.5:1 for text; COMPLIANCE items 14 and 36 make it
    # the rule for both buttons. Only hex colours can be checked here; other CSS
    # colours (names, rgb(), var()) are the site owner's to check.
    for prefix in ("", "dark_"):
        for fg, bg in (
            ("color_text", "color_background"),
            ("color_primary_text", "color_primary"),
            ("color_secondary_text", "color_secondary"),
        ):
            a, b = theme.get(prefix + fg), theme.get(prefix + bg)
            if not isinstance(a, str) or not isinstance(b, str):
                continue
            ratio = contrast_ratio(a, b)
            if ratio is not None and ratio < 4.5:
                problems.append(
                    f"theme.{prefix}{fg} {a} on theme.{prefix}{bg} {b} has a contrast of "
                    f"{ratio:.2f}:1; WCAG 2.2 AA needs at least 4.5:1 (pick a darker or "
                    "lighter colour)"
                )
    return problems


def _luminance(hex_colour: str) -> float | None:
    m = re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", hex_colour.strip())
    if not m:
        return None
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = []
    for i in (0, 2, 4):
        c = int(h[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(foreground: str, background: str) -> float | None:
    """WCAG contrast ratio of two hex colours (``#rgb`` or ``#rrggbb``); ``None`` otherwise."""
    la, lb = _luminance(foreground), _luminance(background)
    if la is None or lb is None:
        return None
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def _env_secret() -> list[SecretStr]:
    raw = os.environ.get("CONSENT_SECRET_KEY", "")
    return [SecretStr(k.strip()) for k in raw.split(",") if k.strip()]


class ConsentConfig(_Model):
    """Everything the middleware needs to know about the site's consent."""

    #: One secret or a list, newest first (rotation). Default: ``CONSENT_SECRET_KEY``
    #: (comma-separated for several keys).
    secret_key: list[SecretStr] = Field(default_factory=_env_secret)
    #: Bump it and every visitor is asked again (texts or purposes changed).
    revision: int = Field(default=1, ge=1)
    categories: list[Category] = Field(min_length=1)
    #: Cookie rules listed apart from their category (each names its ``category``).
    cookies: list[CookieRule] = Field(default_factory=list)
    #: What happens to a cookie no rule matches: ``block`` (default) or ``allow``.
    unknown_cookies: Literal["block", "allow"] = "block"
    #: Where decisions are recorded: ``sqlite:///path``, ``postgresql://...``, ``memory://``.
    log: str = "sqlite:///consent.db"
    #: Keep a truncated IP (IPv4 /24, IPv6 /48) in each log record. Off by default.
    log_ip: bool = False
    cookie_name: str = "consent"
    cookie_domain: str | None = None
    #: How long a decision is kept, in seconds: 180 days by default, at most 395.
    max_age: int = Field(default=180 * _DAY, ge=60, le=395 * _DAY)
    #: ``auto``: ``Secure`` when the request came over https.
    secure: bool | Literal["auto"] = "auto"
    prefix: str = "/_consent"
    #: Serve ``/.well-known/gpc.json`` and honour ``Sec-GPC: 1``.
    gpc: bool = True
    #: The ``lastUpdate`` date of ``/.well-known/gpc.json``; default: the day the app started.
    gpc_last_update: date | None = None
    #: Expire cookies of refused categories that the browser sends back.
    expire_refused: bool = True
    #: At most this many deletion ``Set-Cookie`` headers go out with one response
    #: (a browser holding hundreds of refused cookies would otherwise get hundreds
    #: of headers on every response); the rest go out with the following responses.
    deletions_per_response: int = Field(default=16, ge=1, le=256)
    #: Inject the banner and the settings control into HTML responses.
    inject: bool = True
    #: Paths (prefixes) where nothing is injected, e.g. an admin area.
    exclude_paths: list[str] = Field(default_factory=list)
    #: Largest stretch of HTML held back while looking for the last ``</body>``.
    inject_window: int = Field(default=64 * 1024, ge=1024)

    # -- banner ---------------------------------------------------------------
    #: Who is responsible for the processing, shown on the first layer.
    controller: str = ""
    #: The site's privacy policy, linked from the banner.
    privacy_policy_url: str | None = None
    default_locale: str = "en"
    #: Locales offered; empty means every shipped locale.
    locales: list[str] = Field(default_factory=list)
    #: Text overrides per locale: ``{"en": {"title": "..."}}``.
    texts: dict[str, dict[str, str]] = Field(default_factory=dict)
    theme: Theme = Field(default_factory=Theme)
    #: A directory of templates that override the shipped ones.
    templates_dir: str | None = None
    #: Emit Google Consent Mode v2 default/update calls.
    google_consent_mode: bool = True
    #: Milliseconds gtag waits for the update after the default.
    consent_mode_wait_for_update: int = Field(default=500, ge=0, le=10_000)

    @field_validator("secret_key", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        if isinstance(v, str | bytes):
            return [v]
        return v

    @field_validator("cookie_name")
    @classmethod
    def _cookie_name(cls, v: str) -> str:
        if not _COOKIE_NAME.match(v):
            raise ValueError(f"{v!r} is not a valid cookie name")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", v):
            raise ValueError(f"{v!r} must be a path such as '/_consent' (no trailing slash)")
        return v

    @field_validator("log")
    @classmethod
    def _log(cls, v: str) -> str:
        scheme = v.split(":", 1)[0]
        if scheme not in {"memory", "sqlite", "postgresql", "postgres"} or "://" not in v:
            # The message reaches the operator's logs: no password in it.
            from .log._base import redact_url

            raise ValueError(
                f"{redact_url(v)!r} is not a log URL; use 'sqlite:///path/to/consent.db', "
                "'postgresql://user@host/db' or 'memory://'"
            )
        return v

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ConsentConfig:
        problems = _config_checks(
            secrets=[(i, k.get_secret_value()) for i, k in enumerate(self.secret_key)],
            categories=[
                (i, c.key, list(enumerate(c.cookies))) for i, c in enumerate(self.categories)
            ],
            cookies=list(enumerate(self.cookies)),
            cookie_name=self.cookie_name,
            refuse_placeholder=_refuses_placeholder(info.context),
        )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # -- derived ----------------------------------------------------------------
    def rules(self) -> list[tuple[str, CookieRule]]:
        """Every cookie rule with its category key, in declaration order."""
        out = [(c.key, r) for c in self.categories for r in c.cookies]
        out.extend((r.category, r) for r in self.cookies if r.category is not None)
        return out

    @property
    def required_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.categories if c.required)

    @property
    def optional_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.categories if not c.required)

    def secret_keys(self) -> list[str]:
        return [k.get_secret_value() for k in self.secret_key]

    # -- loading ----------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Any) -> ConsentConfig:
        """Load a configuration from a TOML file; ``overrides`` replace top-level keys.

        Raises :class:`~consent.errors.ConfigError` listing every problem. The
        example secret keys of the documentation (``change-me...``) are refused,
        except for the demo's own file (``consent demo`` is not a real site).
        """
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"file not found: {p}", source=str(p)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the file: {exc}", source=str(p)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", source=str(p)) from None
        data.update(overrides)
        # A configuration file is a real site's: the documentation's example key is refused.
        return cls.from_mapping(data, source=str(p), allow_placeholder_secret=_is_demo_file(p))

    @classmethod
    def from_mapping(
        cls,
        data: dict[str, Any],
        *,
        source: str | None = None,
        allow_placeholder_secret: bool = True,
    ) -> ConsentConfig:
        """Validate a plain mapping (a parsed TOML file, Django's ``settings.CONSENT``).

        Raises :class:`~consent.errors.ConfigError` listing every problem at once,
        including those between settings that pydantic leaves unchecked when a
        setting has the wrong type. ``allow_placeholder_secret=False`` refuses the
        example secret keys of the documentation (``from_toml`` and
        ``consent check-config`` do).
        """
        context = {_REFUSE_PLACEHOLDER: not allow_placeholder_secret}
        try:
            return cls.model_validate(data, context=context)
        except ValidationError as exc:
            problems = _problems(exc)
            if isinstance(data, Mapping):
                for problem in _raw_problems(data, refuse_placeholder=not allow_placeholder_secret):
                    if problem not in problems:
                        problems.append(problem)
            raise ConfigError(problems, source=source) from None


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.startswith(("function-", "function_")) or p in {"str", "list[str]", "bytes"}:
            continue
        else:
            out += ("." if out else "") + p
    return out


def _add(problems: list[tuple[str, str]], loc: str, msg: str) -> None:
    """Add the lines of ``msg`` found at ``loc``; a line may name a sharper location."""
    for line in msg.split("\n"):
        if ": " in line and not loc and line.split(": ", 1)[0].replace("_", "").isalnum():
            sub_loc, _, line = line.partition(": ")
            problems.append((sub_loc, line))
        elif line.startswith(("categories[", "cookies[", "secret_key")) and ": " in line:
            sub_loc, _, rest = line.partition(": ")
            problems.append((sub_loc, rest))
        else:
            problems.append((loc, line))


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = _loc(tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting; check its spelling (see the configuration reference)"
        elif err["type"] == "missing":
            msg = "this setting is required"
        _add(problems, loc, msg)
    return problems


# -- checks across settings ------------------------------------------------------------

_REFUSE_PLACEHOLDER = "refuse_placeholder_secret"
#: The example keys of the README and the documentation ("change-me: consent keygen
#: prints a good one", "example-only-secret-change-me-..."): anyone can read them.
_PLACEHOLDER_SECRET = re.compile(r"change[-_ ]?me|example-only", re.IGNORECASE)


def _is_demo_file(path: Path) -> bool:
    """Whether ``path`` is the demo's configuration, shipped in ``consent/demo``."""
    try:
        return path.resolve() == (Path(__file__).parent / "demo" / "consent.toml").resolve()
    except OSError:
        return False


def _refuses_placeholder(context: Any) -> bool:
    return isinstance(context, dict) and bool(context.get(_REFUSE_PLACEHOLDER))


def _config_checks(
    *,
    secrets: list[tuple[int, str]] | None,
    categories: list[tuple[int, Any, list[tuple[int, CookieRule]]]],
    cookies: list[tuple[int, CookieRule]],
    cookie_name: Any,
    refuse_placeholder: bool,
) -> list[str]:
    """Problems between settings, as ``location: message`` lines.

    ``secrets`` is ``None`` when the secret key is of the wrong type; ``categories``
    and ``cookies`` hold the elements that could be read, with their index.
    """
    problems: list[str] = []
    if secrets is not None and not secrets:
        problems.append(
            "secret_key: no secret key; set 'secret_key' or the CONSENT_SECRET_KEY "
            "environment variable (generate one with `consent keygen`)"
        )
    for i, k in secrets or ():
        if len(k) < 16:
            problems.append(f"secret_key[{i}]: must be at least 16 characters long")
        if refuse_placeholder and _PLACEHOLDER_SECRET.search(k):
            problems.append(
                f"secret_key[{i}]: this is the example key of the documentation, which anyone "
                "can read; generate the site's own key with `consent keygen`"
            )
    seen: dict[str, int] = {}
    for i, key, _ in categories:
        if not isinstance(key, str):
            continue
        if key in seen:
            problems.append(
                f"categories[{i}].key: {key!r} is already the key of categories[{seen[key]}]; "
                "each category needs its own key"
            )
        seen.setdefault(key, i)
    for i, r in cookies:
        if r.category is None:
            problems.append(f"cookies[{i}].category: say which category {r.name!r} belongs to")
        elif r.category not in seen:
            problems.append(
                f"cookies[{i}].category: unknown category {r.category!r}; known: {', '.join(seen)}"
            )
    for i, key, rules_of_category in categories:
        for j, r in rules_of_category:
            if r.category is not None and r.category != key:
                problems.append(
                    f"categories[{i}].cookies[{j}].category: {r.name!r} is listed under "
                    f"{key!r} but names category {r.category!r}; remove one"
                )
    rules = [(key, r) for _, key, rs in categories if isinstance(key, str) for _, r in rs]
    rules.extend((r.category, r) for _, r in cookies if r.category is not None)
    claimed: dict[str, str] = {}
    for key, rule in rules:
        if rule.name in claimed and claimed[rule.name] != key:
            problems.append(
                f"cookie {rule.name!r} is claimed by categories {claimed[rule.name]!r} and "
                f"{key!r}; a cookie belongs to one category"
            )
        claimed.setdefault(rule.name, key)
    for key, rule in rules:
        if rule.kind != "exact":
            continue
        for other_key, other in rules:
            if other_key != key and other.kind != "exact" and other.matches(rule.name):
                problems.append(
                    f"cookie {rule.name!r} of category {key!r} also matches pattern "
                    f"{other.name!r} of category {other_key!r}; a cookie belongs to one category"
                )
    if cookie_name in {r.name for _, r in rules if r.kind == "exact"}:
        problems.append(
            f"cookie_name: {cookie_name!r} is the consent cookie; do not list it in a category"
        )
    return problems


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _raw_rule(raw: Any) -> CookieRule | None:
    """The cookie rule ``raw`` describes, as far as its name and category are valid."""
    if not isinstance(raw, Mapping):
        return None
    for data in (raw, {k: raw[k] for k in ("name", "match", "category") if k in raw}):
        try:
            return CookieRule.model_validate(data)
        except ValidationError:
            continue
    return None


def _raw_rules(value: Any) -> list[tuple[int, CookieRule]]:
    value = _coerce_rules(value)
    if not isinstance(value, list):
        return []
    out = []
    for j, raw in enumerate(value):
        rule = _raw_rule(raw)
        if rule is not None:
            out.append((j, rule))
    return out


def _raw_problems(data: Mapping[str, Any], *, refuse_placeholder: bool) -> list[tuple[str, str]]:
    """The checks of every model's "after" validators, run on raw (partly invalid) data.

    Pydantic runs a model's "after" validators only when all its fields are valid;
    these are the same checks, tolerant of values of the wrong type (they skip them:
    pydantic has reported those), so that one run reports every problem.
    """
    problems: list[tuple[str, str]] = []

    def rule_problems(loc: str, value: Any) -> None:
        value = _coerce_rules(value)
        for j, raw in enumerate(value if isinstance(value, list) else ()):
            if isinstance(raw, Mapping):
                rule = {k: _strip(v) for k, v in raw.items()}
                for msg in _rule_checks(rule):
                    _add(problems, f"{loc}[{j}]", msg)

    categories: list[tuple[int, Any, list[tuple[int, CookieRule]]]] = []
    raw_categories = data.get("categories")
    for i, raw in enumerate(raw_categories if isinstance(raw_categories, list) else ()):
        if not isinstance(raw, Mapping):
            continue
        category = {k: _strip(v) for k, v in raw.items()}
        for msg in _category_checks(category):
            _add(problems, f"categories[{i}]", msg)
        rule_problems(f"categories[{i}].cookies", raw.get("cookies"))
        categories.append((i, category.get("key"), _raw_rules(raw.get("cookies", []))))
    rule_problems("cookies", data.get("cookies"))
    theme = data.get("theme")
    if isinstance(theme, Mapping):
        defaults = {name: f.default for name, f in Theme.model_fields.items()}
        values = {**defaults, **{k: _strip(v) for k, v in theme.items() if k in defaults}}
        for msg in _theme_checks(values):
            _add(problems, "theme", msg)
    secrets: list[tuple[int, str]] | None
    raw_secret = data.get("secret_key")
    if "secret_key" not in data:
        secrets = [(i, k.get_secret_value()) for i, k in enumerate(_env_secret())]
    elif isinstance(raw_secret, str):
        secrets = [(0, raw_secret)]
    elif isinstance(raw_secret, list) and all(isinstance(k, str) for k in raw_secret):
        secrets = list(enumerate(raw_secret))
    else:
        secrets = None
    cookie_name = _strip(data.get("cookie_name", "consent"))
    for msg in _config_checks(
        secrets=secrets,
        categories=categories,
        cookies=_raw_rules(data.get("cookies", [])),
        cookie_name=cookie_name,
        refuse_placeholder=refuse_placeholder,
    ):
        _add(problems, "", msg)
    return problems
