"""``todo-service run`` as the container runs it, stopped as a container runtime stops it: SIGTERM.

The image migrates with ``todo-service database upgrade --no-prompt`` (a command of its own, never
at start), then runs ``todo-service run`` with ``APP_ENV=production``, a real ``SECRET_KEY``,
``LOG_FORMAT=json``, ``PROMETHEUS_MULTIPROC_DIR`` and several workers. This module does exactly
that (``--web-concurrency 2``) on a fresh database of the test PostgreSQL server, on a loopback
port, and serves real requests: register, create a task, read it. Then it starts a request whose
body comes in two parts, sends SIGTERM to the server's main process (as ``docker stop`` and
Kubernetes do: to PID 1 alone) while the app waits for the second part, and only then sends it.

The shutdown runs once (a module fixture, a few seconds) and each test checks one promise of it:

- the request in flight gets its normal answer (201 and the task), and its transaction is committed;
- within ``REFUSED_WITHIN`` seconds of the signal, while that request is still in flight, a new
  connection is refused: nothing listens any more;
- the server process outlives its in-flight requests (a container stops when its main process
  ends), then exits 0 within ``EXIT_WITHIN`` seconds, and no process of its group is left;
- every PostgreSQL connection of the service (``application_name`` ``todo-service``) is closed;
- the shutdown logs no error, and every worker ran the app's shutdown;
- ``BURST`` connections that each sent a complete request (a task to create) right before the
  signal all get their complete answer, and every one of those tasks is stored: nothing that
  arrived is dropped, neither from the accept queue nor accepted but not yet read.

``todo-service run`` is granian (``todo_service/cli.py`` says why), with a drain in front of its
shutdown: on SIGTERM each worker's listening sockets stop taking connections (new ones get no
answer, then are refused once the listeners close), what was queued or accepted is read and
answered, then granian stops its workers, waits for them, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.factories import PASSWORD
from tests.processes import FAST_ARGON2, LiveService, run_console, running_service, service_env
from tests.servers import fresh_postgres_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

T = TypeVar("T")
WORKERS = 2
REFUSED_WITHIN = 2.0
EXIT_WITHIN = 15.0
CONNECTIONS_CLOSED_WITHIN = 10.0
STEP = 0.05
TASKS = "/api/v1/users/{user_id}/tasks"
SLOW_BODY = (b'{"title": "finished after SIGTERM", ', b'"priority": "urgent"}')
BURST = 20


@dataclass(frozen=True)
class Shutdown:
    """What one SIGTERM under load did, as seen from outside the server."""

    connections_before: int
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    stored: tuple[str, str] | None
    accepted_after_signal: int
    refused_after: float | None
    running_while_in_flight: bool
    returncode: int | None
    exited_after: float
    leftover: list[int]
    connections_after: int
    output: str
    burst: list[tuple[str, int | None, str]]  # (title, status or None, what happened)
    burst_stored: set[str]


# --- helpers ---------------------------------------------------------------------------------------


def log_records(output: str) -> list[dict[str, Any] | str]:
    """Each line the server wrote: a JSON record, or a plain line (none is expected)."""
    records: list[dict[str, Any] | str] = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = line
        records.append(record if isinstance(record, dict) else line)
    return records


def messages(service: LiveService) -> list[str]:
    """The message of each record (a plain line as it is)."""
    return [str(r.get("message")) if isinstance(r, dict) else r for r in log_records(service.output())]


def error_records(output: str) -> list[dict[str, Any]]:
    """The records of level ERROR or CRITICAL."""
    return [r for r in log_records(output) if isinstance(r, dict) and r.get("level") in {"ERROR", "CRITICAL"}]


async def wait_for_messages(service: LiveService, message: str, count: int, seconds: float) -> None:
    """Until ``message`` was logged ``count`` times (once per worker), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while messages(service).count(message) < count:
        if service.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{message!r} was not logged {count} times within {seconds}s:\n{service.output()[-3000:]}")
        await asyncio.sleep(STEP)


async def settled(read: Callable[[], Awaitable[T]], seconds: float) -> T:
    """``read()`` again and again until it gives a falsy value or ``seconds`` passed; its last value."""
    deadline = time.monotonic() + seconds
    value = await read()
    while value and time.monotonic() < deadline:
        await asyncio.sleep(STEP)
        value = await read()
    return value


