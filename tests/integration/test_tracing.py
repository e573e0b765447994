"""Traces through the HTTP API, exported over real OTLP/HTTP to a receiver on a loopback port.

The app is built by ``create_app`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at the receiver;
each test makes requests, flushes the app's provider and reads the decoded spans of the request's
trace (its id comes back in ``X-Trace-Id``). Two test-only routes, registered on that app, raise:
one a plain bug, one a database error whose statement was given a value.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import PASSWORD, Account, SameLoopClient, create_task, make_settings, register
from tests.otlp_receiver import HTTPReceiver, ReceivedSpan, otlp_http_receiver
from tests.processes import running_service, service_env, stop
from tests.servers import RedisServer, fresh_postgres_database, migrate, redis_server
from tests.webhook_receiver import WEBHOOK_TEST_SETTINGS, webhook_receiver
from todo_service import __version__
from todo_service.app import create_app
from todo_service.observability.providers import shutdown_tracing, tracer_provider_for
from todo_service.observability.traces import (
    TRACE_ID_HEADER,
    UNTRACED,
    build_tracing,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    import httpx

    from tests.factories import Client
    from todo_service.core.settings import Settings

BOOM = "/api/v1/test-only/boom"
BAD_SQL = "/api/v1/test-only/bad-sql"
SQL_SECRET = "literal-given-to-a-failing-statement-7f3a"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
UUID_IN_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@get(BOOM, exclude_from_auth=True, sync_to_thread=False)
def boom() -> None:
    """A bug: an exception nobody maps."""
    raise RuntimeError("kaboom in a test-only route")


@get(BAD_SQL, exclude_from_auth=True)
async def bad_sql(state: State) -> None:
    """A statement that fails on the server, given a value that must not reach the trace."""
    async with state.context.engine.connect() as connection:
        await connection.execute(text("SELECT no_such_column FROM tasks WHERE title = :title"), {"title": SQL_SECRET})


@pytest.fixture(scope="module")
def receiver() -> Iterator[HTTPReceiver]:
    with otlp_http_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced_settings(database_url: str, receiver: HTTPReceiver) -> Settings:
    return make_settings(
        database_url,
        otel_exporter_otlp_endpoint=receiver.endpoint,
        otel_resource_attributes="deployment.environment=test,team=todo%20squad",
        **WEBHOOK_TEST_SETTINGS,
    )


@pytest.fixture(scope="module")
async def traced(traced_settings: Settings) -> AsyncIterator[Client]:
    """A client of an app that exports its traces to the receiver (plus the two test-only routes)."""
    from todo_service.app import create_app  # noqa: PLC0415  (after the receiver exists)

    app = create_app(traced_settings)
    app.register(boom)
    app.register(bad_sql)
    async with SameLoopClient(app=app) as client:
        yield client
    shutdown_tracing(traced_settings)  # before the receiver stops: nothing is left to export to it


def flush(settings: Settings) -> None:
    provider = tracer_provider_for(settings)
    assert provider is not None
    assert provider.force_flush(10_000)


def trace_id_of(response: httpx.Response) -> str:
    trace_id = response.headers[TRACE_ID_HEADER]
    assert HEX32.match(trace_id), trace_id
    return trace_id


def server_span(spans: list[ReceivedSpan]) -> ReceivedSpan:
    servers = [span for span in spans if span.kind == "SERVER"]
    assert len(servers) == 1, [span.name for span in servers]
    return servers[0]


def has_server_span(spans: list[ReceivedSpan]) -> bool:
    return any(span.kind == "SERVER" for span in spans)


@dataclass(frozen=True)
class Traces:
    """The receiver and the traced app's settings (whose provider it flushes)."""

    receiver: HTTPReceiver
    settings: Settings

    def flush(self) -> None:
        flush(self.settings)

    def of(self, response: httpx.Response) -> list[ReceivedSpan]:
        """Every span of the response's trace (flushed, and waited for with a deadline)."""
        self.flush()
        return self.receiver.wait_for_trace(trace_id_of(response), has_server_span)


@pytest.fixture
def traces(receiver: HTTPReceiver, traced_settings: Settings) -> Traces:
    return Traces(receiver, traced_settings)


