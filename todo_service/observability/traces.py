"""Traces: the OpenTelemetry SDK, configured from Settings; nothing at all without an OTLP endpoint.

:func:`build_tracing` returns None when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is unset: then no provider,
middleware, hook or instrumentation exists and requests cost nothing more. With an endpoint:

- one :class:`TracerProvider` per process and tracing configuration
  (:mod:`todo_service.observability.providers`), handed to everything explicitly. App shutdown
  flushes it (uvicorn re-raises SIGTERM once the app is down: no exit handler runs then); at a
  normal exit the SDK's own handler shuts it down, once.
- one trace per request: :class:`~todo_service.observability.server_spans.ServerSpans`, run by
  Litestar's OpenTelemetry integration around routing, makes the server span (continuing a
  caller's W3C ``traceparent``; attributes only for a recorded span); a ``before_send`` hook
  renames it after the route template (``GET /api/v1/users/{user_id}/tasks``, never the raw path)
  and answers ``X-Trace-Id`` and ``traceresponse``. A route that declares :data:`UNTRACED` in its
  ``opt`` (health probes, the docs, ``/metrics``) is not traced, its queries included: the server
  span starts before routing, so :class:`Tracing` (a route-receiving plugin) turns the paths of
  those routes into the server spans' ``exclude`` patterns as they are registered; inside,
  :class:`_Untraced` reads the matched route's ``opt`` and suppresses every child span.
- database spans from the engine the app uses (SQLAlchemy's ``EngineTracer``, per engine: the
  instrumentor is a process singleton that would instrument the first engine only, and patches
  ``create_engine`` globally), without its pool listeners (a no-op meter's) and without a span
  started per statement inside an unrecorded trace (:func:`_trim`); Redis spans from redis-py's
  instrumentation, which patches the library globally: done once per process (again only if the
  configuration changes, in tests).
- :func:`record_server_error` (the exception handler) marks 5xx spans as errors, exception recorded.
"""

from __future__ import annotations

import asyncio
import functools
import re
import traceback
from typing import TYPE_CHECKING, Any

from litestar.enums import HttpMethod, ScopeType
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.routes import HTTPRoute
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.trace import Status, StatusCode, Tracer
from sqlalchemy import event

from todo_service import __version__
from todo_service.observability.providers import instrument_redis, tracer_provider_for
from todo_service.observability.redaction import redact
from todo_service.observability.server_spans import SERVER_SPAN, ServerSpans, span_method

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.config.app import AppConfig
    from litestar.routes import BaseRoute
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from todo_service.core.settings import Settings

__all__ = (
    "TRACE_ID_HEADER",
    "UNTRACED",
    "Tracing",
    "build_tracing",
    "current_trace_ids",
    "record_server_error",
    "untraced_path_pattern",
)

TRACE_ID_HEADER = "X-Trace-Id"
# A route's ``opt`` key, declared by the route itself (``opt={UNTRACED: True}``): no server span, no
# child spans (health probes, the docs, ``/metrics``: polled all day, nothing to learn from them).
UNTRACED = "untraced"
_PATH_PARAMETER = re.compile(r"(/?)\{[^{}:]+:([^{}]+)\}")
FLUSH_TIMEOUT_MILLIS = 5000
_TRACE_ID_NAME = TRACE_ID_HEADER.lower().encode()


def current_trace_ids() -> tuple[str, str] | None:
    """The current ``(trace_id, span_id)`` in hex (32 and 16 digits), or None outside any span.

    For log lines: inside a request that is the server span (sampled or not: ``X-Trace-Id`` tells
    the client the same id).
    """
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def record_server_error(exc: BaseException) -> None:
    """Mark the current span as failed with ``exc`` recorded (for 5xx; no-op when nothing is traced).

    The message and stack trace go through the logs' redaction: SQLAlchemy errors quote the values
    a statement was given, which ``db.statement`` never shows either.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    stack = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    span.record_exception(exc, attributes={"exception.message": redact(str(exc)), "exception.stacktrace": stack})
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def build_tracing(settings: Settings, engine: AsyncEngine) -> Tracing | None:
    """The app's tracing (instrumenting ``engine``), or None when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is unset."""
    provider = tracer_provider_for(settings)
    if provider is None:
        return None
    # The instrumentation's own metrics stay off: Prometheus has ours.
    meter = NoOpMeterProvider().get_meter(__name__)
    connections = meter.create_up_down_counter("db.client.connections.usage")
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    _trim(EngineTracer(tracer, engine.sync_engine, connections), engine.sync_engine)  # type: ignore[no-untyped-call]
    if settings.redis_url:
        instrument_redis(provider)
    return Tracing(provider)


