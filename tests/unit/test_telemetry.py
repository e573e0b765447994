"""The tracing set-up from Settings: providers, samplers, resource, exporters (to real receivers), helpers.

Exports go to the OTLP receivers of ``tests/otlp_receiver.py`` on loopback ports, over HTTP and gRPC.
The argon2 spans of ``Passwords`` are checked here too, with the SDK's in-memory exporter.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import pytest
from litestar import Litestar, Router, get, post
from litestar.plugins.opentelemetry import OpenTelemetryPlugin
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import make_settings
from tests.otlp_receiver import otlp_grpc_receiver, otlp_http_receiver
from tests.processes import modules_loaded_by
from tests.servers import redis_server
from todo_service import __version__
from todo_service.core.settings import Settings, SettingsError
from todo_service.observability.providers import shutdown_tracing, tracer_provider_for
from todo_service.observability.server_spans import SERVER_SPAN, ServerSpans, span_method
from todo_service.observability.traces import (
    UNTRACED,
    Tracing,
    build_tracing,
    current_trace_ids,
    record_server_error,
    untraced_path_pattern,
)
from todo_service.observability.traces import _name_span_and_answer_trace_id as name_span_and_answer_trace_id
from todo_service.observability.traces import _trim as trim_engine_tracer
from todo_service.security.passwords import Passwords

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from opentelemetry.sdk.trace import ReadableSpan

DB = "sqlite+aiosqlite://"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
STATEMENT_VALUE = "s3cret-value-given-to-a-statement"


def traced_settings(endpoint: str = "http://127.0.0.1:9", **overrides: Any) -> Settings:
    return make_settings(DB, otel_exporter_otlp_endpoint=endpoint, **overrides)


def provider_of(settings: Settings) -> TracerProvider:
    provider = tracer_provider_for(settings)
    assert provider is not None
    return provider


@pytest.fixture
def providers() -> Iterator[Callable[[Settings], TracerProvider]]:
    """``provider_of``, shutting down (and forgetting) every provider the test asked for at its end."""
    asked: list[Settings] = []

    def get(settings: Settings) -> TracerProvider:
        asked.append(settings)
        return provider_of(settings)

    yield get
    for settings in asked:
        shutdown_tracing(settings)


@pytest.fixture
def memory() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A provider of the test's own, keeping finished spans in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def remote_parent(*, sampled: bool) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent))


# --- one provider per process and configuration ------------------------------------------------


async def test_without_an_endpoint_there_is_no_provider_and_no_tracing() -> None:
    settings = make_settings(DB)
    engine = create_async_engine(DB)
    try:
        assert tracer_provider_for(settings) is None
        assert build_tracing(settings, engine) is None
    finally:
        await engine.dispose()


def test_the_provider_is_made_once_per_tracing_configuration(
    providers: Callable[[Settings], TracerProvider],
) -> None:
    first = providers(traced_settings())
    assert providers(traced_settings()) is first
    other_app = make_settings("sqlite+aiosqlite:///other.db", otel_exporter_otlp_endpoint="http://127.0.0.1:9")
    assert providers(other_app) is first  # only the OTEL_* settings matter
    assert providers(traced_settings("http://127.0.0.1:10")) is not first
    assert providers(traced_settings(otel_traces_sampler="always_on")) is not first
    assert providers(traced_settings(otel_exporter_otlp_headers="a=b")) is not first
    assert providers(traced_settings(otel_service_name="other")) is not first


def test_shutdown_flushes_once_and_a_later_app_gets_a_new_provider(caplog: pytest.LogCaptureFixture) -> None:
    with otlp_http_receiver() as receiver:
        settings = traced_settings(receiver.endpoint)
        provider = provider_of(settings)
        provider.get_tracer("test").start_span("queued").end()

        shutdown_tracing(settings)

        assert [span.name for span in receiver.spans()] == ["queued"]  # shutting down flushed it
        with caplog.at_level(logging.DEBUG, logger="opentelemetry"):
            provider.shutdown()  # what the SDK's exit handler would do: harmless (and unregistered anyway)
            shutdown_tracing(settings)
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
        renewed = provider_of(settings)
        assert renewed is not provider
        renewed.get_tracer("test").start_span("after").end()
        assert renewed.force_flush(10_000)
        assert [span.name for span in receiver.wait_for(lambda spans: len(spans) == 2)] == ["queued", "after"]
        shutdown_tracing(settings)


def test_an_endpoint_must_be_an_http_url() -> None:
    for endpoint in ("collector:4318", "localhost", "ftp://collector:4318", "http://"):
        with pytest.raises(SettingsError, match=r"^invalid setting OTEL_EXPORTER_OTLP_ENDPOINT: expected an http"):
            tracer_provider_for(traced_settings(endpoint))


async def test_redis_is_instrumented_once_for_the_latest_configuration() -> None:
    instrumentor = RedisInstrumentor()
    engine = create_async_engine(DB)
    with redis_server() as redis, otlp_http_receiver() as first, otlp_http_receiver() as second:
        a, b = (traced_settings(receiver.endpoint, redis_url=redis.url) for receiver in (first, second))
        try:
            assert build_tracing(a, engine) is not None
            assert instrumentor.is_instrumented_by_opentelemetry
            assert build_tracing(a, engine) is not None  # the factory's second run: nothing new
            assert build_tracing(b, engine) is not None  # another configuration (tests only): it gets the spans
            client = Redis.from_url(redis.url)
            try:
                assert await client.ping()
            finally:
                await client.aclose()
            assert provider_of(a).force_flush(10_000)
            assert provider_of(b).force_flush(10_000)
            (ping,) = second.wait_for(lambda spans: len(spans) == 1)
            assert (ping.name, ping.kind, ping.attributes["db.statement"]) == ("PING", "CLIENT", "PING")
            assert first.spans() == []
        finally:
            shutdown_tracing(b)
            assert not instrumentor.is_instrumented_by_opentelemetry  # went with its provider
            shutdown_tracing(a)
            await engine.dispose()


# --- samplers and resource -----------------------------------------------------------------------------


def test_a_traced_app_without_redis_loads_no_redis_py() -> None:
    """The Redis instrumentation is imported when there is a Redis to instrument.

    redis-py and what it loads held about 10 MB of a worker that keeps its limits in memory.
    """
    program = (
        "from tests.factories import make_settings\n"
        "from todo_service.app import create_app\n"
        "create_app(make_settings('sqlite+aiosqlite:///:memory:', rate_limit_enabled=True,\n"
        "           otel_exporter_otlp_endpoint='http://127.0.0.1:9'))\n"
    )
    assert modules_loaded_by(program, "redis") == []


@pytest.mark.parametrize(
    ("sampler", "argument", "description"),
    [
        ("always_on", None, "AlwaysOnSampler"),
        ("always_off", None, "AlwaysOffSampler"),
        ("traceidratio", 0.25, "TraceIdRatioBased{0.25}"),
        ("traceidratio", None, "TraceIdRatioBased{1.0}"),
        ("parentbased_always_on", None, "ParentBased{root:AlwaysOnSampler,"),
        ("parentbased_always_off", None, "ParentBased{root:AlwaysOffSampler,"),
        ("parentbased_traceidratio", 0.5, "ParentBased{root:TraceIdRatioBased{0.5},"),
    ],
)
def test_the_sampler_comes_from_otel_traces_sampler(
    providers: Callable[[Settings], TracerProvider], sampler: str, argument: float | None, description: str
) -> None:
    settings = traced_settings(otel_traces_sampler=sampler, otel_traces_sampler_arg=argument)
    assert providers(settings).sampler.get_description().startswith(description)


def test_parent_based_sampling_follows_the_caller(providers: Callable[[Settings], TracerProvider]) -> None:
    with otlp_http_receiver() as receiver:
        provider = providers(traced_settings(receiver.endpoint, otel_traces_sampler="parentbased_always_off"))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("root") as root:
            assert not root.is_recording()
        with tracer.start_as_current_span("child", context=remote_parent(sampled=True)) as child:
            assert child.is_recording()
        with tracer.start_as_current_span("unsampled", context=remote_parent(sampled=False)) as unsampled:
            assert not unsampled.is_recording()
        assert provider.force_flush(10_000)
        (exported,) = receiver.wait_for(lambda spans: len(spans) >= 1)
        assert (exported.name, exported.trace_id, exported.parent_span_id) == ("child", CALLER_TRACE, CALLER_SPAN)

        never = providers(
            traced_settings(receiver.endpoint, otel_traces_sampler="traceidratio", otel_traces_sampler_arg=0)
        )
        with never.get_tracer("test").start_as_current_span("never") as span:
            assert not span.is_recording()
        assert never.force_flush(10_000)
        assert [span.name for span in receiver.spans()] == ["child"]


def test_the_resource_comes_from_the_service_name_and_resource_attributes(
    providers: Callable[[Settings], TracerProvider],
) -> None:
    attributes = "deployment.environment=prod,service.name=ignored,team=todo%20squad%2C%20backend, spaced = yes "
    resource = providers(traced_settings(otel_service_name="todo-api", otel_resource_attributes=attributes)).resource
    assert dict(resource.attributes) == {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
        "service.name": "todo-api",  # OTEL_SERVICE_NAME wins
        "service.version": __version__,
        "deployment.environment": "prod",
        "team": "todo squad, backend",
        "spaced": "yes",
    }
    release = providers(traced_settings(otel_resource_attributes="service.version=2024.10-rc1"))
    assert release.resource.attributes["service.version"] == "2024.10-rc1"


# --- exporters, to real receivers ------------------------------------------------------------------------


def test_http_protobuf_posts_to_v1_traces_under_the_endpoint_with_the_headers() -> None:
    with otlp_http_receiver() as receiver:
        settings = traced_settings(
            f"{receiver.endpoint}/otlp/",
            otel_exporter_otlp_headers="authorization=Bearer%20abc,X-Tenant=todo",
            otel_service_name="todo-http",
        )
        provider = provider_of(settings)
        try:
            with provider.get_tracer("test").start_as_current_span("exported", attributes={"answer": 42}):
                pass
            assert provider.force_flush(10_000)
            (span,) = receiver.wait_for(lambda spans: len(spans) == 1)
        finally:
            shutdown_tracing(settings)
    assert (span.name, span.attributes, span.resource["service.name"]) == ("exported", {"answer": 42}, "todo-http")
    (export,) = receiver.exports
    assert export.path == "/otlp/v1/traces"
    assert export.headers["authorization"] == "Bearer abc"
    assert export.headers["x-tenant"] == "todo"
    assert export.headers["content-type"] == "application/x-protobuf"


def test_grpc_exports_to_the_endpoint_with_the_headers_as_metadata() -> None:
    with otlp_grpc_receiver() as receiver:
        settings = traced_settings(
            receiver.endpoint, otel_exporter_otlp_protocol="grpc", otel_exporter_otlp_headers="x-tenant=todo%20grpc"
        )
        provider = provider_of(settings)
        try:
            with provider.get_tracer("test").start_as_current_span("over-grpc"):
                pass
            assert provider.force_flush(10_000)
            (span,) = receiver.wait_for(lambda spans: len(spans) == 1)
        finally:
            shutdown_tracing(settings)
    assert span.name == "over-grpc"
    assert span.resource["service.name"] == "todo-service"
    assert receiver.exports[0].headers["x-tenant"] == "todo grpc"


# --- helpers for the other modules ------------------------------------------------------------------------


def test_current_trace_ids(memory: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, _ = memory
    assert current_trace_ids() is None
    with provider.get_tracer("test").start_as_current_span("outer") as outer:
        context = outer.get_span_context()
        assert current_trace_ids() == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
    assert current_trace_ids() is None
    with trace.use_span(NonRecordingSpan(SpanContext(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), is_remote=False))):
        assert current_trace_ids() == (CALLER_TRACE, CALLER_SPAN)  # not sampled: the ids still correlate logs


async def test_record_server_error_marks_the_span_and_hides_statement_values(
    memory: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = memory
    engine = create_async_engine(DB)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT no_such_column WHERE :value = 1"), {"value": STATEMENT_VALUE})
    except Exception as exc:  # noqa: BLE001  (a real SQLAlchemy error, with its parameters in its message)
        error = exc
    finally:
        await engine.dispose()
    assert STATEMENT_VALUE in str(error)

    record_server_error(error)  # outside any span: nothing to mark, no error
    with provider.get_tracer("test").start_as_current_span("request"):
        record_server_error(error)

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.status.description == "OperationalError"
    ((event_name, attributes),) = [(event.name, dict(event.attributes or {})) for event in span.events]
    assert event_name == "exception"
    assert attributes["exception.type"] == "sqlalchemy.exc.OperationalError"
    assert "no such column: no_such_column" in str(attributes["exception.message"])
    assert "[parameters: [REDACTED]]" in str(attributes["exception.message"])
    assert STATEMENT_VALUE not in repr(attributes)  # (the traceback quotes source lines: hence a constant)


@pytest.mark.parametrize(
    ("route", "path", "untraced"),
    [
        ("/api/v1/health", "/api/v1/health", True),
        ("/api/v1/health", "/api/v1/health/", True),
        ("/api/v1/health", "/api/v1/healthz", False),
        ("/api/v1/health", "/api/v1/health/ready", False),
        ("/api/v1/health", "/x/api/v1/health", False),
        ("/metrics", "/metrics-extra", False),
        ("/metrics", "/metrics\n", False),
        ("/api/docs/openapi.json", "/api/docs/openapi-json", False),
        ("/api/docs/{path:str}", "/api/docs/nope", True),
        ("/api/docs/{path:str}", "/api/docs/a/b", False),
        ("/api/docs/{path:str}", "/api/docs", False),
        ("/users/{user_id:uuid}/tasks", "/users/abc/tasks", True),
        ("/users/{user_id:uuid}/tasks", "/users/abc/tasks/1", False),
        ("/files/{rest:path}", "/files", True),
        ("/files/{rest:path}", "/files/a/b", True),
        ("/files/{rest:path}", "/filesx", False),
        ("/", "/", True),
        ("/", "/a", False),
    ],
)
def test_an_untraced_route_path_becomes_an_anchored_pattern(route: str, path: str, *, untraced: bool) -> None:
    assert bool(re.search(untraced_path_pattern(route), path)) is untraced


def test_tracing_excludes_the_paths_whose_routes_declare_untraced() -> None:
    @get("/probe", opt={UNTRACED: True}, sync_to_thread=False)
    def probe() -> None: ...

    @get("/work/{item_id:int}", sync_to_thread=False)
    def work() -> None: ...

    @get("/mixed", opt={UNTRACED: True}, sync_to_thread=False)
    def mixed_read() -> None: ...

    @post("/mixed", sync_to_thread=False)
    def mixed_write() -> None: ...

    @get("/{item_id:int}", sync_to_thread=False)
    def inherited() -> None: ...

    quiet = Router("/quiet", route_handlers=[inherited], opt={UNTRACED: True})
    tracing = Tracing(provider_of(traced_settings()))
    app = Litestar(
        [probe, work, mixed_read, mixed_write, quiet],
        plugins=[tracing],
        middleware=[tracing.server_spans, tracing.middleware],
        openapi_config=None,
    )

    # Litestar takes the server spans out of the list to run them around routing, as its plugin's.
    assert app.plugins.get(OpenTelemetryPlugin).middleware.middleware is ServerSpans
    assert ServerSpans not in [getattr(entry, "middleware", None) for entry in app.middleware]
    untraced = {"/probe": True, "/work/{item_id:int}": False, "/mixed": False, "/quiet/{item_id:int}": True}
    assert tracing.untraced_paths == untraced
    exclude = tracing.config.exclude
    assert isinstance(exclude, list)
    paths = ("/probe", "/work/1", "/mixed", "/quiet/7")
    matching = {path for path in paths if any(re.search(pattern, path) for pattern in exclude)}
    assert matching == {"/probe", "/quiet/7"}  # a path one of whose handlers is traced keeps its server span


def test_without_untraced_routes_nothing_is_excluded() -> None:
    @get("/work", sync_to_thread=False)
    def work() -> None: ...

    tracing = Tracing(provider_of(traced_settings()))
    Litestar(
        [work], plugins=[tracing], middleware=[tracing.server_spans, tracing.middleware]
    )  # warnings are errors: no "excluded on all"

    assert tracing.config.exclude is None  # not [], which would exclude every path


# --- argon2 spans ---------------------------------------------------------------------------------------------


def names(spans: tuple[ReadableSpan, ...]) -> list[str]:
    return [span.name for span in spans]


async def test_passwords_make_argon2_spans_with_a_tracer(memory: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = memory
    tracer = provider.get_tracer("todo_service")
    passwords = Passwords(time_cost=1, memory_cost=8, parallelism=1, tracer=tracer)
    try:
        await passwords.prepare()  # at start: no span
        assert names(exporter.get_finished_spans()) == []

        with tracer.start_as_current_span("request") as request:
            hashed = await passwords.hash("Correct-Horse-42")
            assert await passwords.verify(hashed, "Correct-Horse-42")
            assert not await passwords.verify(hashed, "wrong")
            await passwords.verify_nothing("Correct-Horse-42")

        spans = exporter.get_finished_spans()
        assert names(spans) == ["argon2.hash", "argon2.verify", "argon2.verify", "argon2.verify", "request"]
        for span in spans[:-1]:
            assert span.parent is not None
            assert span.parent.span_id == request.get_span_context().span_id
            assert dict(span.attributes or {}) == {"argon2.time_cost": 1, "argon2.memory_kib": 8, "argon2.lanes": 1}
            assert span.status.status_code is trace.StatusCode.UNSET
    finally:
        passwords.close()

    exporter.clear()
    with pytest.raises(RuntimeError):
        await passwords.hash("after close")
    (failed,) = exporter.get_finished_spans()
    assert (failed.name, failed.status.status_code) == ("argon2.hash", trace.StatusCode.ERROR)
    assert [event.name for event in failed.events] == ["exception"]


async def test_passwords_without_a_tracer_make_no_spans(memory: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = memory
    passwords = Passwords(time_cost=1, memory_cost=8, parallelism=1)
    try:
        with provider.get_tracer("test").start_as_current_span("request"):
            assert await passwords.verify(await passwords.hash("Correct-Horse-42"), "Correct-Horse-42")
    finally:
        passwords.close()
    assert names(exporter.get_finished_spans()) == ["request"]


# --- the cost of an unrecorded request ---------------------------------------------------------------


class CountingSampler(Sampler):
    """Records every span unless told otherwise; counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        self.asked += 1
        return ALWAYS_ON.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "counting"


