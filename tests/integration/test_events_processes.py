"""Live events across processes: two replicas on one PostgreSQL database, and a stream when its server stops."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.test_events_sse import register, stream
from tests.processes import run_console, running_service, service_env, stop
from tests.servers import fresh_postgres_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture(scope="module")
async def events_env(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh, migrated database; notifications only (no poll within the tests' time)."""
    name = f"todo_events_processes_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = await fresh_postgres_database(postgres_admin_url, name)
    env = service_env(DATABASE_URL=url, RATE_LIMIT_ENABLED="false", EVENTS_POLL_SECONDS="60")
    workdir = tmp_path_factory.mktemp("events-migrate")
    migration = run_console("database", "upgrade", "--no-prompt", cwd=workdir, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr
    return env


@pytest.fixture(scope="module")
async def replicas(events_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[str]]:
    """Two replicas (one process each) on the database: their base URLs."""
    workdir = tmp_path_factory.mktemp("events-processes")
    with running_service(cwd=workdir, env=events_env) as first, running_service(cwd=workdir, env=events_env) as second:
        yield [first.base_url, second.base_url]


async def test_a_change_made_through_one_replica_reaches_a_stream_on_the_other(replicas: list[str]) -> None:
    async with (
        httpx.AsyncClient(base_url=replicas[0], timeout=10) as a,
        httpx.AsyncClient(base_url=replicas[1], timeout=10) as b,
    ):
        user = await register(a)
        async with stream(b, f"{user.tasks}/events", headers=user.auth) as on_b:
            for n in range(3):
                created = (await a.post(user.tasks, json={"title": f"via A {n}"}, headers=user.auth)).json()
                started = time.monotonic()
                event = await on_b.next(5)
                assert event.data["task"] == created
                assert time.monotonic() - started < 5  # the poll (60 s) could not have delivered it


async def test_an_open_stream_ends_when_its_server_stops_and_the_server_exits_0(
    events_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("events-stop")
    with running_service(cwd=workdir, env=events_env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            user = await register(http)
            async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
                await events.silent(0.5)  # open and idle
                started = time.monotonic()
                code = await asyncio.to_thread(stop, server)
                took = time.monotonic() - started
                with pytest.raises(EOFError):  # the body ended cleanly, not by a timeout
                    await events.next(5)
        assert code == 0, server.output()
        assert took < 10, f"the server took {took:.1f}s to stop"
