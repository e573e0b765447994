"""Readiness follows the real dependencies: stop one, the probe names it; start it again, ready again.

Each test owns its servers (a PostgreSQL cluster, a redis-server) so it can stop them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import SameLoopClient, make_settings
from tests.servers import PostgresServer, RedisServer, fresh_postgres_database, migrate, postgres_server, redis_server
from todo_service.app import create_app

READY = "/api/v1/health/ready"
RECOVERY_TIMEOUT = 30


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def database_url(postgres: PostgresServer) -> str:
    url = asyncio.run(fresh_postgres_database(postgres.url, "todo_ready"))
    migrate(url)
    return url


async def ready_within(client: httpx.AsyncClient, seconds: float) -> httpx.Response:
    """Poll readiness until it answers 200, at most ``seconds`` (the last answer otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(READY)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


def assert_not_ready(response: httpx.Response, dependency: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error_code"] == "SERVICE_UNAVAILABLE"
    assert dependency in body["detail"]
    assert [error["field"] for error in body["errors"]] == [dependency]
    assert body["errors"][0]["source"] == "dependency"


async def test_a_database_outage_is_named_and_recovers_without_a_restart(
    postgres: PostgresServer, database_url: str
) -> None:
    app = create_app(make_settings(database_url, health_check_timeout=1))
    async with SameLoopClient(app=app) as client:
        assert (await client.get(READY)).json() == {"checks": {"database": "ok"}, "status": "ready"}

        postgres.stop()
        try:
            started = time.monotonic()
            down = await client.get(READY)
            assert time.monotonic() - started < 5  # bounded by HEALTH_CHECK_TIMEOUT, not by a TCP timeout
            assert_not_ready(down, "database")
            assert (await client.get("/api/v1/health")).status_code == 200  # liveness does not depend on it
        finally:
            postgres.start()

        back = await ready_within(client, RECOVERY_TIMEOUT)
        assert back.status_code == 200, back.text
        assert back.json()["checks"] == {"database": "ok"}


async def test_redis_is_checked_when_the_rate_limiter_uses_it(database_url: str, redis: RedisServer) -> None:
    settings = make_settings(
        database_url, rate_limit_enabled=True, redis_url=redis.url, health_check_timeout=1, redis_timeout=0.5
    )
    async with SameLoopClient(app=create_app(settings)) as client:
        assert (await client.get(READY)).json()["checks"] == {"database": "ok", "redis": "ok"}

        redis.stop()
        try:
            assert_not_ready(await client.get(READY), "redis")
        finally:
            redis.start()

        back = await ready_within(client, RECOVERY_TIMEOUT)
        assert back.status_code == 200, back.text
        assert back.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_without_redis_only_the_database_is_checked(database_url: str) -> None:
    async with SameLoopClient(app=create_app(make_settings(database_url, rate_limit_enabled=True))) as client:
        assert (await client.get(READY)).json()["checks"] == {"database": "ok"}
