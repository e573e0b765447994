"""Structured logs of real requests: in process (the app's stderr) and from a live ``todo-service run``.

Each scenario goes through register, login, refresh, an authenticated request with a query string,
a failed login, an unknown route (404) and a wrong method (405); the live server also answers two
500s (a row the code cannot read, a table gone), and in process a 503 (the database locked). Every
line must be one JSON object, with one access line per request, and no password, token or
``Authorization`` anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.factories import PASSWORD, SameLoopClient, make_settings, register
from tests.otlp_receiver import otlp_http_receiver
from tests.processes import run_console, running_service, service_env
from tests.servers import migrate
from todo_service.app import create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from tests.processes import LiveService

# They reconfigure the process's logging (tests/conftest.py puts it back).
pytestmark = pytest.mark.usefixtures("preserved_logging")
WRONG_PASSWORD = "Wrong-Horse-99"
SEARCH = "groceries-xyzzy"
TASKS = "/api/v1/users/{user_id}/tasks"
TASK = "/api/v1/users/{user_id}/tasks/{task_id}"
REQUEST_FIELDS = ("request_id", "trace_id", "span_id", "route", "user_id")
ACCESS_FIELDS = {"time", "level", "logger", "message", "method", "path", "status", "duration_ms", "client_ip"}
CONSOLE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: \S")
WAIT_SECONDS = 10


@dataclass
class Sent:
    """A request the test made and what its access line must say."""

    response: httpx.Response
    route: str | None
    user_id: str | None = None

    @property
    def request_id(self) -> str:
        return self.response.headers["x-request-id"]


@dataclass
class Secrets:
    values: list[str]

    def assert_absent_from(self, output: str) -> None:
        for secret in self.values:
            assert secret not in output
        assert "authorization" not in output.lower()
        assert "bearer " not in output.lower()


async def auth_scenario(request: Callable[..., Awaitable[httpx.Response]]) -> tuple[list[Sent], Secrets, str, str]:
    """Register, log in, refresh, list with a query, fail a login, miss a route, use a wrong method.

    Returns:
        The requests, the secrets they carried, the user's id and the last access token.
    """
    email = f"logs-{uuid.uuid4().hex[:10]}@example.com"
    account = {"email": email, "password": PASSWORD, "first_name": "Log", "last_name": "Reader"}
    registered = await request("POST", "/api/v1/auth/register", json=account)
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["user"]["id"]
    logged_in = await request("POST", "/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert logged_in.status_code == 200, logged_in.text
    refreshed = await request("POST", "/api/v1/auth/refresh", json={"refresh_token": logged_in.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}", "X-Request-ID": "client-chosen.id-1"}
    listed = await request("GET", TASKS.format(user_id=user_id), params={"search": SEARCH, "limit": 5}, headers=bearer)
    assert listed.status_code == 200, listed.text
    failed = await request("POST", "/api/v1/auth/login", json={"email": email, "password": WRONG_PASSWORD})
    assert failed.status_code == 401, failed.text
    missing = await request("GET", "/api/v1/no-such-route", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 404
    wrong_method = await request("DELETE", "/api/v1/health")
    assert wrong_method.status_code == 405
    sent = [
        Sent(registered, "/api/v1/auth/register"),
        Sent(logged_in, "/api/v1/auth/login"),
        Sent(refreshed, "/api/v1/auth/refresh"),
        Sent(listed, TASKS, user_id),
        Sent(failed, "/api/v1/auth/login"),
        Sent(missing, None),
        Sent(wrong_method, None),
    ]
    carried = [PASSWORD, WRONG_PASSWORD]
    for response in (registered, logged_in, refreshed):
        carried += [response.json()["access_token"], response.json()["refresh_token"]]
    return sent, Secrets(carried), user_id, token


def parse_json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of ``output`` as JSON (fails on the first line that is not one object)."""
    records = []
    for line in output.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        assert record["time"].endswith("Z"), line
        records.append(record)
    return records


def access_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["logger"] == "todo_service.access"]


