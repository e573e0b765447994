"""``/api/v1/health`` (liveness) and ``/api/v1/health/ready`` (readiness), without a token."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import pytest

from tests.factories import Client, SameLoopClient, make_settings
from tests.integration.test_errors import assert_error
from tests.servers import free_port
from todo_service.app import create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

HEALTH = "/api/v1/health"
READY = "/api/v1/health/ready"
BOUND_SECONDS = 3.0


async def test_liveness_needs_no_token(client: Client) -> None:
    assert "authorization" not in client.headers
    response = await client.get(HEALTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


async def test_readiness_names_every_check(client: Client) -> None:
    response = await client.get(READY)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_probes_ignore_a_bad_token(client: Client) -> None:
    headers = {"Authorization": "Bearer not.a.token"}
    assert (await client.get(HEALTH, headers=headers)).status_code == 200
    assert (await client.get(READY, headers=headers)).status_code == 200


@pytest.fixture
async def silent_database() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word; yields its port."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(30):
                await reader.read()  # until the client gives up (or 30 s at most)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def timed_ready(database_url: str, check_timeout: float) -> tuple[httpx.Response, float, httpx.Response]:
    """Readiness and liveness of a fresh app on ``database_url``; also how long readiness took."""
    # db_connect_attempts=0: start at once, whatever the database (readiness is what is tested).
    settings = make_settings(database_url, health_check_timeout=check_timeout, db_pool_timeout=5, db_connect_attempts=0)
    async with SameLoopClient(app=create_app(settings)) as probe:
        started = time.monotonic()
        ready = await probe.get(READY)
        elapsed = time.monotonic() - started
        live = await probe.get(HEALTH)
    return ready, elapsed, live


def assert_database_not_ready(response: httpx.Response) -> None:
    body = assert_error(response, 503, "SERVICE_UNAVAILABLE", READY)
    assert "database" in body["detail"]
    assert "database" in [e["field"] for e in body["errors"]]
    for leak in ("Traceback", "SELECT", "u:p@", "password"):
        assert leak not in response.text


async def test_unreachable_database_is_503_quickly() -> None:
    ready, elapsed, live = await timed_ready(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x", 0.5)
    assert_database_not_ready(ready)
    assert elapsed < BOUND_SECONDS
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


async def test_silent_database_is_503_within_the_timeout(silent_database: int) -> None:
    ready, elapsed, live = await timed_ready(f"postgresql+asyncpg://u:p@127.0.0.1:{silent_database}/x", 0.5)
    assert_database_not_ready(ready)
    assert 0.5 <= elapsed < BOUND_SECONDS  # it waited for the timeout, then gave up
    assert live.status_code == 200


async def test_readiness_answers_again_and_again(database_url: str) -> None:
    settings = make_settings(database_url, health_check_timeout=2)
    async with SameLoopClient(app=create_app(settings)) as probe:
        first = await probe.get(READY)
        second = await probe.get(READY)
    assert first.status_code == second.status_code == 200
    assert second.json()["checks"] == {"database": "ok"}
