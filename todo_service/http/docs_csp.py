"""The Content-Security-Policy of the interactive API docs (Scalar, Swagger UI, ReDoc).

The API's own policy allows nothing; the docs pages need their CDN files and a few more sources.
Each page's policy is built once, from its render plugin's configuration:

- ``script-src``: the exact URLs of the plugin's scripts (a path-qualified source, not the whole
  CDN host, which serves every npm package), plus the SHA-256 hash of each inline script of the
  page (Swagger UI and ReDoc embed the schema in one). No ``'unsafe-inline'``, no ``'unsafe-eval'``.
- ``style-src``: the exact stylesheet URLs and ``'unsafe-inline'``: all three inject ``<style>``
  elements and ``style`` attributes at run time.
- ``img-src``: ``data:`` (icons inlined in the CSS) and the favicon.
- per renderer: Scalar's web fonts (``fonts.scalar.com``) and ``connect-src 'self'`` (it fetches
  the schema, and "try it" requests go to this API); Swagger UI ``connect-src 'self'`` ("try it
  out"); ReDoc Google Fonts when enabled (``fonts.googleapis.com`` styles, ``fonts.gstatic.com``
  fonts), ``worker-src blob:`` (its search index runs in a worker built from a blob) and the
  Redocly logo in its footer.

The inline scripts' hashes depend on the schema, so :class:`DocsPolicyMiddleware` buffers each
docs page (a few hundred KB at most, and only on these paths) and hashes its inline scripts before
sending the headers. Every other path passes straight through after one dictionary lookup.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from litestar.enums import MediaType, ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.openapi.plugins import RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from litestar.openapi import OpenAPIConfig
    from litestar.openapi.plugins import OpenAPIRenderPlugin
    from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

__all__ = ("DocsPolicy", "DocsPolicyMiddleware", "docs_policies", "inline_scripts")

CSP_HEADER = b"content-security-policy"
# Directives every docs page has, before the renderer's own.
_BASE: dict[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": (),
    "style-src": ("'unsafe-inline'",),
    "img-src": ("data:",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'none'",),
}
# What each renderer loads or does beyond the script and style URLs it is configured with.
_NEEDS: dict[type[OpenAPIRenderPlugin], dict[str, tuple[str, ...]]] = {
    ScalarRenderPlugin: {"font-src": ("https://fonts.scalar.com",), "connect-src": ("'self'",)},
    SwaggerRenderPlugin: {"connect-src": ("'self'",)},
    # ReDoc's footer shows Redocly's logo from its CDN.
    RedocRenderPlugin: {"worker-src": ("blob:",), "img-src": ("https://cdn.redoc.ly/redoc/logo-mini.svg",)},
}
_GOOGLE_FONTS: dict[str, tuple[str, ...]] = {
    "style-src": ("https://fonts.googleapis.com/css",),
    "font-src": ("https://fonts.gstatic.com",),
}
_SCRIPT_URL_ATTRIBUTES = ("js_url", "standalone_preset_js_url")
_STYLE_URL_ATTRIBUTES = ("css_url",)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""")
_SCRIPT = re.compile(rb"<script\b(?P<attrs>[^>]*)>(?P<text>.*?)</script", re.IGNORECASE | re.DOTALL)
_SRC_ATTRIBUTE = re.compile(rb"(?:^|\s)src\s*=", re.IGNORECASE)


def _source(url: str) -> str:
    """A CSP source for ``url``: the URL itself without query (absolute), or ``'self'`` (relative)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return "'self'"
    return f"{parts.scheme or 'https'}://{parts.netloc}{parts.path}"


def inline_scripts(html: bytes) -> Iterator[bytes]:
    """The text of each ``<script>`` without ``src``, as a browser hashes it (newlines normalised)."""
    for match in _SCRIPT.finditer(html):
        if not _SRC_ATTRIBUTE.search(match["attrs"]):
            yield match["text"].replace(b"\r\n", b"\n").replace(b"\r", b"\n")


class DocsPolicy:
    """One docs page's policy; only the hashes of its inline scripts are added per response."""

    def __init__(self, directives: Mapping[str, tuple[str, ...]]) -> None:
        self.directives = {name: tuple(dict.fromkeys(sources)) for name, sources in directives.items()}

    @classmethod
    def of(cls, plugin: OpenAPIRenderPlugin) -> DocsPolicy:
        """The policy for the pages ``plugin`` renders."""
        directives: dict[str, list[str]] = {name: list(sources) for name, sources in _BASE.items()}

        def add(name: str, *sources: str) -> None:
            directives.setdefault(name, []).extend(sources)

        add("script-src", *(_source(getattr(plugin, a)) for a in _SCRIPT_URL_ATTRIBUTES if getattr(plugin, a, None)))
        add("style-src", *(_source(getattr(plugin, a)) for a in _STYLE_URL_ATTRIBUTES if getattr(plugin, a, None)))
        if favicon := _HREF.search(plugin.favicon):
            add("img-src", _source(favicon[1]))
        needs = [*_NEEDS.get(type(plugin), {}).items()]
        if isinstance(plugin, RedocRenderPlugin) and plugin.google_fonts:
            needs.extend(_GOOGLE_FONTS.items())
        for name, sources in needs:
            add(name, *sources)
        return cls({name: tuple(sources) for name, sources in directives.items()})

    def header_for(self, html: bytes) -> bytes:
        """The header value for this page: the fixed sources plus a hash per inline script."""
        hashes = tuple(
            f"'sha256-{base64.b64encode(hashlib.sha256(text).digest()).decode()}'" for text in inline_scripts(html)
        )
        scripts = (*self.directives.get("script-src", ()), *hashes) or ("'none'",)
        directives = {**self.directives, "script-src": scripts}
        return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items()).encode()


def docs_policies(config: OpenAPIConfig | None) -> dict[str, DocsPolicy]:
    """The policy of each HTML docs page, by request path (with and without a trailing slash)."""
    if config is None:
        return {}
    base = (config.openapi_router.path if config.openapi_router else config.path or "/schema").rstrip("/")
    pages: dict[str, DocsPolicy] = {}
    for plugin in config.render_plugins:
        if plugin.media_type != MediaType.HTML:
            continue
        policy = DocsPolicy.of(plugin)
        for path in plugin.paths:
            page = f"{base}/{path.strip('/')}".rstrip("/") or "/"
            pages[page] = pages[f"{page.rstrip('/')}/"] = policy
    return pages


class DocsPolicyMiddleware(ASGIMiddleware):
    """Sets each docs page's policy, hashing the inline scripts of the page actually sent."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, pages: Mapping[str, DocsPolicy]) -> None:
        self.pages = pages

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Buffer a docs page (only those) to put its policy in the headers."""
        policy = self.pages.get(scope["path"])
        if policy is None:
            await next_app(scope, receive, send)
            return
        start: list[HTTPResponseStartEvent] = []
        body: list[bytes] = []

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:  # noqa: PLR2004
                start.append(message)
                return
            if message["type"] == "http.response.body" and start:
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                page = b"".join(body)
                headers = [header for header in start[0].get("headers", ()) if header[0].lower() != CSP_HEADER]
                start[0]["headers"] = [*headers, (CSP_HEADER, policy.header_for(page))]
                await send(start[0])
                await send({"type": "http.response.body", "body": page, "more_body": False})
                return
            await send(message)

        await next_app(scope, receive, send_with_policy)