class Tracing(InitPlugin, ReceiveRoutePlugin):
    """One app's tracing, as a plugin: the provider, a tracer for our own spans, the untraced routes.

    :attr:`server_spans` makes the server spans (Litestar runs it outermost, around routing) and
    :attr:`middleware` suppresses the untraced routes' child spans: ``create_app`` lists both.
    ``on_app_init`` adds the ``before_send`` hook that names the span and answers ``X-Trace-Id``, and
    the flush at shutdown.

    ``receive_route`` is called by Litestar for each route as it is registered, before the app
    builds its ASGI handler (and with it the OpenTelemetry middleware, which reads ``exclude`` then):
    the path of every HTTP route whose handlers all declare :data:`UNTRACED` (Litestar's automatic
    ``OPTIONS`` handler aside) becomes one anchored pattern of that ``exclude``. A route registered
    on the app after it was built still has its child spans suppressed, not its server span.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("todo_service", __version__)
        # The statements sent to asyncpg directly (db/statements.py) make their own CLIENT spans.
        self.db_tracer: Tracer = provider.get_tracer("todo_service.db", __version__)
        self.untraced_paths: dict[str, bool] = {}  # each HTTP route's path: whether it declared UNTRACED
        self.config = OpenTelemetryConfig(
            tracer_provider=provider,
            meter_provider=NoOpMeterProvider(),
            exclude=None,  # filled by receive_route (an empty list would exclude every path)
            scopes={ScopeType.HTTP},
            middleware_class=ServerSpans,
        )

    @property
    def server_spans(self) -> DefineMiddleware:
        """The server span of each request (:class:`ServerSpans`).

        Listed with the app's middleware; Litestar takes it out of the list and runs it outermost,
        around routing (its OpenTelemetry integration), so unknown paths and 405s have spans too.
        """
        return self.config.middleware

    @property
    def middleware(self) -> DefineMiddleware:
        """No child spans for routes that declare :data:`UNTRACED`: the innermost middleware."""
        return DefineMiddleware(_Untraced)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """The span-naming and trace-id hook, the flush at shutdown."""
        app_config.before_send.append(_name_span_and_answer_trace_id)
        app_config.on_shutdown.append(self.flush)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        """Keep whether this route's path is untraced; the server spans' ``exclude`` follows."""
        if not isinstance(route, HTTPRoute):
            return
        # Registering another handler on a known path hands over a new route with all of them: replace.
        handlers = [handler for handler in route.route_handlers if handler.http_methods != {HttpMethod.OPTIONS}]
        self.untraced_paths[route.path] = bool(handlers) and all(handler.opt.get(UNTRACED) for handler in handlers)
        patterns = [untraced_path_pattern(path) for path, untraced in self.untraced_paths.items() if untraced]
        self.config.exclude = patterns or None

    async def flush(self) -> None:
        """Export the spans still queued (at app shutdown; the provider lives on for other apps)."""
        await asyncio.to_thread(self.provider.force_flush, FLUSH_TIMEOUT_MILLIS)


def untraced_path_pattern(path: str) -> str:
    """An anchored pattern of the request paths a route path matches, for the OpenTelemetry ``exclude``.

    A ``{name:type}`` parameter is one path segment; a ``{name:path}`` one is whatever follows, if
    anything. A trailing slash is allowed (the router ignores it).
    """
    parts, position = ["^"], 0
    for match in _PATH_PARAMETER.finditer(path):
        slash, kind = match.groups()
        parts.append(re.escape(path[position : match.start()]))
        parts.append(f"(?:{slash}.*)?" if kind.strip() == "path" else f"{slash}[^/]+")
        position = match.end()
    parts.append(re.escape(path[position:].rstrip("/")))
    parts.append(r"/?\Z")
    return "".join(parts)


class _Untraced:
    """Routes that declare :data:`UNTRACED`: no server span (ServerSpans skips them) and no child spans.

    A plain ASGI middleware, not Litestar's ``ASGIMiddleware``: it runs for every traced request,
    and its one test needs none of that class's per-request bypass checks (scopes, opt key, paths).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # App middleware runs after routing: the matched handler is in the scope, its opt merged with its owners'.
        if scope["type"] != ScopeType.HTTP or not scope["route_handler"].opt.get(UNTRACED):
            await self.app(scope, receive, send)
            return
        with suppress_instrumentation():  # e.g. the readiness probe's SELECT 1 would make a root span
            await self.app(scope, receive, send)


