"""Transport hygiene: request ids, security headers, CORS, trusted hosts, request body deadlines.

The front door (``front_door.py``) heads the app's middleware list (see ``create_app``) and
:class:`TransportSecurity`, a plugin, adds the rest in its ``on_app_init``:

- The front door gives the request its id first (:func:`ensure_request_id`), so the id is in the
  scope state (``request_id_of(scope)``) before authentication, rate limiting, handlers and the
  exception handler run: logs and the audit trail can use it.
- Then, in the same layer, the trusted-host check (two ``Host`` headers always, other hosts when
  ``ALLOWED_HOSTS`` is not ``*``) and the request body deadline (``body.py``).
- A ``before_send`` hook writes the headers. App middleware does not run for unknown-route 404s,
  405s or CORS preflights, and errors raised by middleware are sent past it; the hook sees every
  response. When the middleware never ran, the hook assigns the id by the same rules.
- CORS (Litestar's, outside the router) only when ``CORS_ORIGINS`` is set.

Header values are encoded once, when the app is built. Per response the hook picks one of two
lists by path prefix and appends the headers the response does not already carry (a response may
set its own ``Cache-Control``; the docs pages carry their own CSP).

``Cache-Control: no-store`` goes on every response under ``/api/v1`` except the health probes:
auth responses carry tokens, everything else is one user's data. Probes and docs are public.
"""

from __future__ import annotations

import string
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from litestar.config.cors import CORSConfig
from litestar.plugins import InitPlugin
from litestar.routes import HTTPRoute

from todo_service.core.request_context import REQUEST_ID_KEY
from todo_service.core.settings import Settings, SettingsError
from todo_service.http.hosts import AllowedHosts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.config.app import AppConfig
    from litestar.routes import BaseRoute
    from litestar.types import Message, Method, Scope

__all__ = (
    "API_CSP",
    "CORS_EXPOSED_HEADERS",
    "CORS_METHODS",
    "CORS_REQUEST_HEADERS",
    "REQUEST_ID_HEADER",
    "AllowHeader",
    "SecurityHeaders",
    "TransportSecurity",
    "cors_config",
    "ensure_request_id",
    "sane_request_id",
)

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_ALLOW = b"allow"
_REQUEST_ID_BYTES = (string.ascii_letters + string.digits + "._:-").encode()

# The API serves JSON only: a document it returns may load, embed or submit nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
API_PREFIX = "/api/v1/"
HEALTH_PATH = "/api/v1/health"

CORS_METHODS: Final[tuple[Method, ...]] = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", REQUEST_ID_HEADER)
CORS_EXPOSED_HEADERS = (
    REQUEST_ID_HEADER,
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-Trace-Id",  # with tracing on: the request's trace, to look it up in Jaeger
    "traceresponse",
)


def sane_request_id(value: bytes) -> str | None:
    """A client's ``X-Request-ID`` if it is 1..128 of ``A-Z a-z 0-9 . _ : -``, else None."""
    if 0 < len(value) <= MAX_REQUEST_ID_LENGTH and not value.translate(None, _REQUEST_ID_BYTES):
        return value.decode("ascii")
    return None


def ensure_request_id(scope: Scope) -> str:
    """This request's id: kept in the scope state; the client's when sane, else a new uuid4 (hex)."""
    state = scope.setdefault("state", {})
    known = state.get(REQUEST_ID_KEY)
    if isinstance(known, str):
        return known
    request_id = None
    for name, value in scope.get("headers", ()):
        if name.lower() == _REQUEST_ID:
            request_id = sane_request_id(value)
            break
    state[REQUEST_ID_KEY] = request_id = request_id or uuid.uuid4().hex
    return request_id


def _encode(headers: Sequence[tuple[str, str]]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers)