def group_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run (zombies excluded), from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (command)"
            state, process_group = fields[0], int(fields[2])
            if process_group == pgid and state != "Z":
                members.append(int(stat.parent.name))
    return sorted(members)


async def service_connections(admin: AsyncEngine, database: str) -> int:
    """Connections of the service (its engines name themselves ``todo-service``) to ``database``."""
    async with admin.connect() as connection:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :database AND application_name = 'todo-service'"
        )
        return int((await connection.execute(query, {"database": database})).scalar_one())


async def in_flight(http: httpx.AsyncClient, path: str) -> float:
    """``todo_http_requests_in_progress`` for ``POST path``, summed over every worker."""
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "todo_http_requests_in_progress"
        and sample.labels.get("method") == "POST"
        and sample.labels.get("path") == path
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a ``Content-Length``: status, headers (lower-case names), body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.removesuffix("\r\n\r\n").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def production_env(database_url: str, metrics_dir: Path) -> dict[str, str]:
    """The image's settings: production, a real key, JSON logs, multiprocess metrics; every other one its default."""
    env = service_env(
        APP_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        DATABASE_URL=database_url,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    for name in FAST_ARGON2:  # production's argon2 cost too
        del env[name]
    return env


# --- the shutdown, once ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def shutdown(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shutdown]:
    """A fresh database, migrated; the server started on it, serving; SIGTERM with a request in flight."""
    name = f"todo_server_process_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = await fresh_postgres_database(postgres_admin_url, name)
    workdir = tmp_path_factory.mktemp("server-process")
    (metrics_dir := workdir / "prometheus").mkdir()
    env = production_env(url, metrics_dir)

    migration = run_console("database", "upgrade", "--no-prompt", cwd=workdir, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr

    admin = create_async_engine(postgres_admin_url, poolclass=NullPool)
    with running_service("--web-concurrency", str(WORKERS), cwd=workdir, env=env) as service:
        pgid = service.process.pid  # start_new_session: the server leads a group of its own
        try:
            yield await _stop_under_load(service, url, name, admin)
        finally:
            for pid in group_members(pgid):  # whatever outlived the test (an orphaned worker)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await admin.dispose()


async def _stop_under_load(service: LiveService, url: str, name: str, admin: AsyncEngine) -> Shutdown:
    """Serve real requests, then SIGTERM the main process with a request in flight; record what follows."""
    await wait_for_messages(service, "Application startup complete.", WORKERS, seconds=30)
    http = httpx.AsyncClient(base_url=service.base_url, timeout=10)
    try:
        tasks, token = await _serve_real_requests(http, "ops@example.com")
        connections_before = await service_connections(admin, name)
        # The slow request: its headers and half its body now, the rest after the signal.
        port = int(service.base_url.rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        await http.aclose()  # no idle keep-alive connection left: the slow one is the only one
    try:
        head = (
            f"POST {tasks} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {sum(map(len, SLOW_BODY))}\r\n\r\n"
        )
        writer.write(head.encode() + SLOW_BODY[0])
        await writer.drain()
        await _until_in_flight(service.base_url, tasks)

        # The burst: BURST new connections, each sending one complete request, the signal sent
        # as they go out (not after their answers, as a load balancer does not wait either).
        sending = [asyncio.create_task(_send_request(port, tasks, token, f"burst {n}")) for n in range(BURST)]
        await asyncio.sleep(0)  # each has started to connect
        signalled = time.monotonic()
        os.kill(service.process.pid, signal.SIGTERM)
        burst = await asyncio.gather(*sending)
        accepted, refused_after = await _probe_until_refused(port, signalled)
        running_while_in_flight = service.process.poll() is None

        writer.write(SLOW_BODY[1])
        await writer.drain()
        status, headers, raw = await asyncio.wait_for(read_response(reader), 10)
        answered = await asyncio.gather(*(_burst_answer(*sent) for sent in burst))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    try:
        returncode: int | None = await asyncio.to_thread(service.process.wait, EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        returncode = None
    exited_after = time.monotonic() - signalled
    leftover = await settled(lambda: asyncio.to_thread(group_members, service.process.pid), EXIT_WITHIN)
    connections_after = await settled(lambda: service_connections(admin, name), CONNECTIONS_CLOSED_WITHIN)

    body = json.loads(raw) if headers.get("content-type", "").startswith("application/json") else {}
    return Shutdown(
        connections_before=connections_before,
        status=status,
        headers=headers,
        body=body,
        stored=await _stored_task(url, body["id"]) if "id" in body else None,
        accepted_after_signal=accepted,
        refused_after=refused_after,
        running_while_in_flight=running_while_in_flight,
        returncode=returncode,
        exited_after=exited_after,
        leftover=leftover,
        connections_after=connections_after,
        output=service.output(),
        burst=answered,
        burst_stored=await _stored_titles(url, "burst "),
    )


async def _serve_real_requests(http: httpx.AsyncClient, email: str) -> tuple[str, str]:
    """Register, create a task, read it back: (the account's tasks path, its access token)."""
    body = {"email": email, "password": PASSWORD, "first_name": "Op", "last_name": "Erator"}
    registered = await http.post("/api/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    token = registered.json()["access_token"]
    tasks = TASKS.format(user_id=registered.json()["user"]["id"])
    auth = {"Authorization": f"Bearer {token}"}
    created = await http.post(tasks, json={"title": "served by production", "priority": "high"}, headers=auth)
    assert created.status_code == 201, created.text
    read = await http.get(f"{tasks}/{created.json()['id']}", headers=auth)
    assert read.status_code == 200, read.text
    assert read.json() == created.json()
    assert read.json()["title"] == "served by production"
    return tasks, str(token)


async def _until_in_flight(base_url: str, tasks: str) -> None:
    """Until the slow request is in the app, its handler waiting for the rest of its body (at most 5 s)."""
    deadline = time.monotonic() + 5
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        while await in_flight(http, TASKS) < 1:
            assert time.monotonic() < deadline, f"the slow POST {tasks} never reached the app"
            await asyncio.sleep(STEP)


async def _probe_until_refused(port: int, signalled: float) -> tuple[int, float | None]:
    """Connect again and again until refused or ``REFUSED_WITHIN`` passed: (accepted, seconds until refused).

    While the service drains, a new connection gets no answer at all (its SYN is dropped): the
    attempt waits, and is refused once the listeners are closed (the SYN's retransmission).
    """
    accepted = 0
    while time.monotonic() - signalled < REFUSED_WITHIN:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), REFUSED_WITHIN)
        except ConnectionRefusedError:
            return accepted, time.monotonic() - signalled
        except TimeoutError:
            continue  # never answered: not accepted either
        accepted += 1
        writer.close()
        await asyncio.sleep(STEP)
    return accepted, None


async def _send_request(
    port: int, tasks: str, token: str, title: str
) -> tuple[str, asyncio.StreamReader | None, asyncio.StreamWriter | None]:
    """A new connection carrying one complete ``POST`` of a task: (title, reader, writer); no answer read."""
    body = json.dumps({"title": title}).encode()
    head = (
        f"POST {tasks} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return title, None, None
    writer.write(head.encode() + body)
    await writer.drain()
    return title, reader, writer


async def _burst_answer(
    title: str, reader: asyncio.StreamReader | None, writer: asyncio.StreamWriter | None
) -> tuple[str, int | None, str]:
    """What became of one request of the burst: (title, status, "answered" | "refused" | what went wrong)."""
    if reader is None or writer is None:
        return title, None, "refused"
    try:
        status, _, raw = await asyncio.wait_for(read_response(reader), 10)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        return title, None, f"dropped after acceptance ({type(exc).__name__})"
    except TimeoutError:
        return title, None, "no answer within 10s"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return title, status, "answered" if json.loads(raw).get("title") == title else f"other body {raw[:80]!r}"


async def _stored_task(url: str, task_id: str) -> tuple[str, str] | None:
    """The title and priority of the task row ``task_id``, read behind the service's back."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            query = text("SELECT title, priority FROM tasks WHERE id = :id")
            row = (await connection.execute(query, {"id": task_id})).one_or_none()
    finally:
        await engine.dispose()
    return (str(row[0]), str(row[1])) if row else None


async def _stored_titles(url: str, prefix: str) -> set[str]:
    """The titles of the task rows that start with ``prefix``, read behind the service's back."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            query = text("SELECT title FROM tasks WHERE title LIKE :prefix")
            rows = (await connection.execute(query, {"prefix": f"{prefix}%"})).all()
    finally:
        await engine.dispose()
    return {str(row[0]) for row in rows}


# --- the promises ------------------------------------------------------------------------------------


def test_the_request_in_flight_gets_its_normal_answer(shutdown: Shutdown) -> None:
    """SIGTERM arrived between the two parts of its body: it is answered as if nothing happened."""
    assert shutdown.status == 201, shutdown.output[-3000:]
    assert shutdown.body["title"] == "finished after SIGTERM"
    assert shutdown.body["priority"] == "urgent"
    assert shutdown.body["completed"] is False
    assert shutdown.headers["location"].endswith(f"/tasks/{shutdown.body['id']}")


def test_the_request_in_flight_is_committed(shutdown: Shutdown) -> None:
    """Its row is in the database: the pool closed after the transaction, not during it."""
    assert shutdown.stored == ("finished after SIGTERM", "urgent")


def test_no_new_connection_is_accepted_after_the_signal(shutdown: Shutdown) -> None:
    """Refused (nothing listens) soon after SIGTERM, while a request is still being served."""
    assert shutdown.refused_after is not None, (
        f"{shutdown.accepted_after_signal} connections were still accepted {REFUSED_WITHIN}s after SIGTERM"
    )
    assert shutdown.refused_after < REFUSED_WITHIN


def test_the_server_process_outlives_its_requests(shutdown: Shutdown) -> None:
    """A container stops when its main process ends: that must not happen before the drain."""
    assert shutdown.running_while_in_flight, f"the server exited with {shutdown.returncode} while serving a request"


def test_the_server_exits_0_within_a_bounded_time(shutdown: Shutdown) -> None:
    """A clean stop: exit code 0 (``None``: still running after ``EXIT_WITHIN`` seconds)."""
    assert shutdown.returncode == 0, f"exit code {shutdown.returncode}:\n{shutdown.output[-3000:]}"
    assert shutdown.exited_after < EXIT_WITHIN


def test_no_process_of_the_server_is_left(shutdown: Shutdown) -> None:
    """No worker or supervisor of its group runs on, orphaned."""
    assert shutdown.leftover == []


def test_the_services_database_connections_are_closed(shutdown: Shutdown) -> None:
    """Every worker disposed of its pool: PostgreSQL sees none of the service's connections."""
    assert shutdown.connections_before > 0  # the query sees them while the server runs
    assert shutdown.connections_after == 0


def test_the_shutdown_logs_no_error(shutdown: Shutdown) -> None:
    """Nothing was cancelled or failed, every worker ran the app's shutdown, every line is JSON."""
    assert error_records(shutdown.output) == []
    assert [line for line in log_records(shutdown.output) if not isinstance(line, dict)] == []
    assert shutdown.output.count("Application shutdown complete.") == WORKERS


def test_no_request_that_arrived_is_dropped(shutdown: Shutdown) -> None:
    """Each connection of the burst is answered in full, or was never accepted (refused): never dropped.

    Before the drain, granian answered 8 of 40 such requests and closed the other connections
    without a word (accepted, request unread; or reset from the accept queue).
    """
    assert len(shutdown.burst) == BURST
    dropped = [(title, what) for title, status, what in shutdown.burst if what not in {"answered", "refused"}]
    assert dropped == [], shutdown.output[-3000:]
    answered = [title for title, status, what in shutdown.burst if what == "answered"]
    assert all(status == 201 for _, status, what in shutdown.burst if what == "answered")
    assert answered, "no request of the burst reached the server before it stopped: the test proves nothing"


def test_every_answered_request_of_the_burst_is_committed(shutdown: Shutdown) -> None:
    answered = {title for title, _, what in shutdown.burst if what == "answered"}
    assert shutdown.burst_stored == answered