async def _name_span_and_answer_trace_id(message: Message, scope: Scope) -> None:
    """``before_send``: name the server span after the route; tell the client the trace id."""
    if message["type"] != "http.response.start" or (span := scope.get("state", {}).get(SERVER_SPAN)) is None:
        return
    # An unrecorded span (9 in 10 at the 10% sampler) keeps no name or attribute: nothing to set.
    if span.is_recording() and (template := scope.get("path_template")):  # unknown routes keep the bare method
        span.update_name(f"{span_method(scope)} {template}")
        span.set_attribute(HTTP_ROUTE, template)
    context = span.get_span_context()
    trace_id = format(context.trace_id, "032x")
    # Appended to the raw list (nothing else sets these two): no scan of the headers per header set.
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = message["headers"] = list(headers or ())
    headers.append((_TRACE_ID_NAME, trace_id.encode()))
    headers.append((b"traceresponse", f"00-{trace_id}-{context.span_id:016x}-{context.trace_flags:02x}".encode()))


def _in_unsampled_trace() -> bool:
    """Whether the current span belongs to a trace that is not recorded (its children are not either)."""
    current = trace.get_current_span()
    return current.get_span_context().is_valid and not current.is_recording()


def _trim(engine_tracer: EngineTracer, engine: Engine) -> None:
    """Keep the statement spans of ``engine_tracer``, without its work per connection and per dropped span.

    Its pool listeners (4 per borrowed connection: checkout and checkin, connect and close) count
    ``db.client.connections.usage`` on the no-op meter: they go (the pool gauge is ours, in
    observability/metrics.py). Its statement listener starts a span per statement, which inside an
    unrecorded trace is dropped: it is called only outside one (a background job's root span, or a
    recorded request). Found by the object they are bound to, through SQLAlchemy's event API.
    """
    for identifier in ("connect", "close", "checkin", "checkout"):
        for listener in list(getattr(engine.pool.dispatch, identifier)):
            if getattr(listener, "__self__", None) is engine_tracer:
                event.remove(engine, identifier, listener)
    for listener in list(engine.dispatch.before_cursor_execute):
        if getattr(listener, "__self__", None) is engine_tracer:
            event.remove(engine, "before_cursor_execute", listener)
            event.listen(engine, "before_cursor_execute", _recorded_only(listener), retval=True)


def _recorded_only(listener: Callable[..., tuple[str, Any]]) -> Callable[..., tuple[str, Any]]:
    """``listener`` (a ``before_cursor_execute`` one, ``retval=True``), skipped inside an unrecorded trace."""

    @functools.wraps(listener)
    def before_cursor_execute(*args: Any) -> tuple[str, Any]:  # noqa: ANN401
        # (conn, cursor, statement, parameters, context, executemany): the statement and parameters unchanged
        return (args[2], args[3]) if _in_unsampled_trace() else listener(*args)

    return before_cursor_execute