async def test_statement_spans_are_made_outside_unrecorded_traces_only() -> None:
    sampler, exporter = CountingSampler(), InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_async_engine(DB)
    connections = NoOpMeterProvider().get_meter("test").create_up_down_counter("db.client.connections.usage")
    engine_tracer = EngineTracer(provider.get_tracer("sql"), engine.sync_engine, connections)  # type: ignore[no-untyped-call]
    trim_engine_tracer(engine_tracer, engine.sync_engine)

    async def select(marker: str) -> None:
        async with engine.connect() as connection:
            await connection.execute(text(f"SELECT 1 AS {marker}"))

    try:
        await select("alone")  # no trace around it (a background job): its own root span
        with trace.use_span(
            NonRecordingSpan(SpanContext(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), is_remote=False))
        ):
            await select("unrecorded")  # inside a request the sampler dropped: no span, no sampler call
        asked_after_unrecorded = sampler.asked
        with provider.get_tracer("test").start_as_current_span("request") as request:
            await select("recorded")
    finally:
        await engine.dispose()
        provider.shutdown()

    assert asked_after_unrecorded == 1
    finished = exporter.get_finished_spans()
    queries = [span for span in finished if span.attributes and "db.statement" in span.attributes]
    assert [span.attributes["db.statement"] for span in queries if span.attributes] == [
        "SELECT 1 AS alone",
        "SELECT 1 AS recorded",
    ]
    assert queries[0].parent is None
    assert queries[1].parent is not None
    assert queries[1].parent.span_id == request.get_span_context().span_id
    # Its connection-usage listeners (the no-op meter's) are gone from the pool; the statement one stays.
    for name in ("connect", "close", "checkout", "checkin"):
        assert not [
            fn
            for fn in getattr(engine.sync_engine.pool.dispatch, name)
            if getattr(fn, "__self__", None) is engine_tracer
        ]
    assert [getattr(fn, "__wrapped__", None) for fn in engine.sync_engine.dispatch.before_cursor_execute] == [
        engine_tracer._before_cur_exec  # the listener EngineTracer registered, now wrapped
    ]