def assert_access_lines(records: list[dict[str, Any]], sent: list[Sent], client_ip: str) -> None:
    """Exactly one access line per request, in order, saying what happened."""
    ids = {s.request_id for s in sent}
    lines = [line for line in access_lines(records) if line["request_id"] in ids]
    others = [line for line in access_lines(records) if line["request_id"] not in ids]
    assert [line["request_id"] for line in lines] == [s.request_id for s in sent]
    assert all(line["message"] == "GET /api/v1/health 200" for line in others), others  # readiness polls
    for line, request in zip(lines, sent, strict=True):
        assert ACCESS_FIELDS | set(REQUEST_FIELDS) <= line.keys(), line
        assert line["level"] == "INFO"
        assert line["method"] == request.response.request.method
        assert line["status"] == request.response.status_code
        assert line["route"] == request.route
        assert line["user_id"] == request.user_id
        assert line["path"] == request.response.request.url.path  # never the query string
        assert line["client_ip"] == client_ip
        assert line["message"] == f"{line['method']} {request.route or line['path']} {line['status']}"
        if request.route is None:  # unknown route or wrong method: no middleware ran to start a clock
            assert line["duration_ms"] is None
        else:
            assert 0 < line["duration_ms"] < 60_000
    assert "client-chosen.id-1" in [line["request_id"] for line in lines]
    assert not [r for r in records if r["logger"] == "uvicorn.access"]


# In process: the app as create_app builds it, its records on stderr (captured by capsys).


async def test_in_process_every_request_writes_one_json_access_line_and_no_secret(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(database_url, log_format="json", log_level="INFO"))
    async with SameLoopClient(app=app) as client:
        sent, secrets, _, _ = await auth_scenario(client.request)
    output = capsys.readouterr().err

    records = parse_json_lines(output)
    assert_access_lines(records, sent, client_ip="testclient")
    secrets.assert_absent_from(output)
    # Query strings are never logged (httpx, the test's own client, logs its URLs).
    assert not [r for r in records if not r["logger"].startswith("httpx") and SEARCH in json.dumps(r)]


async def test_in_process_a_503_is_logged_with_its_request_and_the_level_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path, url = await asyncio.to_thread(sqlite_database, tmp_path)
    app = create_app(make_settings(url, log_format="json", log_level="WARNING"))
    async with SameLoopClient(app=app) as client:
        account = await register(client)
        async with locked(db_path):  # a write waits for SQLite's busy timeout, then "database is locked": a 503
            listed = await client.post(account.tasks_url, json={"title": "Blocked"}, headers=account.headers)
    output = capsys.readouterr().err

    assert listed.status_code == 503, listed.text
    records = parse_json_lines(output)
    assert access_lines(records) == []  # INFO is below WARNING
    assert all(r["level"] in {"WARNING", "ERROR", "CRITICAL"} for r in records), output
    [failure] = [r for r in records if r["logger"] == "todo_service.http.errors"]
    assert failure["level"] == "WARNING"
    assert failure["request_id"] == listed.headers["x-request-id"]
    assert (failure["route"], failure["user_id"]) == (TASKS, account.id)
    assert "The database is unavailable" in failure["message"]
    assert "database is locked" in failure["message"]
    Secrets([account.password, account.token]).assert_absent_from(output)


