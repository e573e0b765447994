"""Rate limits through the HTTP API: per route, per client IP, per user; in memory and in a real Redis.

Each test builds its own app with rate limits on (the shared test app runs without them). The test
client's peer is ``testclient``, which is never a trusted proxy; a trusted proxy's requests come
through httpx's ASGI transport, which lets a test name the peer address.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from tests.factories import PASSWORD, Client, SameLoopClient, make_settings, register
from tests.integration.test_errors import assert_error
from tests.limiter_events import LimiterEvents, record
from tests.servers import RedisServer, redis_server
from todo_service.app import create_app
from todo_service.db.models import User
from todo_service.ratelimit.limiter import STATE_KEY, RateLimiter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from sqlalchemy.ext.asyncio import AsyncEngine

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"
BAD_TOKEN = {"Authorization": "Bearer not.a.token"}
WINDOW = 60  # seconds, for "n/minute"
OUTAGE_BOUND = 2.0  # seconds any request may take while Redis is down
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


@contextlib.asynccontextmanager
async def serve(database_url: str, **overrides: Any) -> AsyncIterator[Client]:
    """A client of a fresh app with rate limits on (and ``overrides``), started and stopped around the block."""
    app = create_app(make_settings(database_url, **{"rate_limit_enabled": True, **overrides}))
    if isinstance(limiter := app.state.get(STATE_KEY), RateLimiter):
        _EVENTS[id(app)] = record(limiter)
    async with SameLoopClient(app=app) as client:
        yield client


_EVENTS: dict[int, LimiterEvents] = {}


def events_of(client: Client) -> LimiterEvents:
    """What the app's limiter reported through its hooks (rejections by rule, storage failures)."""
    return _EVENTS[id(client.app)]


def rate_headers(response: httpx.Response) -> tuple[int, int, int]:
    """``(limit, remaining, reset)`` from the ``RateLimit-*`` headers."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    return limit, remaining, reset


def assert_refused(response: httpx.Response, path: str, limit: int) -> int:
    """A 429 in the contract's error body with ``Retry-After`` and the ``RateLimit-*`` headers; returns the wait."""
    assert_error(response, 429, "RATE_LIMITED", path)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert rate_headers(response) == (limit, 0, retry_after)
    assert response.headers["x-request-id"]  # the transport hooks still ran
    return retry_after


def register_body(n: int) -> dict[str, str]:
    return {"email": f"rate{n}@example.com", "password": PASSWORD, "first_name": "Rate", "last_name": "Limited"}


async def users_named(db_engine: AsyncEngine, email: str) -> int:
    async with db_engine.connect() as connection:
        return int((await connection.execute(select(func.count()).where(User.email == email))).scalar_one())


# --- route rules ------------------------------------------------------------------------------


async def test_the_sixth_registration_from_one_address_in_a_minute_is_refused(
    client: Client, database_url: str, db_engine: AsyncEngine
) -> None:
    async with serve(database_url) as api:
        for n in range(5):
            response = await api.post(REGISTER, json=register_body(n))
            assert response.status_code == 201, response.text
            limit, remaining, reset = rate_headers(response)
            assert (limit, remaining) == (5, 4 - n)
            assert 0 < reset <= WINDOW
        refused = await api.post(REGISTER, json=register_body(5))
        assert_refused(refused, REGISTER, 5)
        assert refused.json()["detail"].startswith("Too many requests")
        assert events_of(api).rejections == {"register": 1}
    assert await users_named(db_engine, "rate4@example.com") == 1
    assert await users_named(db_engine, "rate5@example.com") == 0  # refused before the handler ran


async def test_login_has_a_counter_of_its_own(client: Client, database_url: str) -> None:
    async with serve(database_url, rate_limit_login="3/minute") as api:
        account = await register(api)
        for n in range(4):
            assert (await api.post(REGISTER, json=register_body(n))).status_code == 201
        assert_refused(await api.post(REGISTER, json=register_body(9)), REGISTER, 5)

        credentials = {"email": account.email, "password": account.password}
        for remaining in (2, 1, 0):  # registration's exhausted counter does not touch login's
            response = await api.post(LOGIN, json=credentials)
            assert response.status_code == 200, response.text
            assert rate_headers(response)[:2] == (3, remaining)
        assert_refused(await api.post(LOGIN, json=credentials), LOGIN, 3)
        assert_refused(await api.post(LOGIN, json={"email": "nobody@example.com", "password": "x"}), LOGIN, 3)
        assert events_of(api).rejections == {"register": 1, "login": 2}


