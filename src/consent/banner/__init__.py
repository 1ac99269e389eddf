"""The consent banner: server-rendered HTML, consent.js, consent.css and translations.

:class:`Banner` does all the heavy work once, in ``__init__`` (templates, locales,
static assets and their fingerprints); the per-request methods hand out cached
strings with only the page's URL and CSP nonce filled in.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined
from markupsafe import Markup

from ..config import CONSENT_MODE_TYPES, Category, ConsentConfig, Theme
from ..core.memo import remember
from ..state import ConsentState
from ._i18n import RTL, fmt, format_duration, load_shipped, normalize_tag, parse_accept_language

__all__ = ["Banner"]

# Placeholders rendered into cached HTML and swapped per request. Private-use
# code points never occur in real texts, so a plain split finds exactly them.
_URL = "\ue000u\ue000"
_NONCE = "\ue000n\ue000"
_CACHE_MAX = 4096
_MEMO_LEN = 512  # longer request-derived strings are not memoised
# Google's documented order; tags read the object, so the order is cosmetic only.
_MODE_TYPES = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)
assert frozenset(_MODE_TYPES) == CONSENT_MODE_TYPES
_STATIC_TYPES = {
    "consent.js": "text/javascript; charset=utf-8",
    "consent.css": "text/css; charset=utf-8",
}
_THEME_VARS = (
    ("bg", "background"),
    ("fg", "text"),
    ("p", "primary"),
    ("pt", "primary_text"),
    ("s", "secondary"),
    ("st", "secondary_text"),
    ("b", "border"),
)

_SnippetKey = tuple[str, bool, frozenset[str], bool, str]
_SLOTS = re.compile(f"({_URL}|{_NONCE})")


class _Compiled:
    """Rendered HTML with its per-request slots (page URL, nonce attribute) cut out."""

    __slots__ = (
        "big",
        "encoded",
        "head",
        "nonce_slots",
        "parts",
        "post",
        "pre",
        "simple",
        "tail",
        "url_slots",
    )

    def __init__(self, rendered: str) -> None:
        parts = _SLOTS.split(rendered)
        self.parts = parts
        self.url_slots = tuple(i for i in range(1, len(parts), 2) if parts[i] == _URL)
        self.nonce_slots = tuple(i for i in range(1, len(parts), 2) if parts[i] == _NONCE)
        # The shipped templates hold the URL once, near the end, and the nonces in the
        # first few hundred characters. Cut that way, a page costs one copy of the long
        # middle ("big") whatever the nonce, and no Python loop. A text without a URL
        # (a decided visitor's snippet, the head script) is cut the same way, with the
        # URL slot at the very end: callers pass "" for it.
        self.simple = len(self.url_slots) <= 1
        before, _, after = rendered.partition(_URL)
        self.pre, self.post = before.replace(_NONCE, ""), after.replace(_NONCE, "")
        head, mark, self.big = before.rpartition(_NONCE)
        self.head = (*head.split(_NONCE), "") if mark else ("",)
        self.tail = tuple(after.split(_NONCE))
        #: The fixed parts encoded, per charset: a page then costs one bytes join.
        self.encoded: dict[str, tuple[tuple[bytes, ...], bytes, tuple[bytes, ...]]] = {}

    def fill_bytes(self, url: str, nonce_attr: str, charset: str) -> bytes:
        """:meth:`fill`, encoded in ``charset`` (characters it lacks become references)."""
        if not self.simple:
            return self.fill(url, nonce_attr).encode(charset, "xmlcharrefreplace")
        enc = self.encoded.get(charset)
        if enc is None:
            enc = (
                tuple(p.encode(charset, "xmlcharrefreplace") for p in self.head),
                self.big.encode(charset, "xmlcharrefreplace"),
                tuple(p.encode(charset, "xmlcharrefreplace") for p in self.tail),
            )
            self.encoded[charset] = enc
        head, big, tail = enc
        # url and nonce are ASCII-safe already (escaped URL, base64 nonce).
        u = url.encode(charset, "xmlcharrefreplace")
        if not nonce_attr:
            return b"".join((b"".join(head), big, u, b"".join(tail)))
        n = nonce_attr.encode(charset, "xmlcharrefreplace")
        return b"".join((n.join(head), big, u, n.join(tail)))

    def fill(self, url: str, nonce_attr: str) -> str:
        if self.simple:
            return "".join((nonce_attr.join(self.head), self.big, url, nonce_attr.join(self.tail)))
        out = self.parts.copy()
        for i in self.url_slots:
            out[i] = url
        for i in self.nonce_slots:
            out[i] = nonce_attr
        return "".join(out)


@dataclass(frozen=True, slots=True)
class _CookieView:
    name: str
    provider: str
    purpose: str
    duration: str
    max_age: int | None
    party: str
    third_party: bool
    storage: str


@dataclass(frozen=True, slots=True)
class _CategoryView:
    key: str
    required: bool
    title: str
    description: str
    justification: str
    cookie_names: str
    cookies: tuple[_CookieView, ...]


@dataclass(frozen=True, slots=True)
class _LocaleView:
    """Everything shown in one locale, resolved from locale files, config and overrides."""

    locale: str
    lang: str
    dir: str
    texts: dict[str, str]
    cats: tuple[_CategoryView, ...]
    intro: str
    third_parties: str
    gpc_note: str


class Banner:
    """Renders the banner, the cookie policy page and serves consent.js / consent.css.

    Construct it once per configuration; every method is then cheap and never
    touches the file system.
    """

    def __init__(self, config: ConsentConfig) -> None:
        self.config = config
        shipped = load_shipped()
        self.locales: tuple[str, ...] = tuple(config.locales) or tuple(sorted(shipped))
        self._exact = {loc.lower().replace("_", "-"): loc for loc in self.locales}
        # "de-AT" falls back to the first configured locale of the same language.
        self._primary: dict[str, str] = {}
        for loc in self.locales:
            self._primary.setdefault(loc.lower().replace("_", "-").split("-")[0], loc)
        self.default_locale = self._match(config.default_locale) or self.locales[0]

        self._views = {loc: self._view(loc, shipped) for loc in self.locales}
        self._bundles = {loc: self._bundle(self._views[loc]) for loc in self.locales}
        self._modes = self._consent_modes(config.categories)

        loaders: list[Any] = [PackageLoader("consent.banner", "templates")]
        if config.templates_dir:
            loaders.insert(0, FileSystemLoader(config.templates_dir))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

        self._static: dict[str, tuple[bytes, str, str]] = {}
        self._fingerprints: dict[str, str] = {}
        static_dir = resources.files(__package__) / "static"
        for name, ctype in _STATIC_TYPES.items():
            body = (static_dir / name).read_bytes()
            if name == "consent.css":
                body = _theme_css(config.theme).encode() + body
            digest = hashlib.sha256(body).hexdigest()
            self._static[name] = (body, ctype, f'"{digest[:32]}"')
            self._fingerprints[name] = digest[:12]

        self._snippets: dict[_SnippetKey, _Compiled] = {}
        self._fragments: dict[_SnippetKey, _Compiled] = {}
        self._urls: dict[str, str] = {}
        self._heads: dict[tuple[bool, frozenset[str]], _Compiled] = {}
        self._negotiated: dict[tuple[str | None, str | None], str] = {}

        # Render once now: a broken template override fails at start-up, not on the
        # first visitor, and the commonest snippet is cached before any request.
        undecided = ConsentState(granted=config.required_keys)
        self.snippet(undecided, self.default_locale, prefix=config.prefix)
        self.policy_page(undecided, self.default_locale, prefix=config.prefix)

    # -- locales ----------------------------------------------------------------------
    def negotiate(self, accept_language: str | None, override: str | None = None) -> str:
        """The locale to show: ``override`` when it names a known locale, else the
        best match of the Accept-Language header (q-values, ``de-AT`` → ``de``),
        else ``config.default_locale``. Never raises, whatever the input.
        """
        key = (accept_language, override)
        found = self._negotiated.get(key)
        if found is not None:
            return found
        found = (self._match(override) if override else None) or self._from_header(accept_language)
        # Headers are chosen by the client: remember only short ones, and only so many.
        if len(accept_language or "") + len(override or "") <= _MEMO_LEN:
            remember(self._negotiated, key, found, _CACHE_MAX)
        return found

    def _from_header(self, header: str | None) -> str:
        if not header:
            return self.default_locale
        for tag in parse_accept_language(header):
            if tag == "*":
                return self.default_locale
            found = self._match(tag)
            if found:
                return found
        return self.default_locale

    def _match(self, tag: str | None) -> str | None:
        norm = normalize_tag(tag) if isinstance(tag, str) else None
        if norm is None:
            return None
        while norm:
            if norm in self._exact:
                return self._exact[norm]
            norm = norm.rpartition("-")[0]
        return self._primary.get((normalize_tag(tag or "") or "").split("-")[0])

    def _canon(self, locale: str) -> str:
        return locale if locale in self._views else (self._match(locale) or self.default_locale)

    def is_rtl(self, locale: str) -> bool:
        """Whether ``locale`` is written right to left (Arabic, Hebrew, Persian...)."""
        return (normalize_tag(locale) or "").split("-")[0] in RTL

    # -- what is shown --------------------------------------------------------------------
    def _view(self, loc: str, shipped: dict[str, dict[str, str]]) -> _LocaleView:
        cfg = self.config
        lang = loc.lower().replace("_", "-").split("-")[0]
        texts = dict(shipped["en"])
        for source in (
            shipped.get(lang),
            shipped.get(loc),
            cfg.texts.get(lang),
            cfg.texts.get(loc),
        ):
            if source and source is not texts:
                texts.update(source)
        sep = texts["list_sep"]
        cats: list[_CategoryView] = []
        rules = cfg.rules()
        for cat in cfg.categories:
            own = [r for key, r in rules if key == cat.key]
            cookies = tuple(
                _CookieView(
                    name=r.name,
                    provider=r.provider,
                    purpose=r.purpose,
                    duration=format_duration(r.max_age, lang, texts),
                    max_age=r.max_age,
                    party=texts["third_party" if r.third_party else "first_party"],
                    third_party=r.third_party,
                    storage=texts[f"storage_{r.storage}"],
                )
                for r in own
            )
            cats.append(
                _CategoryView(
                    key=cat.key,
                    required=cat.required,
                    title=self._cat_text(cat, "title", loc, texts),
                    description=self._cat_text(cat, "description", loc, texts),
                    justification=fmt(texts["policy_justification"], text=cat.justification)
                    if cat.justification
                    else "",
                    cookie_names=fmt(texts["cookies"], names=sep.join(c.name for c in cookies))
                    if cookies
                    else "",
                    cookies=cookies,
                )
            )
        optional = [c.title for c in cats if not c.required]
        controller = cfg.controller or texts["this_site"]
        if optional:
            intro = fmt(texts["intro"], controller=controller, purposes=sep.join(optional))
        else:
            intro = fmt(texts["intro_necessary"], controller=controller)
        third = [r for _, r in rules if r.third_party]
        providers = list(dict.fromkeys(r.provider for r in third if r.provider))
        if providers:
            third_parties = fmt(texts["third_parties"], providers=sep.join(providers))
        else:
            third_parties = texts["third_parties_unnamed"] if third else ""
        gpc_off = [
            v.title
            for v, c in zip(cats, cfg.categories, strict=True)
            if not c.required and c.opts_out_on_gpc
        ]
        gpc_note = fmt(texts["gpc_note"], categories=sep.join(gpc_off)) if gpc_off else ""
        return _LocaleView(
            locale=loc,
            lang=loc,
            dir="rtl" if self.is_rtl(loc) else "ltr",
            texts=texts,
            cats=tuple(cats),
            intro=intro,
            third_parties=third_parties,
            gpc_note=gpc_note,
        )

    def _cat_text(self, cat: Category, field: str, loc: str, texts: dict[str, str]) -> str:
        value = getattr(cat, field)
        if isinstance(value, str):
            return value
        lang = loc.lower().split("-")[0]
        default = texts.get(f"cat_{cat.key}_{'title' if field == 'title' else 'desc'}")
        if value:
            for k in (loc, lang):
                if k in value:
                    return str(value[k])
            if default is not None:
                return default
            for k in (self.config.default_locale, "en"):
                if k in value:
                    return str(value[k])
            return str(next(iter(value.values())))
        if default is not None:
            return default
        return cat.key.replace("_", " ").replace("-", " ").capitalize() if field == "title" else ""

    def _bundle(self, view: _LocaleView) -> tuple[str, str]:
        cfg = self.config
        data = {
            "locale": view.locale,
            "revision": cfg.revision,
            "controller": cfg.controller,
            "privacy_policy_url": cfg.privacy_policy_url,
            "theme": cfg.theme.model_dump(),
            "texts": view.texts,
            "shown": {
                "intro": view.intro,
                "third_parties": view.third_parties,
                "gpc_note": view.gpc_note,
            },
            "categories": [
                {
                    "key": c.key,
                    "required": c.required,
                    "title": c.title,
                    "description": c.description,
                    "justification": c.justification,
                    "cookies": [
                        {
                            "name": k.name,
                            "provider": k.provider,
                            "purpose": k.purpose,
                            "duration": k.duration,
                            "max_age": k.max_age,
                            "third_party": k.third_party,
                            "storage": k.storage,
                        }
                        for k in c.cookies
                    ],
                }
                for c in view.cats
            ],
        }
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest(), canonical

    def texts_bundle(self, locale: str) -> tuple[str, str]:
        """``(sha256 hex, canonical JSON)`` of everything shown in ``locale``.

        The JSON holds all banner texts, the category titles and descriptions, the
        cookie declaration, the controller, the theme and the revision; it is
        byte-identical across processes for the same configuration.
        """
        return self._bundles[self._canon(locale)]

    @staticmethod
    def _consent_modes(categories: list[Category]) -> dict[str, tuple[str, ...]]:
        return {c.key: c.consent_mode_types for c in categories if c.consent_mode_types}

    def _context(self, view: _LocaleView, prefix: str, state: ConsentState) -> dict[str, Any]:
        theme = self.config.theme
        return {
            "t": view.texts,
            "lang": view.lang,
            "dir": view.dir,
            "cats": view.cats,
            "intro": view.intro,
            "third_parties": view.third_parties,
            "gpc_note": view.gpc_note,
            "gpc": state.gpc,
            "decided": state.decided,
            "granted": sorted(state.granted),
            "prefix": prefix,
            "layout": theme.layout,
            "position": theme.position,
            "privacy_url": self.config.privacy_policy_url,
            "controller": self.config.controller,
            "css_url": self.static_url("consent.css", prefix),
            "js_url": self.static_url("consent.js", prefix),
            "next_url": Markup(_URL),
            "nonce_attr": Markup(_NONCE),
        }

    # -- per request ------------------------------------------------------------------
    def snippet(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        next_url: str = "/",
        nonce: str | None = None,
    ) -> str:
        """The HTML to insert before ``</body>``.

        An undecided visitor gets the whole banner (both layers); a decided one
        only the "Cookie settings" control, consent.css, consent.js and the data
        consent.js needs: every page of a returning visitor stays small, and
        consent.js fetches the banner (:meth:`banner_fragment`, served at
        ``{prefix}/banner``) only when the visitor opens the settings. Rendered
        once per (locale, decided, granted, gpc, prefix); each call only fills in
        ``next_url`` and ``nonce``.
        """
        key = (locale, state.decided, state.granted, state.gpc, prefix)
        cached = self._snippets.get(key)
        if cached is None:
            cached = self._render_snippet(key, state)
        if cached.url_slots:
            url = self._urls.get(next_url)  # inlined: this is the per-page hot path
            if url is None:
                url = self._escape_url(next_url)
        else:
            url = ""  # a decided visitor's snippet has no form, hence no URL to escape
        if nonce is None and cached.simple:
            return "".join((cached.pre, url, cached.post))
        return cached.fill(url, "" if nonce is None else _nonce_attr(nonce))

    def snippet_bytes(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        charset: str,
        next_url: str = "/",
        nonce: str | None = None,
    ) -> bytes:
        """:meth:`snippet` encoded in ``charset``, from cached encoded parts.

        What the middleware injects: no per-page encoding of the whole banner.
        """
        key = (locale, state.decided, state.granted, state.gpc, prefix)
        cached = self._snippets.get(key)
        if cached is None:
            cached = self._render_snippet(key, state)
        if not cached.url_slots:  # decided: no form, so no URL (and no escaping)
            return cached.fill_bytes("", "" if nonce is None else _nonce_attr(nonce), charset)
        url = self._urls.get(next_url)
        if url is None:
            url = self._escape_url(next_url)
        return cached.fill_bytes(url, "" if nonce is None else _nonce_attr(nonce), charset)

    def _render_snippet(self, key: _SnippetKey, state: ConsentState) -> _Compiled:
        locale, _, _, _, prefix = key
        ctx = self._context(self._views[self._canon(locale)], prefix, state)
        modes = self.config.google_consent_mode and self._modes
        # In a single-quoted attribute, JSON's double quotes need no "&#34;" (about 90
        # bytes less on every page); "&" and "'" are escaped by hand, hence Markup.
        raw = json.dumps(modes, separators=(",", ":")) if modes else ""
        ctx["modes"] = Markup(raw.replace("&", "&amp;").replace("'", "&#39;"))
        compiled = _Compiled(self._env.get_template("snippet.html").render(ctx))
        remember(self._snippets, key, compiled, _CACHE_MAX)
        return compiled

    def banner_fragment(
        self, state: ConsentState, locale: str, *, prefix: str, next_url: str = "/"
    ) -> str:
        """The banner alone (``banner.html``: both layers, one ``<form>``), as an HTML
        fragment: what ``GET {prefix}/banner`` answers and consent.js inserts when a
        decided visitor opens the settings. The categories are checked per
        ``state``; the form returns to ``next_url``. Cached like :meth:`snippet`.
        """
        key = (locale, state.decided, state.granted, state.gpc, prefix)
        cached = self._fragments.get(key)
        if cached is None:
            ctx = self._context(self._views[self._canon(locale)], prefix, state)
            cached = _Compiled(self._env.get_template("banner.html").render(ctx))
            remember(self._fragments, key, cached, _CACHE_MAX)
        url = self._urls.get(next_url)
        if url is None:
            url = self._escape_url(next_url)
        return cached.fill(url, "")

    def _escape_url(self, url: str) -> str:
        # Pages repeat, so a bounded memo beats escaping on every call (~5x faster).
        escaped = html.escape(url)
        if len(url) <= _MEMO_LEN:
            remember(self._urls, url, escaped, _CACHE_MAX)
        return escaped

    def head_snippet(self, state: ConsentState, *, nonce: str | None = None) -> str:
        """The Google Consent Mode v2 ``default`` call to insert right after ``<head>``,
        followed by the ``update`` from a decided visitor's stored choice.

        Empty when ``config.google_consent_mode`` is off.
        """
        if not self.config.google_consent_mode:
            return ""
        key = (state.decided, state.granted)
        compiled = self._heads.get(key)
        if compiled is None:
            compiled = _Compiled(self._render_head(state))
            remember(self._heads, key, compiled, _CACHE_MAX)
        return compiled.fill("", "" if nonce is None else _nonce_attr(nonce))

    def head_snippet_bytes(
        self, state: ConsentState, *, charset: str, nonce: str | None = None
    ) -> bytes:
        """:meth:`head_snippet` encoded in ``charset``, from cached encoded parts."""
        if not self.config.google_consent_mode:
            return b""
        key = (state.decided, state.granted)
        compiled = self._heads.get(key)
        if compiled is None:
            self.head_snippet(state)
            compiled = self._heads[key]
        return compiled.fill_bytes("", "" if nonce is None else _nonce_attr(nonce), charset)

    def _mode_values(self, keys: frozenset[str]) -> dict[str, str]:
        on = {"security_storage"}
        for k in keys:
            on.update(self._modes.get(k, ()))
        return {t: "granted" if t in on else "denied" for t in _MODE_TYPES}

    def _render_head(self, state: ConsentState) -> str:
        # The default is the baseline before any choice (required categories only);
        # a decided visitor's choice follows as an update, as Google documents it.
        default: dict[str, Any] = self._mode_values(self.config.required_keys)
        default["wait_for_update"] = self.config.consent_mode_wait_for_update
        js = (
            "window.dataLayer=window.dataLayer||[];"
            "function gtag(){dataLayer.push(arguments)}"
            f"gtag('consent','default',{_js(default)});"
        )
        if state.decided:
            js += f"gtag('consent','update',{_js(self._mode_values(state.granted))});"
        return f"<script{_NONCE}>{js}</script>"

    def policy_page(
        self,
        state: ConsentState,
        locale: str,
        *,
        prefix: str,
        nonce: str | None = None,
        next_url: str | None = None,
    ) -> str:
        """The cookie policy as a full HTML page: the declaration of every cookie
        (name, provider, purpose, category, duration, party, storage), the
        visitor's current choice and the settings form.

        ``next_url`` is where the form returns to (default: this page).
        """
        view = self._views[self._canon(locale)]
        t = view.texts
        sep = t["list_sep"]
        ctx = self._context(view, prefix, state)
        granted_titles = [c.title for c in view.cats if c.key in state.granted]
        ctx.update(
            policy_controller=fmt(t["policy_controller"], controller=self.config.controller),
            allowed=fmt(t["policy_allowed"], categories=sep.join(granted_titles)),
            consent_id=fmt(t["policy_consent_id"], id=state.consent_id) if state.consent_id else "",
            choice_date=fmt(
                t["policy_date"], date=time.strftime("%Y-%m-%d", time.gmtime(state.issued_at))
            )
            if state.issued_at
            else "",
            next_url=next_url if next_url is not None else f"{prefix}/policy",
            nonce_attr=Markup(_nonce_attr(nonce)) if nonce else "",
        )
        return self._env.get_template("policy.html").render(ctx)

    # -- static assets --------------------------------------------------------------------
    def static(self, name: str) -> tuple[bytes, str, str] | None:
        """``(body, content type, ETag)`` of ``consent.js`` or ``consent.css``; ``None``
        for any other name. The CSS starts with the theme's custom properties.
        """
        return self._static.get(name)

    def static_url(self, name: str, prefix: str) -> str:
        """``{prefix}/static/{name}?v={content hash}``: cacheable for ever."""
        return f"{prefix}/static/{name}?v={self._fingerprints[name]}"


def _nonce_attr(nonce: str) -> str:
    # Nonces are base64 in practice; escape only when needed (it is on the hot path).
    if '"' in nonce or "&" in nonce or "<" in nonce:
        nonce = html.escape(nonce)
    return f' nonce="{nonce}"'


def _js(value: dict[str, Any]) -> str:
    # Inline <script>: "<" escaped so no value can close the element.
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _theme_css(theme: Theme) -> str:
    def props(prefix: str) -> str:
        return "".join(
            f"--cc-{v}:{getattr(theme, f'{prefix}color_{name}')};" for v, name in _THEME_VARS
        )

    common = f"--cc-r:{theme.radius};--cc-ff:{theme.font_family};--cc-fs:{theme.font_size};"
    sel = ".cc-root,.cc-page"
    if theme.color_scheme == "light":
        return f"{sel}{{{common}{props('')}color-scheme:light}}\n"
    if theme.color_scheme == "dark":
        return f"{sel}{{{common}{props('dark_')}color-scheme:dark}}\n"
    return (
        f"{sel}{{{common}{props('')}color-scheme:light dark}}\n"
        f"@media(prefers-color-scheme:dark){{{sel}{{{props('dark_')}}}}}\n"
    )
