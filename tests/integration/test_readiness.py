"""Readiness follows the real dependencies: stop one, the probe names it; start it again, ready again.

Each test owns its servers (a PostgreSQL cluster, a redis-server) so it can stop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

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
    """Poll readiness until it answers ready (not degraded), at most ``seconds`` (the last answer otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(READY)
        if (response.status_code == 200 and response.json()["status"] == "ready") or time.monotonic() > deadline:
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


@contextlib.contextmanager
def probe_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The probe's records from INFO up (the app's logging config replaced the root's handlers, caplog's too)."""
    probe_logger = logging.getLogger("todo_service.system.services")
    level, disabled = probe_logger.level, logging.root.manager.disable  # an earlier test may disable INFO
    probe_logger.setLevel(logging.INFO)
    probe_logger.addHandler(caplog.handler)
    logging.disable(logging.NOTSET)
    try:
        yield
    finally:
        logging.disable(disabled)
        probe_logger.removeHandler(caplog.handler)
        probe_logger.setLevel(level)


def dependency_up(metrics_text: str) -> dict[str, float]:
    """``todo_dependency_up`` by dependency, from a scrape."""
    return {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "todo_dependency_up"
    }


async def test_a_redis_outage_degrades_readiness_without_failing_it(
    database_url: str, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every replica shares Redis: its outage must not take them all out of rotation; it is said, counted, logged."""
    settings = make_settings(
        database_url, rate_limit_enabled=True, redis_url=redis.url, health_check_timeout=1, redis_timeout=0.5
    )
    async with SameLoopClient(app=create_app(settings)) as client:
        up = await client.get(READY)
        assert up.status_code == 200, up.text
        assert up.json() == {"checks": {"database": "ok", "redis": "ok"}, "status": "ready"}
        assert dependency_up((await client.get("/metrics")).text) == {"database": 1.0, "redis": 1.0}

        redis.stop()
        try:
            with probe_logs(caplog):
                down = await client.get(READY)
                again = await client.get(READY)
            assert down.status_code == 200, down.text
            body = down.json()
            assert body["status"] == "degraded"
            assert body["degraded"] == ["redis"]
            assert body["checks"]["database"] == "ok"
            assert body["checks"]["redis"] != "ok"
            assert again.json()["status"] == "degraded"
            warnings = [r for r in caplog.records if r.name == "todo_service.system.services"]
            assert [(r.levelno, r.getMessage().split(" (")[0]) for r in warnings] == [
                (logging.WARNING, "readiness: redis is down")  # once, not once per probe
            ]
            assert dependency_up((await client.get("/metrics")).text) == {"database": 1.0, "redis": 0.0}
            # The API itself still serves (the rate limiter fails open).
            assert (await client.get("/api/v1/health")).status_code == 200
        finally:
            redis.start()

        with probe_logs(caplog):
            back = await ready_within(client, RECOVERY_TIMEOUT)
        assert back.status_code == 200, back.text
        assert back.json() == {"checks": {"database": "ok", "redis": "ok"}, "status": "ready"}
        assert dependency_up((await client.get("/metrics")).text) == {"database": 1.0, "redis": 1.0}
        assert dependency_up((await client.get("/metrics")).text) == {"database": 1.0, "redis": 1.0}


async def test_the_database_down_is_503_even_with_redis_up(
    postgres: PostgresServer, database_url: str, redis: RedisServer
) -> None:
    settings = make_settings(database_url, rate_limit_enabled=True, redis_url=redis.url, health_check_timeout=1)
    async with SameLoopClient(app=create_app(settings)) as client:
        assert (await client.get(READY)).status_code == 200
        postgres.stop()
        try:
            assert_not_ready(await client.get(READY), "database")
            assert dependency_up((await client.get("/metrics")).text) == {"database": 0.0, "redis": 1.0}
        finally:
            postgres.start()
        back = await ready_within(client, RECOVERY_TIMEOUT)
        assert back.status_code == 200, back.text


async def test_without_redis_only_the_database_is_checked(database_url: str) -> None:
    async with SameLoopClient(app=create_app(make_settings(database_url, rate_limit_enabled=True))) as client:
        assert (await client.get(READY)).json()["checks"] == {"database": "ok"}