async def test_refresh_has_a_counter_of_its_own(database_url: str) -> None:
    async with serve(database_url, rate_limit_refresh="2/minute", rate_limit_login="2/minute") as api:
        for remaining in (1, 0):
            response = await api.post(REFRESH, json={"refresh_token": "not-a-refresh-token"})
            assert response.status_code == 401, response.text
            assert rate_headers(response)[:2] == (2, remaining)
        assert_refused(await api.post(REFRESH, json={"refresh_token": "another-one"}), REFRESH, 2)
        response = await api.post(LOGIN, json={"email": "nobody@example.com", "password": "Wrong-Password-1"})
        assert response.status_code == 401, response.text
        assert rate_headers(response)[:2] == (2, 1)


async def test_a_trailing_slash_does_not_dodge_the_route_rule(client: Client, database_url: str) -> None:
    async with serve(database_url, rate_limit_login="2/minute") as api:
        wrong = {"email": "nobody@example.com", "password": "Wrong-Password-1"}
        assert (await api.post(LOGIN, json=wrong)).status_code == 401
        response = await api.post(LOGIN + "/", json=wrong)
        assert response.status_code == 401
        assert rate_headers(response)[:2] == (2, 0)
        assert_refused(await api.post(LOGIN, json=wrong), LOGIN, 2)


# --- per IP, per user -------------------------------------------------------------------------


async def test_the_per_address_rule_counts_every_route_before_authentication(database_url: str) -> None:
    async with serve(database_url, rate_limit_per_ip="4/minute") as api:
        for remaining in (3, 2, 1, 0):  # bad tokens count: the 401s carry the headers
            response = await api.get(ME, headers=BAD_TOKEN)
            assert_error(response, 401, "INVALID_TOKEN", ME)
            assert rate_headers(response)[:2] == (4, remaining)
        assert_refused(await api.get(ME, headers=BAD_TOKEN), ME, 4)
        assert_refused(await api.post(LOGIN, json={"email": "a@example.com", "password": "x"}), LOGIN, 4)
        assert events_of(api).rejections == {"per_ip": 2}


async def test_the_per_user_rule_counts_each_user_apart(client: Client, database_url: str) -> None:
    async with serve(database_url, rate_limit_per_user="3/minute") as api:
        ada, grace = await register(api), await register(api)
        for remaining in (2, 1, 0):
            response = await api.get(ME, headers=ada.headers)
            assert response.status_code == 200, response.text
            assert rate_headers(response)[:2] == (3, remaining)  # the tightest rule: per user, not per IP
        assert_refused(await api.get(ME, headers=ada.headers), ME, 3)
        assert_refused(await api.get(ada.tasks_url, headers=ada.headers), ada.tasks_url, 3)

        response = await api.get(ME, headers=grace.headers)  # same address, another user
        assert response.status_code == 200, response.text
        assert rate_headers(response)[:2] == (3, 2)
        assert events_of(api).rejections == {"per_user": 2}


# --- which client ------------------------------------------------------------------------------


async def test_an_untrusted_peer_cannot_spread_its_requests_over_forged_addresses(database_url: str) -> None:
    async with serve(database_url, rate_limit_per_ip="2/minute", trusted_proxies=("10.0.0.0/8",)) as api:
        for n in range(2):
            response = await api.get(ME, headers={**BAD_TOKEN, "X-Forwarded-For": f"198.51.100.{n}"})
            assert response.status_code == 401
        refused = await api.get(ME, headers={**BAD_TOKEN, "X-Forwarded-For": "198.51.100.99"})
        assert_refused(refused, ME, 2)


