"""Request bodies over real TCP: ``todo-service run`` (granian) and raw sockets on loopback.

A client that trickles its body a byte at a time gets a 408 once ``REQUEST_BODY_TIMEOUT_SECONDS``
has passed, and the connection is closed, so its file descriptor is freed: 40 such clients at once
leave the server with the descriptors it had before. A client that closes its socket half-way
through a body leaves no ERROR line in the log and no 5xx in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_server_process import error_records, group_members, settled
from tests.processes import run_console, running_service, service_env

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.processes import LiveService

DEADLINE = 1.0
REGISTER = "/api/v1/auth/register"
BODY = json.dumps({"email": "trickle@example.com", "password": "Correct-Horse-42", "first_name": "T", "last_name": "R"})
SLOW_CLIENTS = 40


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    workdir = tmp_path_factory.mktemp("body-deadline")
    env = service_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'todo.db'}",
        REQUEST_BODY_TIMEOUT_SECONDS=str(DEADLINE),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        RATE_LIMIT_ENABLED="false",
    )
    migration = run_console("database", "upgrade", "--no-prompt", cwd=workdir, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr
    with running_service(cwd=workdir, env=env) as live:
        yield live


def port_of(service: LiveService) -> int:
    return int(service.base_url.rpartition(":")[2])


def request_head(port: int, length: int) -> bytes:
    return (
        f"POST {REGISTER} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def trickle(port: int, seconds: float) -> tuple[bytes, float, bool]:
    """Send the head, then the body a byte every 0.1 s: (what came back, when, whether the server closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    received = b""
    closed = False
    try:
        writer.write(request_head(port, len(BODY)))
        await writer.drain()
        for byte in BODY.encode():
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([byte]))
                await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                continue
            except ConnectionError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            if time.monotonic() - started > seconds:
                break
        elapsed = time.monotonic() - started
        if received and not closed:  # the answer came: the close must follow
            with contextlib.suppress(TimeoutError, ConnectionError):
                closed = await asyncio.wait_for(reader.read(65536), 2) == b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return received, elapsed, closed


def descriptors(service: LiveService) -> int:
    """Open file descriptors of the server and its workers."""
    return sum(len(list(Path(f"/proc/{pid}/fd").iterdir())) for pid in group_members(service.process.pid))


def status_and_body(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


async def test_a_trickling_body_gets_a_408_and_the_connection_is_closed(service: LiveService) -> None:
    raw, elapsed, closed = await trickle(port_of(service), seconds=10)
    status, headers, body = status_and_body(raw)
    assert status == 408, raw
    assert body["error_code"] == "REQUEST_TIMEOUT"
    assert headers["connection"] == "close"
    assert closed, "the server kept the connection open after its 408"
    assert DEADLINE <= elapsed < DEADLINE + 3


async def test_many_slow_clients_give_back_their_descriptors(service: LiveService) -> None:
    before = descriptors(service)
    results = await asyncio.gather(*(trickle(port_of(service), seconds=10) for _ in range(SLOW_CLIENTS)))
    statuses = [status_and_body(raw)[0] for raw, _, _ in results]
    assert statuses == [408] * SLOW_CLIENTS
    assert all(closed for _, _, closed in results)
    assert max(elapsed for _, elapsed, _ in results) < DEADLINE + 5
    after = await settled(lambda: asyncio.to_thread(lambda: descriptors(service) > before + 2), 5)
    assert not after, f"{descriptors(service)} descriptors open, {before} before the slow clients"
    # (a descriptor or two more may be a pooled database connection)


async def test_a_client_that_drops_mid_upload_logs_no_error_and_counts_no_5xx(service: LiveService) -> None:
    port = port_of(service)
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_head(port, len(BODY)) + BODY.encode()[:20])
        await writer.drain()
        await asyncio.sleep(0.2)  # the app is reading the body
        writer.close()  # mid-body
        await writer.wait_closed()
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        metrics = (await http.get("/metrics")).text
    samples = [s for f in text_string_to_metric_families(metrics) for s in f.samples]
    register = [s for s in samples if s.name == "todo_http_requests_total" and s.labels.get("path") == REGISTER]
    assert sum(s.value for s in register if s.labels["status_code"] == "499") == 3, register
    assert [s for s in register if s.labels["status_code"].startswith("5")] == []
    assert [s for s in samples if s.name == "todo_http_requests_error_total" and s.value] == []
    assert error_records(service.output()) == []