def assert_descends_from(span: ReceivedSpan, ancestor: ReceivedSpan, spans: list[ReceivedSpan]) -> None:
    by_id = {s.span_id: s for s in spans}
    current = span
    for _ in range(len(spans)):
        if current.parent_span_id == ancestor.span_id:
            return
        current = by_id[current.parent_span_id]
    pytest.fail(f"{span.name} is not beneath {ancestor.name}")


def db_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [span for span in spans if "db.statement" in span.attributes and span.attributes.get("db.system") != "redis"]


def all_text(spans: list[ReceivedSpan]) -> str:
    """Names, attributes, status messages and event attributes of ``spans``, as one string."""
    parts: list[Any] = []
    for span in spans:
        parts += [span.name, span.status_message, span.attributes, span.events]
    return repr(parts)


# --- one trace per request ---------------------------------------------------------------------


async def test_a_request_is_one_trace_named_after_its_route(traced: Client, traces: Traces) -> None:
    account = await register(traced)
    task = await create_task(traced, account)
    url = f"{account.tasks_url}/{task['id']}"

    response = await traced.get(url, headers=account.headers)

    assert response.status_code == 200
    spans = traces.of(response)
    server = server_span(spans)
    assert server.name == "GET /api/v1/users/{user_id}/tasks/{task_id}"
    assert server.attributes["http.route"] == "/api/v1/users/{user_id}/tasks/{task_id}"
    assert server.attributes["http.status_code"] == 200
    assert server.attributes["http.method"] == "GET"
    assert server.parent_span_id == ""  # no caller's trace: a new one
    assert server.status == "UNSET"
    assert not UUID_IN_TEXT.search(server.name)
    version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
    assert (version, trace_id, span_id) == ("00", server.trace_id, server.span_id)
    assert int(flags, 16) & 1  # sampled
    queries = db_spans(spans)
    assert queries, [span.name for span in spans]
    assert any(span.attributes["db.statement"].startswith("SELECT tasks.id") for span in queries)
    for span in queries:
        assert span.kind == "CLIENT"
        assert span.attributes["db.system"] in {"sqlite", "postgresql"}
        assert_descends_from(span, server, spans)


async def test_every_request_has_a_trace_of_its_own(traced: Client, traces: Traces) -> None:
    account = await register(traced)

    first = await traced.get("/api/v1/users/me", headers=account.headers)
    second = await traced.get("/api/v1/users/me", headers=account.headers)

    assert trace_id_of(first) != trace_id_of(second)
    for response in (first, second):
        spans = traces.of(response)
        assert server_span(spans).name == "GET /api/v1/users/me"
        assert {span.trace_id for span in spans} == {trace_id_of(response)}
        assert len(db_spans(spans)) >= 1


async def test_statements_are_recorded_without_their_values(traced: Client, traces: Traces) -> None:
    account = await register(traced)
    title = f"title-that-stays-out-of-traces-{uuid.uuid4().hex}"

    response = await traced.post(account.tasks_url, json={"title": title}, headers=account.headers)

    assert response.status_code == 201
    spans = traces.of(response)
    assert server_span(spans).name == "POST /api/v1/users/{user_id}/tasks"
    inserts = [span for span in db_spans(spans) if span.attributes["db.statement"].startswith("INSERT INTO tasks")]
    assert len(inserts) == 1
    assert title not in all_text(spans)
    assert account.email not in all_text(spans)


async def test_completing_a_task_that_does_not_recur_is_one_statement(traced: Client, traces: Traces) -> None:
    account = await register(traced)
    created = await traced.post(account.tasks_url, json={"title": "Once"}, headers=account.headers)
    task_url = f"{account.tasks_url}/{created.json()['id']}"

    response = await traced.patch(f"{task_url}/complete", json={"completed": True}, headers=account.headers)

    assert response.status_code == 200
    assert response.json()["completed"] is True
    statements = [span.attributes["db.statement"] for span in db_spans(traces.of(response))]
    assert len(statements) == 1  # no transaction, no read first: one UPDATE ... RETURNING
    assert statements[0].startswith("UPDATE tasks")