async def test_a_trusted_proxy_forwards_each_client_with_its_own_counter(database_url: str) -> None:
    async with serve(database_url, rate_limit_per_ip="2/minute", trusted_proxies=("127.0.0.1",)) as api:
        transport = httpx.ASGITransport(app=api.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as proxy:

            async def get(forwarded_for: str | None) -> httpx.Response:
                headers = {**BAD_TOKEN, **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
                return await proxy.get(ME, headers=headers)

            assert rate_headers(await get("198.51.100.1"))[1] == 1
            assert rate_headers(await get("198.51.100.1"))[1] == 0
            assert_refused(await get("198.51.100.1"), ME, 2)
            assert rate_headers(await get("198.51.100.2"))[1] == 1  # another client behind the proxy
            # A client that forges the header is still known by what the proxy appended.
            assert_refused(await get("198.51.100.2, 198.51.100.1"), ME, 2)
            assert rate_headers(await get(None))[1] == 1  # the proxy's own requests
        # The test client's peer, "testclient", is another client again.
        assert rate_headers(await api.get(ME, headers=BAD_TOKEN))[1] == 1


# --- what is never limited ---------------------------------------------------------------------


async def test_health_and_docs_are_never_limited(database_url: str) -> None:
    async with serve(database_url, rate_limit_per_ip="2/minute") as api:
        for _ in range(4):
            for path in ("/api/v1/health", "/api/v1/health/ready", "/api/docs/openapi.json", "/api/docs"):
                response = await api.get(path)
                assert response.status_code == 200, (path, response.text)
                assert not set(RATE_HEADERS) & set(response.headers), path
        response = await api.get(ME, headers=BAD_TOKEN)  # the probes spent nothing
        assert rate_headers(response)[:2] == (2, 1)


async def test_disabled_rate_limits_install_nothing(client: Client, database_url: str) -> None:
    overrides = {"rate_limit_enabled": False, "rate_limit_register": "1/minute", "rate_limit_per_ip": "1/minute"}
    async with serve(database_url, **overrides) as api:
        for n in range(3):
            response = await api.post(REGISTER, json=register_body(n))
            assert response.status_code == 201, response.text
            assert not set(RATE_HEADERS) & set(response.headers)
        assert STATE_KEY not in api.app.state
        assert not limit_middleware(api)
    async with serve(database_url, rate_limit_enabled=True) as api:
        assert [m.__name__ for m in limit_middleware(api)] == ["RefusedCallers", "RateLimits"]


def limit_middleware(api: Client) -> list[type]:
    """The rate limiter's middleware classes in the app's list (each listed through DefineMiddleware)."""
    listed = [getattr(m, "middleware", m) for m in api.app.middleware]
    return [m for m in listed if isinstance(m, type) and m.__module__.startswith("todo_service.ratelimit")]


# --- Redis -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisServer]:
    """A real redis-server for this session (the tests fail, not skip, when the binary is missing)."""
    with redis_server() as server:
        yield server


@pytest.fixture
async def redis_url(redis_process: RedisServer) -> str:
    """The server's URL, emptied for this test."""
    client = Redis.from_url(redis_process.url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return redis_process.url


async def test_two_apps_on_one_redis_share_their_counters(database_url: str, redis_url: str) -> None:
    settings = {"redis_url": redis_url, "rate_limit_per_ip": "4/minute"}
    async with serve(database_url, **settings) as worker_1, serve(database_url, **settings) as worker_2:
        assert rate_headers(await worker_1.get(ME, headers=BAD_TOKEN))[1] == 3
        assert rate_headers(await worker_2.get(ME, headers=BAD_TOKEN))[1] == 2
        assert rate_headers(await worker_1.get(ME, headers=BAD_TOKEN))[1] == 1
        assert rate_headers(await worker_2.get(ME, headers=BAD_TOKEN))[1] == 0
        assert_refused(await worker_1.get(ME, headers=BAD_TOKEN), ME, 4)
        assert_refused(await worker_2.get(ME, headers=BAD_TOKEN), ME, 4)
        assert events_of(worker_1).rejections == events_of(worker_2).rejections == {"per_ip": 1}
    assert await redis_clients(redis_url) == 1  # at shutdown both apps closed their connections: ours is left


async def redis_clients(url: str) -> int:
    """How many clients Redis sees, once it has noticed the ones that left (2 s at most)."""
    client = Redis.from_url(url)
    try:
        for _ in range(40):
            connected = int((await client.info("clients"))["connected_clients"])
            if connected == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    return connected


async def timed_get(api: Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await api.get(ME, headers=BAD_TOKEN)
    return response, time.monotonic() - started


async def test_a_redis_outage_fails_open_and_limits_return_with_redis(
    database_url: str, redis_url: str, redis_process: RedisServer
) -> None:
    async with serve(database_url, redis_url=redis_url, rate_limit_per_ip="3/minute", redis_timeout=0.25) as api:
        for _ in range(3):
            assert (await api.get(ME, headers=BAD_TOKEN)).status_code == 401
        assert_refused(await api.get(ME, headers=BAD_TOKEN), ME, 3)
        limiter_events = events_of(api)

        redis_process.stop()
        try:
            for _ in range(8):  # over the limit, spread over more than one storage retry pause
                response, elapsed = await timed_get(api)
                assert elapsed < OUTAGE_BOUND
                assert_error(response, 401, "INVALID_TOKEN", ME)  # served, unlimited
                assert not set(RATE_HEADERS) & set(response.headers)
                await asyncio.sleep(0.2)
            assert limiter_events.storage_failures >= 2
        finally:
            redis_process.start()  # the same port, empty

        for _ in range(50):  # Redis is back: limits apply again once the limiter retries it
            response, elapsed = await timed_get(api)
            assert elapsed < OUTAGE_BOUND
            if "ratelimit-limit" in response.headers:
                break
            await asyncio.sleep(0.1)
        assert rate_headers(response)[:2] == (3, 2)
        for remaining in (1, 0):
            assert rate_headers(await api.get(ME, headers=BAD_TOKEN))[1] == remaining
        assert_refused(await api.get(ME, headers=BAD_TOKEN), ME, 3)
        assert limiter_events.rejections == {"per_ip": 2}