def test_span_method_names_known_methods_and_keeps_only_those() -> None:
    def scope(method: str) -> Any:
        return {"type": "http", "method": method}

    assert span_method(scope("GET")) == "GET"
    assert span_method(scope("patch")) == "PATCH"
    for number in range(200):  # made-up methods are "HTTP", each time, and are not kept
        assert span_method(scope(f"PURGE{number}")) == "HTTP"
    assert span_method(scope("GET")) == "GET"
    assert span_method(scope("patch")) == "PATCH"


async def test_the_trace_id_headers_are_added_to_any_header_list() -> None:
    span = NonRecordingSpan(
        SpanContext(int(CALLER_TRACE, 16), int(CALLER_SPAN, 16), is_remote=False, trace_flags=TraceFlags(0))
    )
    scope: Any = {"state": {SERVER_SPAN: span}, "method": "GET", "path_template": "/x"}
    message: Any = {"type": "http.response.start", "status": 200, "headers": ((b"content-type", b"text/plain"),)}

    await name_span_and_answer_trace_id(message, scope)

    assert message["headers"] == [
        (b"content-type", b"text/plain"),
        (b"x-trace-id", CALLER_TRACE.encode()),
        (b"traceresponse", f"00-{CALLER_TRACE}-{CALLER_SPAN}-00".encode()),
    ]
    body: Any = {"type": "http.response.body", "body": b""}
    await name_span_and_answer_trace_id(body, scope)
    assert "headers" not in body