async def test_query_strings_stay_out_of_traces(traced: Client, traces: Traces) -> None:
    account = await register(traced)
    secret = f"private-search-{uuid.uuid4().hex}"

    response = await traced.get(f"{account.tasks_url}?search={secret}&limit=5", headers=account.headers)

    assert response.status_code == 200
    spans = traces.of(response)
    server = server_span(spans)
    assert server.attributes["http.target"] == f"/api/v1/users/{account.id}/tasks"
    assert "?" not in str(server.attributes["http.url"])
    assert secret not in all_text(spans)


async def test_the_callers_traceparent_is_continued(traced: Client, traces: Traces) -> None:
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]

    response = await traced.get("/api/v1/users/me", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"})

    assert response.status_code == 401
    assert trace_id_of(response) == caller_trace
    spans = traces.of(response)
    server = server_span(spans)
    assert server.trace_id == caller_trace
    assert server.parent_span_id == caller_span


async def test_a_caller_that_does_not_sample_gets_the_trace_id_and_no_span(traced: Client, traces: Traces) -> None:
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    sampled = await traced.get("/api/v1/users/me", headers={"traceparent": f"00-{uuid.uuid4().hex}-{caller_span}-01"})

    response = await traced.get("/api/v1/users/me", headers={"traceparent": f"00-{caller_trace}-{caller_span}-00"})

    assert response.status_code == 401
    assert trace_id_of(response) == caller_trace  # the logs and the client still correlate
    version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
    assert (version, trace_id, flags) == ("00", caller_trace, "00")
    assert span_id != caller_span
    traces.of(sampled)  # flushed: everything the unsampled request could have exported is in by now
    assert traces.receiver.trace(caller_trace) == []


# --- status --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "status"),
    [
        ("GET /api/v1/users/me", None, 401),
        ("POST /api/v1/auth/register", {"email": "not-an-email"}, 422),
        ("POST /api/v1/auth/login", {"email": "nobody@example.com", "password": "Wrong-Horse-1"}, 401),
    ],
)
async def test_client_errors_do_not_mark_the_span_as_failed(
    traced: Client, traces: Traces, route: str, body: Any, status: int
) -> None:
    method, path = route.split()
    response = await traced.request(method, path, json=body)

    assert response.status_code == status
    server = server_span(traces.of(response))
    assert server.name == route
    assert server.attributes["http.status_code"] == status
    assert server.status == "UNSET"
    assert server.events == []


async def test_a_missing_task_is_a_404_not_a_failure(traced: Client, traces: Traces) -> None:
    account = await register(traced)

    response = await traced.get(f"{account.tasks_url}/{uuid.uuid4()}", headers=account.headers)

    assert response.status_code == 404
    spans = traces.of(response)
    server = server_span(spans)
    assert (server.name, server.status, server.events) == ("GET /api/v1/users/{user_id}/tasks/{task_id}", "UNSET", [])
    assert db_spans(spans)


async def test_a_500_marks_the_span_as_failed_with_the_exception(traced: Client, traces: Traces) -> None:
    response = await traced.get(BOOM)

    assert response.status_code == 500
    assert "kaboom" not in response.text
    server = server_span(traces.of(response))
    assert server.name == f"GET {BOOM}"
    assert server.status == "ERROR"
    assert server.attributes["http.status_code"] == 500
    exceptions = [attributes for name, attributes in server.events if name == "exception"]
    assert len(exceptions) == 1
    assert exceptions[0]["exception.type"] == "RuntimeError"
    assert exceptions[0]["exception.message"] == "kaboom in a test-only route"
    assert "in boom" in exceptions[0]["exception.stacktrace"]


async def test_a_failing_statement_is_an_error_without_its_values(traced: Client, traces: Traces) -> None:
    response = await traced.get(BAD_SQL)

    # A missing column is a bug on both databases (SQLite calls it an OperationalError): 500.
    assert response.status_code == 500
    spans = traces.of(response)
    server = server_span(spans)
    assert server.status == "ERROR"
    (exception,) = [attributes for name, attributes in server.events if name == "exception"]
    assert exception["exception.type"].startswith("sqlalchemy.exc.")
    # The engine hides statement parameters at the source (hide_parameters=True).
    assert "[SQL parameters hidden due to hide_parameters=True]" in exception["exception.message"]
    assert "[SQL parameters hidden due to hide_parameters=True]" in exception["exception.stacktrace"]
    (query,) = db_spans(spans)
    placeholder = "?" if query.attributes["db.system"] == "sqlite" else "$1"
    assert query.attributes["db.statement"] == f"SELECT no_such_column FROM tasks WHERE title = {placeholder}"  # noqa: S608
    assert query.status == "ERROR"
    assert SQL_SECRET not in all_text(spans)


