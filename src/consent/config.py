"""Configuration: consent categories, the cookies that belong to them, and settings.

Built in Python or loaded from a TOML file with :meth:`ConsentConfig.from_toml`.
Every validation error names the field and says how to fix it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "Category",
    "ConsentConfig",
    "CookieRule",
    "Theme",
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
        if self.kind == "regex":
            try:
                re.compile(self.name)
            except re.error as exc:
                raise ValueError(
                    f"name {self.name!r} is not a valid regular expression: {exc}"
                ) from None
        elif self.kind == "exact" and not _COOKIE_NAME.match(self.name):
            raise ValueError(
                f"name {self.name!r} is not a valid cookie name; a cookie name has no spaces, "
                "quotes, commas, semicolons or control characters"
            )
        if self.domain is not None and not re.fullmatch(r"\.?[A-Za-z0-9.-]+", self.domain):
            raise ValueError(f"domain {self.domain!r} is not a host name such as 'example.com'")
        if not self.path.startswith("/") or any(c in self.path for c in ";, \r\n\t"):
            raise ValueError(
                f"path {self.path!r} must start with '/' and hold no ';', ',' or spaces"
            )
        return self

    @property
    def kind(self) -> Literal["exact", "glob", "regex"]:
        if self.match != "auto":
            return self.match
        return "glob" if any(c in self.name for c in "*?[") else "exact"

    def regex(self) -> str:
        """The rule as a regular expression matching the whole cookie name."""
        if self.kind == "regex":
            return f"(?:{self.name})"
        if self.kind == "glob":
            return f"(?:{fnmatch.translate(self.name)[4:-3]})"
        return re.escape(self.name)

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.regex(), name) is not None


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
        if self.required and self.key in TRACKING_KEYS and not self.justification:
            raise ValueError(
                f"category {self.key!r} is a tracking purpose and cannot be 'required' "
                "(strictly necessary) without a 'justification'; make it optional, or state "
                "why it is strictly necessary in 'justification'"
            )
        if not self.required and self.legal_basis != "consent":
            raise ValueError(
                f"category {self.key!r}: cookies that are not strictly necessary need consent; "
                f"legal_basis {self.legal_basis!r} is not allowed for them (remove it)"
            )
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

    @model_validator(mode="after")
    def _safe_css(self) -> Theme:
        for name, value in self:
            if isinstance(value, str) and re.search(r"[;{}<>\\\r\n]", value):
                raise ValueError(f"theme.{name} = {value!r} may not contain ; {{ }} < > or \\")
        return self

    @model_validator(mode="after")
    def _contrast(self) -> Theme:
        # WCAG 2.2 AA (1.4.3) asks 4.5:1 for text; COMPLIANCE items 14 and 36 make it
        # the rule for both buttons. Only hex colours can be checked here; other CSS
        # colours (names, rgb(), var()) are the site owner's to check.
        problems = []
        for prefix in ("", "dark_"):
            for fg, bg in (
                ("color_text", "color_background"),
                ("color_primary_text", "color_primary"),
                ("color_secondary_text", "color_secondary"),
            ):
                a, b = getattr(self, prefix + fg), getattr(self, prefix + bg)
                ratio = contrast_ratio(a, b)
                if ratio is not None and ratio < 4.5:
                    problems.append(
                        f"theme.{prefix}{fg} {a} on theme.{prefix}{bg} {b} has a contrast of "
                        f"{ratio:.2f}:1; WCAG 2.2 AA needs at least 4.5:1 (pick a darker or "
                        "lighter colour)"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self


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
    def _check(self) -> ConsentConfig:
        problems: list[str] = []
        if not self.secret_key:
            problems.append(
                "secret_key: no secret key; set 'secret_key' or the CONSENT_SECRET_KEY "
                "environment variable (generate one with `consent keygen`)"
            )
        for i, k in enumerate(self.secret_key):
            if len(k.get_secret_value()) < 16:
                problems.append(f"secret_key[{i}]: must be at least 16 characters long")
        seen: dict[str, int] = {}
        for i, c in enumerate(self.categories):
            if c.key in seen:
                problems.append(
                    f"categories[{i}].key: {c.key!r} is already the key of categories[{seen[c.key]}]; "
                    "each category needs its own key"
                )
            seen.setdefault(c.key, i)
        if not any(c.required for c in self.categories):
            pass  # a site may have no strictly necessary cookies at all
        for i, r in enumerate(self.cookies):
            if r.category is None:
                problems.append(f"cookies[{i}].category: say which category {r.name!r} belongs to")
            elif r.category not in seen:
                problems.append(
                    f"cookies[{i}].category: unknown category {r.category!r}; "
                    f"known: {', '.join(seen)}"
                )
        for i, c in enumerate(self.categories):
            for j, r in enumerate(c.cookies):
                if r.category is not None and r.category != c.key:
                    problems.append(
                        f"categories[{i}].cookies[{j}].category: {r.name!r} is listed under "
                        f"{c.key!r} but names category {r.category!r}; remove one"
                    )
        claimed: dict[str, str] = {}
        rules = self.rules()
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
        if self.cookie_name in {r.name for _, r in rules if r.kind == "exact"}:
            problems.append(
                f"cookie_name: {self.cookie_name!r} is the consent cookie; do not list it in a category"
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

        Raises :class:`~consent.errors.ConfigError` listing every problem.
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
        return cls.from_mapping(data, source=str(p))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str | None = None) -> ConsentConfig:
        """Validate a plain mapping (a parsed TOML file, Django's ``settings.CONSENT``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_problems(exc), source=source) from None


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


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = _loc(tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting; check its spelling (see the configuration reference)"
        elif err["type"] == "missing":
            msg = "this setting is required"
        for line in msg.split("\n"):
            if ": " in line and not loc and line.split(": ", 1)[0].replace("_", "").isalnum():
                sub_loc, _, line = line.partition(": ")
                problems.append((sub_loc, line))
            elif line.startswith(("categories[", "cookies[", "secret_key")) and ": " in line:
                sub_loc, _, rest = line.partition(": ")
                problems.append((sub_loc, rest))
            else:
                problems.append((loc, line))
    return problems
