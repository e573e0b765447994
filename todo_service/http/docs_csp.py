"""The Content-Security-Policy of the interactive API docs (Scalar, Swagger UI, ReDoc).

The API's own policy allows nothing; the docs pages need their scripts and a few more sources, all
served by the service itself (:mod:`todo_service.http.docs_assets`), so no policy names another
host. Each page's policy is built once, from its render plugin's configuration:

- ``script-src``: ``'self'`` for the plugin's scripts, plus the SHA-256 hash of each inline script of
  the page (Swagger UI and ReDoc embed the schema in one, Scalar its options). No
  ``'unsafe-inline'``, no ``'unsafe-eval'``.
- ``style-src``: the stylesheets (``'self'``) and ``'unsafe-inline'``: all three inject ``<style>``
  elements and ``style`` attributes at run time.
- ``img-src``: ``data:`` (icons inlined in the CSS and scripts) and the favicon.
- per renderer: ``connect-src 'self'`` for Scalar (it fetches the schema; "try it" requests go to
  this API) and Swagger UI ("try it out"); ``worker-src blob:`` for ReDoc (its search index runs in
  a worker built from a blob). ReDoc's sidebar always shows Redocly's logo from Redocly's CDN: the
  policy refuses it, and ReDoc hides the image when it fails to load.

The inline scripts' hashes depend on the schema, so the policy is set by the docs router's
``after_request`` hook (:meth:`DocsPolicies.after_request`) on the page actually rendered: only the
docs routes pay for it, never an API request.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar.enums import MediaType
from litestar.openapi.plugins import RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from litestar import Response
    from litestar.openapi.plugins import OpenAPIRenderPlugin

__all__ = ("CSP_HEADER", "DocsPolicies", "DocsPolicy", "inline_scripts")

CSP_HEADER = "Content-Security-Policy"
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
# What each renderer does beyond loading the script and style URLs it is configured with.
_NEEDS: dict[type[OpenAPIRenderPlugin], dict[str, tuple[str, ...]]] = {
    ScalarRenderPlugin: {"connect-src": ("'self'",)},
    SwaggerRenderPlugin: {"connect-src": ("'self'",)},
    RedocRenderPlugin: {"worker-src": ("blob:",)},
}
# Only when a ReDoc plugin is configured with google_fonts=True (this service's is not).
_GOOGLE_FONTS: dict[str, tuple[str, ...]] = {
    "style-src": ("https://fonts.googleapis.com/css",),
    "font-src": ("https://fonts.gstatic.com",),
}
_SCRIPT_URL_ATTRIBUTES = ("js_url", "standalone_preset_js_url")
_STYLE_URL_ATTRIBUTES = ("css_url",)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""")
_SCRIPT = re.compile(rb"<script\b(?P<attrs>[^>]*)>(?P<text>.*?)</script", re.IGNORECASE | re.DOTALL)
_SRC_ATTRIBUTE = re.compile(rb"""(?:^|\s)src\s*=\s*["']?(?P<url>[^"'\s>]*)""", re.IGNORECASE)


def _source(url: str) -> str:
    """A CSP source for ``url``: ``'self'`` (relative), ``data:``, or the absolute URL without query."""
    parts = urlsplit(url)
    if parts.scheme == "data":
        return "data:"
    if not parts.netloc:
        return "'self'"
    return f"{parts.scheme or 'https'}://{parts.netloc}{parts.path}"


def inline_scripts(html: bytes) -> Iterator[bytes]:
    """The text of each ``<script>`` without ``src``, as a browser hashes it (newlines normalised)."""
    for match in _SCRIPT.finditer(html):
        if not _SRC_ATTRIBUTE.search(match["attrs"]):
            yield match["text"].replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def script_urls(html: bytes) -> Iterator[str]:
    """The ``src`` of each ``<script>`` that has one."""
    for match in _SCRIPT.finditer(html):
        if src := _SRC_ATTRIBUTE.search(match["attrs"]):
            yield src["url"].decode("utf-8", "replace")


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

    def header_for(self, html: bytes) -> str:
        """The header value for this page: the fixed sources plus a hash per inline script."""
        hashes = tuple(
            f"'sha256-{base64.b64encode(hashlib.sha256(text).digest()).decode()}'" for text in inline_scripts(html)
        )
        scripts = (*self.directives.get("script-src", ()), *hashes) or ("'none'",)
        directives = {**self.directives, "script-src": scripts}
        return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class DocsPolicies:
    """The policy of each docs page, known by the script its renderer loads (a hook has no request)."""

    def __init__(self, plugins: Iterable[OpenAPIRenderPlugin]) -> None:
        self.by_script: dict[str, DocsPolicy] = {}
        for plugin in plugins:
            if plugin.media_type == MediaType.HTML and (js_url := getattr(plugin, "js_url", None)):
                self.by_script.setdefault(js_url, DocsPolicy.of(plugin))

    def policy_of(self, html: bytes) -> DocsPolicy | None:
        """The policy of the renderer whose script this page loads; None for any other page."""
        for url in script_urls(html):
            if policy := self.by_script.get(url):
                return policy
        return None

    async def after_request(self, response: Response[Any]) -> Response[Any]:
        """Give a rendered docs page its policy (other docs responses keep the API's).

        Async: Litestar runs a synchronous hook in a worker thread.
        """
        # The asset files arrive here too, as ASGI file responses: they have no content.
        content = getattr(response, "content", None)
        if not isinstance(content, bytes) or response.media_type != MediaType.HTML:
            return response
        if policy := self.policy_of(content):
            response.set_header(CSP_HEADER, policy.header_for(content))
        return response