class SecurityHeaders:
    """The headers every response carries, encoded once; :meth:`before_send` adds them."""

    def __init__(self, *, hsts_max_age: int = 0) -> None:
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", API_CSP),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
        ]
        if hsts_max_age > 0:
            common.append(("Strict-Transport-Security", f"max-age={hsts_max_age}; includeSubDomains"))
        self.public = _encode(common)
        self.private = _encode([*common, ("Cache-Control", "no-store")])

    def for_path(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        """``private`` (with ``no-store``) under ``/api/v1`` except the health probes, else ``public``."""
        if path.startswith(API_PREFIX) and not (path == HEALTH_PATH or path.startswith(HEALTH_PATH + "/")):
            return self.private
        return self.public

    async def before_send(self, message: Message, scope: Scope) -> None:
        """``before_send`` hook: the security headers and ``X-Request-ID`` on every response."""
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", ()))
        present = {name.lower() for name, _ in headers}
        headers.extend(header for header in self.for_path(scope.get("path", "")) if header[0] not in present)
        if _REQUEST_ID not in present:
            headers.append((_REQUEST_ID, ensure_request_id(scope).encode("ascii")))
        message["headers"] = headers


class AllowHeader:
    """``Allow`` on every successful ``OPTIONS`` answer: exactly the methods of the path, plus OPTIONS.

    Litestar's automatic OPTIONS handler is made with the first handler registered on a path and
    keeps listing that handler's methods only when more are added (a controller's ``GET`` and
    ``PUT`` on ``/users/me`` answered ``Allow: GET, OPTIONS``); and with CORS on, its middleware
    answers every ``OPTIONS`` that has an ``Origin`` (a preflight) before routing, without
    ``Allow``. This ``before_send`` hook sets it on both from the app's routes, whose ``methods``
    are right (they also give a 405 its ``Allow``). The table is built on first use, again when
    routes were added since.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[tuple[object, ...], bytes]] = []
        self._built_from = -1

    async def before_send(self, message: Message, scope: Scope) -> None:
        """``before_send`` hook: replace (or add) ``Allow`` on a 2xx/3xx answer to ``OPTIONS``."""
        if (
            message["type"] != "http.response.start"
            or scope.get("method") != "OPTIONS"
            or message["status"] >= HTTPStatus.BAD_REQUEST
            or (allow := self.allow_for(scope)) is None
        ):
            return
        headers = [(name, value) for name, value in message.get("headers", ()) if name.lower() != _ALLOW]
        headers.append((_ALLOW, allow))
        message["headers"] = headers

    def allow_for(self, scope: Scope) -> bytes | None:
        """The ``Allow`` value of the route the request's path matches; None when it matches none."""
        routes = scope["app"].routes
        if len(routes) != self._built_from:
            self._routes = _route_table(routes)
            self._built_from = len(routes)
        segments = [segment for segment in scope.get("path", "").split("/") if segment]
        for components, allow in self._routes:
            if _matches(components, segments):
                return allow
        return None


def _route_table(routes: Sequence[BaseRoute]) -> list[tuple[tuple[object, ...], bytes]]:
    """Each HTTP route's path components and ``Allow`` value; routes with fewer parameters first."""
    table: list[tuple[tuple[object, ...], bytes]] = [
        (tuple(route.path_components), ", ".join(sorted({*route.methods, "OPTIONS"})).encode("ascii"))
        for route in routes
        if isinstance(route, HTTPRoute)
    ]
    table.sort(key=lambda entry: sum(not isinstance(c, str) for c in entry[0]))  # static paths win
    return table


def _matches(components: tuple[object, ...], segments: list[str]) -> bool:
    if len(components) != len(segments):
        return False
    for component, segment in zip(components, segments, strict=True):
        if isinstance(component, str):
            if component != segment:
                return False
            continue
        try:  # a path parameter: its value must parse (a uuid, an int, ...)
            getattr(component, "parser", str)(segment)
        except (TypeError, ValueError):
            return False
    return True


def cors_config(origins: Sequence[str]) -> CORSConfig | None:
    """Litestar's CORS for exactly ``origins`` (``CORS_ORIGINS``); None (CORS off) when there are none.

    Bearer tokens, not cookies, authenticate: credentials are not allowed.

    Raises:
        SettingsError: an entry is not an origin such as ``https://app.example.com``.
    """
    allowed: list[str] = []
    for origin in origins:
        parts = urlsplit(origin.rstrip("/"))
        if origin != "*" and (parts.scheme not in {"http", "https"} or not parts.netloc or parts.path or parts.query):
            raise SettingsError(
                f"invalid setting CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com"
            )
        allowed.append(origin.rstrip("/"))
    if not allowed:
        return None
    return CORSConfig(
        allow_origins=allowed,
        allow_methods=list(CORS_METHODS),
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        allow_credentials=False,
    )


class TransportSecurity(InitPlugin):
    """Everything above, built once from the settings; a plugin (``create_app`` lists the front door)."""

    def __init__(self, settings: Settings) -> None:
        self.headers = SecurityHeaders(hsts_max_age=settings.hsts_max_age)
        self.cors = cors_config(settings.cors_origins)
        self.allowed_hosts = AllowedHosts.parse(settings.allowed_hosts)
        self.allow = AllowHeader()
        self.body_timeout = settings.request_body_timeout_seconds

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """The response headers and CORS (the middleware is in the app's list)."""
        app_config.before_send.append(self.headers.before_send)
        app_config.before_send.append(self.allow.before_send)
        if self.cors is not None:
            app_config.cors_config = self.cors
        return app_config