async def test_in_process_lines_inside_a_span_carry_its_trace_and_span_ids(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with otlp_http_receiver() as receiver:
        settings = make_settings(
            database_url, log_format="json", log_level="INFO", otel_exporter_otlp_endpoint=receiver.endpoint
        )
        async with SameLoopClient(app=create_app(settings)) as client:
            account = await register(client)
            me = await client.get("/api/v1/users/me", headers=account.headers)
            health = await client.get("/api/v1/health")  # not traced
        records = parse_json_lines(capsys.readouterr().err)
        trace_id = me.headers["x-trace-id"]
        spans = receiver.wait_for_trace(trace_id, lambda spans: any(s.kind == "SERVER" for s in spans))

    lines = {line["request_id"]: line for line in access_lines(records)}
    line = lines[me.headers["x-request-id"]]
    [server] = [s for s in spans if s.kind == "SERVER"]
    assert (line["trace_id"], line["span_id"]) == (trace_id, server.span_id)
    assert line["user_id"] == account.id
    assert lines[health.headers["x-request-id"]]["trace_id"] is None


async def test_in_process_library_records_inside_a_request_carry_its_context(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(database_url, log_format="json", log_level="WARNING", db_echo=True))
    async with SameLoopClient(app=app) as client:
        account = await register(client)
        me = await client.get("/api/v1/users/me", headers=account.headers)
    captured = capsys.readouterr()

    assert captured.out == ""  # SQLAlchemy's own echo handler (stdout) was replaced by ours
    records = parse_json_lines(captured.err)
    statements = [r for r in records if r.get("request_id") == me.headers["x-request-id"]]
    assert statements, captured.err
    assert all(r["logger"].startswith("sqlalchemy.engine") for r in statements)
    assert all((r["route"], r["user_id"]) == ("/api/v1/users/me", account.id) for r in statements)
    assert any(r["message"].startswith("SELECT") for r in statements)
    parameters = [r["message"] for r in records if "parameters hidden" in r["message"]]
    assert parameters, captured.err  # DB_ECHO shows statements, never their values
    assert account.email not in captured.err
    assert "$argon2id$" not in captured.err
    assert "pruned" not in captured.err  # INFO records of our own stay below LOG_LEVEL=WARNING


async def test_in_process_console_lines_are_readable(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(make_settings(database_url, log_format="console", log_level="INFO"))
    async with SameLoopClient(app=app) as client:
        health = await client.get("/api/v1/health")
    lines = capsys.readouterr().err.splitlines()

    assert lines
    assert all(CONSOLE_LINE.match(line) for line in lines), lines
    [access] = [line for line in lines if " todo_service.access: " in line]
    request_id = health.headers["x-request-id"]
    assert f"INFO     todo_service.access: GET /api/v1/health 200  [request_id={request_id} route=/api/v1/health " in (
        access
    )
    assert re.search(r" status=200 duration_ms=[\d.]+ client_ip=testclient\]$", access), access


# End to end: the real server, its stdout and stderr in one file.


def sqlite_database(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "todo.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)
    return path, url


@contextlib.asynccontextmanager
async def locked(db_path: Path) -> AsyncIterator[None]:
    """Hold SQLite's write lock from another connection for the block (the app waits, then gives up).

    Taken off the event loop: the app may be mid-write there (its session pruner runs at start), and
    a blocked loop could never let that write commit.
    """
    db = sqlite3.connect(db_path, timeout=WAIT_SECONDS, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(db.execute, "BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            await asyncio.to_thread(db.execute, "ROLLBACK")
    finally:
        db.close()


def change_database(db_path: Path, statement: str) -> None:
    """Change the service's SQLite file behind its back (CHECK constraints ignored: bad values get in)."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=WAIT_SECONDS)) as db:
        db.execute("PRAGMA ignore_check_constraints = ON")
        db.execute(statement)
        db.commit()


def wait_for_access_lines(service: LiveService, request_ids: list[str]) -> None:
    """Bounded: the lines are written before the responses leave, but the file is read from outside."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        output = service.output()
        if all(request_id in output for request_id in request_ids):
            return
        time.sleep(0.1)
    pytest.fail(f"access lines missing after {WAIT_SECONDS}s:\n{service.output()}")


async def test_live_server_writes_json_lines_only_with_one_access_line_per_request(tmp_path: Path) -> None:
    db_path, url = await asyncio.to_thread(sqlite_database, tmp_path)
    env = service_env(DATABASE_URL=url, LOG_FORMAT="json", LOG_LEVEL="INFO", RATE_LIMIT_ENABLED="false")
    with running_service(cwd=tmp_path, env=env) as service:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            sent, secrets, user_id, token = await auth_scenario(http.request)
            sent += await failing_requests(http, db_path, user_id, token)
        wait_for_access_lines(service, [s.request_id for s in sent])
    output = service.output()  # the server has stopped: its shutdown lines are in too

    records = parse_json_lines(output)
    assert_access_lines(records, sent, client_ip="127.0.0.1")
    secrets.assert_absent_from(output)
    assert SEARCH not in output
    lifecycle = [r["message"] for r in records if r["logger"] == "todo_service.app"]
    assert lifecycle == ["Application startup complete.", "Application shutdown complete."]
    assert any(r["logger"] == "_granian" for r in records)  # the server's own lines are JSON too
    unreadable, gone = sent[-2].response, sent[-1].response
    errors = [r for r in records if r["logger"] == "todo_service.http.errors"]
    assert [r["level"] for r in errors] == ["ERROR", "ERROR"]
    assert [r["request_id"] for r in errors] == [unreadable.headers["x-request-id"], gone.headers["x-request-id"]]
    assert [(r["route"], r["user_id"]) for r in errors] == [(TASK, user_id), (TASKS, user_id)]
    assert all(r["exception"].startswith("Traceback (most recent call last):") for r in errors)
    assert "LookupError" in errors[0]["exception"]
    assert "no such table" in errors[1]["exception"]


async def failing_requests(http: httpx.AsyncClient, db_path: Path, user_id: str, token: str) -> list[Sent]:
    """A task, then a 500 (a value the code cannot read) and another (its table gone: a schema bug, not an outage)."""
    bearer = {"Authorization": f"Bearer {token}"}
    created = await http.post(TASKS.format(user_id=user_id), json={"title": "Read the logs"}, headers=bearer)
    assert created.status_code == 201, created.text
    task_url = f"{TASKS.format(user_id=user_id)}/{created.json()['id']}"
    await asyncio.to_thread(change_database, db_path, "UPDATE tasks SET priority = 'bogus'")
    broken = await http.get(task_url, headers=bearer)
    assert broken.status_code == 500, broken.text
    await asyncio.to_thread(change_database, db_path, "ALTER TABLE tasks RENAME TO tasks_elsewhere")
    gone = await http.get(TASKS.format(user_id=user_id), headers=bearer)
    assert gone.status_code == 500, gone.text
    return [Sent(created, TASKS, user_id), Sent(broken, TASK, user_id), Sent(gone, TASKS, user_id)]


async def test_live_server_console_format_is_one_readable_line_per_record(tmp_path: Path) -> None:
    _, url = await asyncio.to_thread(sqlite_database, tmp_path)
    env = service_env(DATABASE_URL=url, LOG_FORMAT="console", LOG_LEVEL="INFO")
    with running_service(cwd=tmp_path, env=env) as service:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{service.base_url}/api/v1/no-such-route")
        wait_for_access_lines(service, [response.headers["x-request-id"]])
    lines = service.output().splitlines()

    assert all(CONSOLE_LINE.match(line) for line in lines), lines
    assert any(" INFO     todo_service.app: Application startup complete." in line for line in lines)
    assert any(" INFO     _granian: " in line for line in lines)  # the server's own lines, in the same format
    access = [line for line in lines if " todo_service.access: " in line]
    assert all(": GET /api/v1/health 200  [" in line for line in access[:-1]), lines  # the readiness poll
    assert f": GET /api/v1/no-such-route 404  [request_id={response.headers['x-request-id']} " in access[-1]
    assert len(access) >= 2, lines


async def test_cli_output_stays_plain_with_json_logs(tmp_path: Path) -> None:
    _, url = await asyncio.to_thread(sqlite_database, tmp_path)
    env = service_env(DATABASE_URL=url, LOG_FORMAT="json", LOG_LEVEL="INFO", TODO_ADMIN_PASSWORD=PASSWORD)
    args = ("users", "create-admin", "--email", "boss@example.com")
    result = await asyncio.to_thread(run_console, *args, cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "boss@example.com: admin account created\n"
    parse_json_lines(result.stderr)  # whatever was logged on the way is JSON too
    assert PASSWORD not in result.stdout + result.stderr
