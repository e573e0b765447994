"""Real OTLP trace receivers for the tests, on 127.0.0.1: over HTTP (protobuf, gzip or not) and gRPC.

Each decodes ``ExportTraceServiceRequest`` with the ``opentelemetry-proto`` classes, as a collector
would, keeps the spans in plain dataclasses and answers an empty ``ExportTraceServiceResponse``.
Tests wait for spans with :meth:`Receiver.wait_for`, which polls with a deadline.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.servers import serving_in_a_thread

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

WAIT_TIMEOUT = 15.0


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, decoded."""

    trace_id: str  # hex, 32 digits
    span_id: str  # hex, 16 digits
    parent_span_id: str  # hex, or "" for a root span
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, ...
    status: str  # UNSET, OK, ERROR
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (trace id, span id), hex


@dataclass(frozen=True)
class ReceivedExport:
    """One export call: where it went, its headers (lower-case names) and how many spans it held."""

    path: str
    headers: dict[str, str]
    span_count: int


@dataclass
class Receiver:
    """What both receivers share: the spans and exports received so far, behind a lock."""

    exports: list[ReceivedExport] = field(default_factory=list)
    port: int = 0  # the loopback port it listens on, once started
    _spans: list[ReceivedSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (plain HTTP, or plain-text gRPC)."""
        return f"http://127.0.0.1:{self.port}"

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans received so far of one trace."""
        return [span for span in self.spans() if span.trace_id == trace_id]

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = WAIT_TIMEOUT
    ) -> list[ReceivedSpan]:
        """Poll until ``predicate(spans)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if predicate(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({span.name for span in spans})
                raise AssertionError(f"no matching spans within {timeout}s; received {len(spans)}: {names}")
            time.sleep(0.02)

    def wait_for_trace(
        self, trace_id: str, has: Callable[[list[ReceivedSpan]], bool], timeout: float = WAIT_TIMEOUT
    ) -> list[ReceivedSpan]:
        """The spans of one trace, once ``has(them)`` holds."""
        spans = self.wait_for(lambda spans: has([span for span in spans if span.trace_id == trace_id]), timeout)
        return [span for span in spans if span.trace_id == trace_id]

    def accept(self, request: ExportTraceServiceRequest, path: str, headers: dict[str, str]) -> None:
        """Store the spans of one export request."""
        spans = [
            _decode(span, _attributes(resource_spans.resource.attributes), scope_spans.scope.name)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._lock:
            self._spans.extend(spans)
            self.exports.append(ReceivedExport(path=path, headers=headers, span_count=len(spans)))


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_POST(self) -> None:
        if not self.path.endswith("/v1/traces"):
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except Exception:  # noqa: BLE001  (any undecodable body is the client's error)
            self.send_error(400)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.receiver.accept(request, self.path, headers)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the stdlib's name)
        """Quiet: the tests read spans, not access lines."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


@dataclass
class HTTPReceiver(Receiver):
    """``POST /v1/traces`` (under any prefix) on a free loopback port."""


@contextlib.contextmanager
def otlp_http_receiver() -> Iterator[HTTPReceiver]:
    """An OTLP/HTTP receiver, serving until the block ends."""
    receiver = HTTPReceiver()
    server = _HTTPServer(receiver)
    receiver.port = server.server_address[1]
    with serving_in_a_thread(server):
        yield receiver


@dataclass
class GrpcReceiver(Receiver):
    """The ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` method on a free loopback port."""

    def export(self, request: ExportTraceServiceRequest, context: Any) -> ExportTraceServiceResponse:
        """The RPC: store the spans, with the call's metadata as headers."""
        headers = {str(key): str(value) for key, value in context.invocation_metadata()}
        self.accept(request, "opentelemetry.proto.collector.trace.v1.TraceService/Export", headers)
        return ExportTraceServiceResponse()


@contextlib.contextmanager
def otlp_grpc_receiver() -> Iterator[GrpcReceiver]:
    """An OTLP/gRPC receiver, serving until the block ends."""
    receiver = GrpcReceiver()
    handler = grpc.unary_unary_rpc_method_handler(
        receiver.export,
        request_deserializer=ExportTraceServiceRequest.FromString,
        response_serializer=ExportTraceServiceResponse.SerializeToString,
    )
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}
            ),
        )
    )
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver
    finally:
        server.stop(grace=None).wait(timeout=5)


def _decode(span: Span, resource: dict[str, Any], scope: str) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        status_message=span.status.message,
        attributes=_attributes(span.attributes),
        events=[(event.name, _attributes(event.attributes)) for event in span.events],
        resource=resource,
        scope=scope,
        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    items: list[KeyValue] = list(pairs)
    return {pair.key: _value(pair.value) for pair in items}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None