# --- what is and is not traced -------------------------------------------------------------------


async def test_argon2_work_is_a_span_of_the_request(traced: Client, traces: Traces) -> None:
    account = await register(traced)

    new = {
        "email": f"argon-{uuid.uuid4().hex[:8]}@example.com",
        "password": PASSWORD,
        "first_name": "A",
        "last_name": "B",
    }
    registered = await traced.post("/api/v1/auth/register", json=new)
    logged_in = await traced.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    unknown = await traced.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": PASSWORD})

    assert (registered.status_code, logged_in.status_code, unknown.status_code) == (201, 200, 401)
    for response, expected in ((registered, "argon2.hash"), (logged_in, "argon2.verify"), (unknown, "argon2.verify")):
        spans = traces.of(response)
        server = server_span(spans)
        argon2 = [span for span in spans if span.name.startswith("argon2.")]
        assert [span.name for span in argon2] == [expected], server.name
        assert argon2[0].parent_span_id == server.span_id
        assert argon2[0].attributes == {"argon2.time_cost": 1, "argon2.memory_kib": 8, "argon2.lanes": 1}
        assert argon2[0].scope == "todo_service"


async def test_health_docs_and_metrics_are_not_traced(traced: Client, traces: Traces) -> None:
    traces.flush()
    before = len(traces.receiver.spans())

    untraced = [
        await traced.get(path)
        for path in ("/api/v1/health", "/api/v1/health/ready", "/api/docs/openapi.json", "/api/docs", "/metrics")
    ]
    marker = await traced.get("/api/v1/users/me")

    assert [response.status_code for response in untraced[:4]] == [200, 200, 200, 200]
    for response in untraced:
        assert TRACE_ID_HEADER not in response.headers
        assert "traceresponse" not in response.headers
    traces.of(marker)  # exported after anything the probes could have made
    others = [span for span in traces.receiver.spans()[before:] if span.trace_id != trace_id_of(marker)]
    # Only the session pruner's background DELETE may come in between; nothing of the probes.
    assert not [span for span in others if not span.attributes.get("db.statement", "").startswith("DELETE")], others


@pytest.mark.usefixtures("traced")  # its teardown shuts the provider down, before the receiver stops
async def test_a_route_that_declares_untraced_makes_no_span_and_an_ordinary_one_does(
    traced_settings: Settings, traces: Traces
) -> None:
    # An app of its own, with only the tracing plugin: what is untraced is what the routes declare.
    engine = create_async_engine("sqlite+aiosqlite://")
    tracing = build_tracing(traced_settings, engine)
    assert tracing is not None

    async def query(marker: str) -> None:
        async with engine.connect() as connection:
            await connection.execute(text(f"SELECT 1 AS {marker}"))

    @get("/quiet/{item_id:int}", opt={UNTRACED: True})
    async def quiet() -> None:
        await query("quiet_marker")

    @get("/loud/{item_id:int}")
    async def loud() -> None:
        await query("loud_marker")

    app = Litestar([quiet, loud], plugins=[tracing], middleware=[tracing.server_spans, tracing.middleware])
    traces.flush()
    before = len(traces.receiver.spans())
    try:
        async with SameLoopClient(app=app) as client:
            untraced = await client.get("/quiet/1")
            ordinary = await client.get("/loud/2")
    finally:
        await engine.dispose()

    assert (untraced.status_code, ordinary.status_code) == (200, 200)
    assert TRACE_ID_HEADER not in untraced.headers  # no server span to name
    spans = traces.of(ordinary)  # exported after anything the untraced request could have made
    server = server_span(spans)
    assert server.name == "GET /loud/{item_id}"
    (loud_query,) = db_spans(spans)
    assert "loud_marker" in loud_query.attributes["db.statement"]
    assert loud_query.parent_span_id == server.span_id
    others = [span for span in traces.receiver.spans()[before:] if span.trace_id != server.trace_id]
    assert "quiet" not in all_text(others), others  # neither a server span nor its query's span
    assert not [span for span in others if span.kind == "SERVER"], others


