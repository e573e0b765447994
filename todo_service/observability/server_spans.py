"""The server span of each request: started before routing, with nothing computed for a span that is not recorded.

OpenTelemetry's ASGI middleware (which Litestar's plugin runs by default) builds every attribute of
the span (decoding the headers, the URL, the client) and wraps ``send`` for every request, then asks
the sampler; with a 10% sampler, nine requests in ten pay for attributes that go nowhere. It was
the largest single cost of a request in the ``production`` benchmark (a quarter of a read's CPU in
process, docs/performance.md). :class:`ServerSpans` takes its place through Litestar's public
``OpenTelemetryConfig.middleware_class``, and does, in this order:

1. continue the caller's trace (the global propagator: W3C ``traceparent``/``tracestate``, looked
   for in the header list: no mapping of every header is built);
2. start the ``SERVER`` span, named after the method (routing renames it: observability/traces.py),
   and make it current, so that every span of the request (database, Redis, ours) is its child;
3. only when the sampler records it: the request's attributes (the HTTP semantic conventions'
   names the ASGI instrumentation uses, never the query string: it holds the user's search terms)
   and, from the response's start, the status code (and an error status for 5xx).

An unrecorded span still has a trace id (``X-Trace-Id``, the logs' ``trace_id``). The span is made
current with ``context.attach``/``detach`` rather than ``start_as_current_span``: the same context,
without a context manager, a generator and an exception handler per request (6.1 -> 3.6 µs per
unsampled span, measured). Asking the sampler before the tracer (a ``NonRecordingSpan`` of our own
when it drops the trace) saves one more µs, but a sampled root span would then need the tracer to
take the trace id the sampler was asked about, which the SDK offers no public way to do: the tracer
asks the sampler (it makes the same ``NonRecordingSpan`` for a dropped trace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.plugins.opentelemetry import OpenTelemetryInstrumentationMiddleware
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import sanitize_method

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.plugins.opentelemetry import OpenTelemetryConfig
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

__all__ = ("SERVER_SPAN", "ServerSpans", "span_method")

SERVER_SPAN = "otel_server_span"  # the request's server span, in the scope state
_PROPAGATED = frozenset({b"traceparent", b"tracestate"})
_SERVER_ERROR = 500
# Methods (as sent) -> their span name: a lookup per request instead of sanitize_method's
# upper-casing and environment read. Unknown methods ("HTTP") are not kept, and at most _MAX_METHODS
# spellings are (with OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS every method is "known").
_METHOD_NAMES: dict[str, str] = {}
_MAX_METHODS = 64


def span_method(scope: Scope) -> str:
    """The request's method as a server span names it: a known method, else ``HTTP`` (semantic conventions)."""
    method = str(scope.get("method", ""))
    if (name := _METHOD_NAMES.get(method)) is not None:
        return name
    name = sanitize_method(method)
    if name == "_OTHER":
        return "HTTP"
    if len(_METHOD_NAMES) < _MAX_METHODS:
        _METHOD_NAMES[method] = name
    return name


def _caller_context(headers: Iterable[tuple[bytes, bytes]]) -> Context | None:
    """The caller's trace context from ``traceparent``/``tracestate`` (the last of each), or None."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in _PROPAGATED:
            carrier[name.decode()] = value.decode("latin-1")
    return propagate.extract(carrier) if carrier else None


def _attributes(scope: Scope, headers: dict[bytes, bytes]) -> dict[str, Any]:
    """The request's attributes (the ASGI instrumentation's names), without the query string."""
    scheme = scope.get("scheme", "http")
    host = headers.get(b"host", b"").decode("latin-1")
    path = scope.get("path", "")
    attributes: dict[str, Any] = {
        "http.method": span_method(scope),
        "http.scheme": scheme,
        "http.flavor": scope.get("http_version", ""),
        "http.target": path,
        "http.url": f"{scheme}://{host}{path}" if host else path,
    }
    if host:
        attributes["http.host"] = host
    if server := scope.get("server"):
        attributes["net.host.port"] = server[1]
    if user_agent := headers.get(b"user-agent"):
        attributes["http.user_agent"] = user_agent.decode("latin-1")
    if client := scope.get("client"):
        attributes["net.peer.ip"], attributes["net.peer.port"] = client[0], client[1]
    return attributes


class ServerSpans(OpenTelemetryInstrumentationMiddleware):
    """A ``SERVER`` span around routing and the handler (Litestar's OpenTelemetry ``middleware_class``).

    Litestar runs it outermost and honours the configuration's ``exclude`` (the untraced routes) and
    ``scopes`` before calling it.
    """

    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        super().__init__(app, config)
        if config.tracer_provider is None:
            raise ValueError("ServerSpans needs the configuration's tracer_provider")
        self.tracer = config.tracer_provider.get_tracer("todo_service.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its server span."""
        span = self.tracer.start_span(
            span_method(scope),
            context=_caller_context(scope["headers"]),
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        )
        scope.setdefault("state", {})[SERVER_SPAN] = span
        token = context.attach(trace.set_span_in_context(span))
        try:
            if not span.is_recording():
                await self.app(scope, receive, send)
                return
            span.set_attributes(_attributes(scope, dict(scope["headers"])))
            await self.app(scope, receive, _recording_status(span, send))
        finally:
            context.detach(token)
            span.end()


def _recording_status(span: Span, send: Send) -> Send:
    async def send_with_status(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = message["status"]
            span.set_attribute("http.status_code", status)
            # A 5xx is an error; one from an exception already says which (record_server_error): keep that.
            current = getattr(span, "status", None)  # the SDK's span has one; the API's does not
            if status >= _SERVER_ERROR and (current is None or current.status_code is StatusCode.UNSET):
                span.set_status(Status(StatusCode.ERROR))
        await send(message)

    return send_with_status