async def test_unrouted_requests_are_named_by_their_method_only(traced: Client, traces: Traces) -> None:
    response = await traced.get(f"/api/v1/no-such-thing/{uuid.uuid4()}")
    odd_method = await traced.request("PURGE", "/api/v1/users/me")

    assert (response.status_code, odd_method.status_code) == (404, 405)
    server = server_span(traces.of(response))
    assert server.name == "GET"
    assert "http.route" not in server.attributes
    assert server.status == "UNSET"
    odd = server_span(traces.of(odd_method))
    assert odd.name == "HTTP"  # the router refuses it before matching a route; a made-up method is "HTTP"
    assert odd.attributes["http.status_code"] == 405


async def test_the_resource_names_the_service(traced: Client, traces: Traces) -> None:
    response = await traced.get("/api/v1/users/me")

    server = server_span(traces.of(response))
    assert server.resource["service.name"] == "todo-service"
    assert server.resource["service.version"] == __version__
    assert server.resource["deployment.environment"] == "test"
    assert server.resource["team"] == "todo squad"
    assert server.resource["telemetry.sdk.language"] == "python"
    assert all(export.path == "/v1/traces" for export in traces.receiver.exports)


def installed_tracing(app: Litestar) -> dict[str, int]:
    """How many of each tracing part ``app`` has: plugin, middleware, hook, engine listener."""
    from litestar.plugins.opentelemetry import OpenTelemetryPlugin  # noqa: PLC0415
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: PLC0415

    from todo_service.observability import traces as telemetry  # noqa: PLC0415

    engine: Engine = app.state.context.engine.sync_engine
    # EngineTracer's statement listener, wrapped to skip unrecorded traces (functools.wraps: __wrapped__).
    listeners = [getattr(fn, "__wrapped__", fn) for fn in engine.dispatch.before_cursor_execute]
    pool_listeners = [fn for name in ("checkout", "checkin") for fn in getattr(engine.pool.dispatch, name)]
    return {
        "plugin": len([plugin for plugin in app.plugins if isinstance(plugin, OpenTelemetryPlugin)]),
        "middleware": len(
            [m for m in app.middleware if getattr(getattr(m, "middleware", m), "__module__", "") == telemetry.__name__]
        ),
        "hook": len([hook for hook in app.before_send if getattr(hook, "__module__", "") == telemetry.__name__]),
        "engine": len([fn for fn in listeners if isinstance(getattr(fn, "__self__", None), EngineTracer)]),
        # its connection-usage listeners (a no-op meter's) are removed: none per checkout or checkin
        "engine_pool": len([fn for fn in pool_listeners if isinstance(getattr(fn, "__self__", None), EngineTracer)]),
    }


async def test_without_an_endpoint_nothing_is_installed(client: Client, app: Litestar) -> None:
    assert installed_tracing(app) == {"plugin": 0, "middleware": 0, "hook": 0, "engine": 0, "engine_pool": 0}

    caller = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    response = await client.get("/api/v1/users/me", headers={"traceparent": caller})
    assert response.status_code == 401
    assert TRACE_ID_HEADER not in response.headers
    assert "traceresponse" not in response.headers


async def test_with_an_endpoint_each_part_is_installed_once(traced: Client) -> None:
    assert isinstance(traced.app, Litestar)
    assert installed_tracing(traced.app) == {"plugin": 1, "middleware": 1, "hook": 1, "engine": 1, "engine_pool": 0}


# --- Redis ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_process() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def redis_traced(
    database_url: str, receiver: HTTPReceiver, redis_process: RedisServer
) -> AsyncIterator[tuple[Client, Settings]]:
    """A client of an app with tracing and rate limits in Redis; its provider is shut down after the test."""
    from todo_service.app import create_app  # noqa: PLC0415

    settings = make_settings(
        database_url,
        otel_exporter_otlp_endpoint=receiver.endpoint,
        rate_limit_enabled=True,
        redis_url=redis_process.url,
    )
    try:
        async with SameLoopClient(app=create_app(settings)) as client:
            yield client, settings
    finally:
        shutdown_tracing(settings)  # redis-py is uninstrumented again


async def test_rate_limiter_redis_calls_are_spans_without_keys(
    redis_traced: tuple[Client, Settings], receiver: HTTPReceiver
) -> None:
    client, settings = redis_traced
    account: Account = await register(client)
    response = await client.get("/api/v1/users/me", headers=account.headers)
    ready = await client.get("/api/v1/health/ready")

    assert (response.status_code, ready.status_code) == (200, 200)
    assert "ratelimit-limit" in response.headers
    spans = Traces(receiver, settings).of(response)
    server = server_span(spans)
    redis = [span for span in spans if span.attributes.get("db.system") == "redis"]
    assert [span.name for span in redis] == ["EVALSHA"]  # every rule (per IP, per user) in one round trip
    for span in redis:
        assert span.kind == "CLIENT"
        assert span.parent_span_id == server.span_id
        assert re.fullmatch(r"[A-Z]+( [A-Z]+)?( \?)+", span.attributes["db.statement"]), span.attributes["db.statement"]
    assert "testclient" not in all_text(redis)  # the client address is in the keys: sanitized away
    assert account.id not in all_text(redis)
    assert not [span for span in receiver.spans() if span.name == "PING"]  # the readiness probe's PING: untraced


# --- the real server ---------------------------------------------------------------------------------


async def test_todo_service_run_exports_its_traces_and_flushes_them_at_shutdown(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
    await asyncio.to_thread(migrate, url)
    env = service_env(DATABASE_URL=url, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SERVICE_NAME="todo-live")
    env["OTEL_BSP_SCHEDULE_DELAY"] = "600000"  # the SDK's batch delay: only the shutdown flush can send them

    with running_service(cwd=tmp_path, env=env) as service:
        import httpx  # noqa: PLC0415

        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            body = {"email": "live@example.com", "password": PASSWORD, "first_name": "L", "last_name": "V"}
            response = await http.post("/api/v1/auth/register", json=body)
        assert response.status_code == 201, response.text
        trace_id = trace_id_of(response)
        await asyncio.sleep(0.5)
        assert receiver.trace(trace_id) == []  # still queued in the server
        # granian stops its worker, whose app shutdown flushes the spans (a worker runs no atexit handler).
        assert stop(service) == 0

    spans = receiver.wait_for_trace(trace_id, has_server_span, timeout=5)
    server = server_span(spans)
    assert server.name == "POST /api/v1/auth/register"
    assert server.resource["service.name"] == "todo-live"
    assert "argon2.hash" in [span.name for span in spans]
    # The app the server runs is the factory's second one: its engine is instrumented too.
    assert any(span.attributes["db.statement"].startswith("INSERT INTO users") for span in db_spans(spans))
    assert "already shutdown" not in service.output().lower()


async def test_a_webhook_delivery_links_to_the_trace_of_the_request_that_made_the_change(
    postgres_admin_url: str, traced_settings: Settings, traces: Traces
) -> None:
    """On a database of its own: another app's delivery worker (the session's) must not take the event."""
    url = await fresh_postgres_database(
        postgres_admin_url, f"todo_trace_link_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    )
    await asyncio.to_thread(migrate, url)
    settings = msgspec.structs.replace(traced_settings, database_url=url)
    async with SameLoopClient(app=create_app(settings)) as client:
        account = await register(client)
        with webhook_receiver() as hook:
            registered = await client.post(
                f"/api/v1/users/{account.id}/webhooks",
                json={"url": hook.url, "events": ["task.upserted"]},
                headers=account.headers,
            )
            assert registered.status_code == 201, registered.text
            created = await client.post(account.tasks_url, json={"title": "linked"}, headers=account.headers)
            assert created.status_code == 201
            write = server_span(traces.of(created))
            received = await hook.wait_for(1)
        delivery_id = received[0].headers["webhook-id"]
        for _ in range(100):  # the worker ends its span once it has recorded the result (bounded: 5 s)
            traces.flush()
            spans = [span for span in traces.receiver.spans() if span.attributes.get("webhook.event_id") == delivery_id]
            if spans:
                break
            await asyncio.sleep(0.05)
    assert len(spans) == 1
    delivery = spans[0]
    assert delivery.name == "webhook deliver"
    assert delivery.kind == "CLIENT"
    # Its own trace (the worker's), linked to the span of the request that wrote the task.
    assert delivery.trace_id != write.trace_id
    assert delivery.links == [(write.trace_id, write.span_id)]
