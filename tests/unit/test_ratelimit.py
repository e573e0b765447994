"""The rate limiter on its own: counters, verdicts, headers, the ``on_limited`` hook, and failing open.

Requests are hand-built ASGI scopes; storage is the real in-memory one, a real ``redis-server``
(started here), or a real socket that refuses or never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
import tracemalloc
import uuid
from typing import TYPE_CHECKING, Any, cast

import pytest
from redis.asyncio import Redis

from tests.factories import make_settings
from tests.limiter_events import LimiterEvents, record
from tests.processes import modules_loaded_by
from tests.servers import RedisServer, free_port, redis_server
from todo_service.core.errors import RateLimited
from todo_service.core.settings import Settings, SettingsError
from todo_service.ratelimit import limiter as ratelimit
from todo_service.ratelimit.counters import Counted, MemoryCounters, RedisCounters, Rule
from todo_service.ratelimit.limiter import STATE_KEY, RateLimiter, Verdict, build_rate_limiter
from todo_service.security.access import Caller

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Scope

WINDOW = 60  # seconds, for "n/minute"


def settings(**overrides: Any) -> Settings:
    return make_settings("sqlite+aiosqlite:///:memory:", **{"rate_limit_enabled": True, **overrides})


_EVENTS: dict[int, LimiterEvents] = {}


def limiter_for(**overrides: Any) -> RateLimiter:
    limiter = build_rate_limiter(settings(**overrides))
    assert limiter is not None
    _EVENTS[id(limiter)] = record(limiter)
    return limiter


def events(limiter: RateLimiter) -> LimiterEvents:
    """What ``limiter`` reported through its hooks since :func:`limiter_for` made it."""
    return _EVENTS[id(limiter)]


def request(ip: str = "198.51.100.7", path: str = "/api/v1/users/me", caller: Caller | None = None) -> Scope:
    """A hand-built HTTP scope from ``ip`` (the socket peer)."""
    return cast(
        "Scope",
        {"type": "http", "method": "GET", "path": path, "headers": [], "client": (ip, 50000), "user": caller},
    )


def verdict_of(scope: Scope) -> Verdict:
    verdict = scope["state"][STATE_KEY]
    assert isinstance(verdict, Verdict)
    return verdict


async def hit(limiter: RateLimiter, rule: str, identity: str, scope: Scope | None = None) -> Verdict:
    """One request counted against ``rule``; its verdict (RateLimited propagates)."""
    scope = scope or request()
    item = limiter.routes.get(rule) or getattr(limiter, rule)
    await limiter.enforce(scope, [(item, identity)])
    return verdict_of(scope)


async def refused(limiter: RateLimiter, rule: str, identity: str, scope: Scope | None = None) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await hit(limiter, rule, identity, scope)
    return caught.value


# --- counting ---------------------------------------------------------------------------------


async def test_a_rule_allows_its_count_then_refuses_with_the_headers() -> None:
    limiter = limiter_for(rate_limit_register="3/minute")
    remaining = [(await hit(limiter, "register", "198.51.100.7")).remaining for _ in range(3)]
    assert remaining == [2, 1, 0]

    error = await refused(limiter, "register", "198.51.100.7")
    assert (error.status_code, error.error_code) == (429, "RATE_LIMITED")
    retry_after = int(error.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert error.headers["RateLimit-Limit"] == "3"
    assert error.headers["RateLimit-Remaining"] == "0"
    assert error.headers["RateLimit-Reset"] == str(retry_after)
    assert str(retry_after) in error.detail
    assert events(limiter).rejections == {"register": 1}


async def test_every_rule_and_every_identity_has_its_own_counter() -> None:
    limiter = limiter_for(rate_limit_register="2/minute", rate_limit_login="2/minute", rate_limit_per_ip="2/minute")
    for _ in range(2):
        await hit(limiter, "register", "198.51.100.7")
    await refused(limiter, "register", "198.51.100.7")
    # Same limits, same address, other rules: untouched.
    assert (await hit(limiter, "login", "198.51.100.7")).remaining == 1
    assert (await hit(limiter, "per_ip", "198.51.100.7")).remaining == 1
    # Same rule, other address: untouched.
    assert (await hit(limiter, "register", "198.51.100.8")).remaining == 1
    assert events(limiter).rejections == {"register": 1}


async def test_a_refused_request_takes_no_slot_and_retry_after_tells_the_truth() -> None:
    limiter = limiter_for(rate_limit_login="1/second")
    await hit(limiter, "login", "198.51.100.7")
    first = time.monotonic()
    wait = int((await refused(limiter, "login", "198.51.100.7")).headers["Retry-After"])
    for _ in range(3):  # refusals take no slot: the wait does not grow
        assert int((await refused(limiter, "login", "198.51.100.7")).headers["Retry-After"]) <= wait
    await asyncio.sleep(max(0.0, first + wait - time.monotonic()) + 0.05)
    assert (await hit(limiter, "login", "198.51.100.7")).remaining == 0
    assert events(limiter).rejections == {"login": 4}


async def test_reset_counts_down_to_when_the_oldest_request_leaves_the_window() -> None:
    limiter = limiter_for(rate_limit_login="2/2 seconds")
    first = await hit(limiter, "login", "198.51.100.7")
    assert first.reset_after == 2
    await asyncio.sleep(1.1)
    second = await hit(limiter, "login", "198.51.100.7")
    assert (second.remaining, second.reset_after) == (0, 1)  # the first request frees its slot in < 1 s


@pytest.mark.parametrize(
    ("count", "oldest_age_ms", "allowed", "remaining", "reset_after"),
    [
        (0, 0, True, 9, 60),  # an empty window: 9 left after this one; this one leaves in 60 s
        (9, 30_000, True, 0, 30),  # the last slot; the oldest leaves in 30 s
        (10, 30_000, False, 0, 30),  # full: the oldest frees its slot in 30 s
        (10, 59_500, False, 0, 1),  # rounded up: never "retry in 0 s"
    ],
)
def test_a_window_is_its_count_and_its_oldest_request(
    count: int, oldest_age_ms: int, allowed: bool, remaining: int, reset_after: int
) -> None:
    counted = Counted(Rule("r", 10, 60_000), count, oldest_age_ms)
    assert counted.allowed is allowed
    assert counted.remaining(counted=allowed) == remaining
    assert counted.reset_after() == reset_after


async def test_memory_keeps_one_time_per_request_in_the_window_whatever_the_limit() -> None:
    limiter = limiter_for(rate_limit_per_ip="100000000/minute", rate_limit_login="2/second")
    assert isinstance(limiter.counters, MemoryCounters)
    for _ in range(2000):
        await hit(limiter, "per_ip", "198.51.100.7")
    window = limiter.counters.windows[limiter.per_ip.key("198.51.100.7")]
    assert (len(window), window.window_ms) == (2000, 60_000)  # what came, not the limit
    await hit(limiter, "login", "a")
    await hit(limiter, "login", "a")
    await asyncio.sleep(1.05)
    assert (await hit(limiter, "login", "a")).remaining == 1  # the two left the window: dropped on this check
    assert len(limiter.counters.windows[limiter.routes["login"].key("a")]) == 1


class Clock:
    """A hand-moved clock (ms) for :class:`MemoryCounters`."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


async def test_memory_counts_exactly_what_a_list_of_every_request_would() -> None:
    rng, clock = random.Random(16), Clock()  # noqa: S311  (a repeatable sequence, not a secret)
    counters, rule = MemoryCounters(clock), Rule("r", 40, 1000)
    every: list[int] = []  # the times counted, as the contract's moving window defines them
    for _ in range(20_000):
        clock.now += rng.choice((0, 1, 3, 40, 250, 1500))  # bursts, same-millisecond hits, idle gaps
        every = [t for t in every if t > clock.now - 1000]
        [counted] = await counters.hit([(rule, "a")])
        assert (counted.count, counted.oldest_age_ms) == (len(every), clock.now - every[0] if every else 0)
        if counted.allowed:
            every.append(clock.now)
    assert len(counters.windows[rule.key("a")]) == len(every)


async def test_memory_keeps_8_bytes_a_request_and_forgets_what_left() -> None:
    clock = Clock()
    counters, rule = MemoryCounters(clock), Rule("r", 100_000, 60_000)
    for clock.now in range(0, 600_000, 10):  # 100 requests a second for 10 windows
        await counters.hit([(rule, "a")])
    window = counters.windows[rule.key("a")]
    assert len(window) == 6000  # the last minute's, exactly
    assert len(window.times) < 2 * 6000  # the dropped ones go once they are half the array
    assert sys.getsizeof(window.times) < 2 * 8 * 6000 + 200


async def test_memory_at_a_thousand_clients_stays_small() -> None:
    """1,000 addresses and 2,000 users (the memory benchmark's load): 60,000 requests in a window."""
    counters = MemoryCounters()
    per_ip, per_user = Rule("per_ip", 1200, 60_000), Rule("per_user", 600, 60_000)
    addresses = [f"10.0.{n // 256}.{n % 256}" for n in range(1000)]
    users = [str(uuid.UUID(int=n)) for n in range(2000)]
    tracemalloc.start()
    try:
        for n in range(60_000):
            await counters.hit([(per_ip, addresses[n % 1000]), (per_user, users[n % 2000])])
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(counters.windows) == 3000
    assert sum(len(window) for window in counters.windows.values()) == 120_000
    # 120,000 times: 8 bytes each in arrays, plus about 300 bytes a key; a deque of ints held 5 MB
    assert held < 2_500_000, held


async def test_memory_forgets_keys_whose_requests_all_left_the_window() -> None:
    counters = MemoryCounters()
    second = Rule("s", 5, 1000)
    await counters.hit([(second, "a")])
    now = time.monotonic_ns() // 1_000_000
    counters.sweep(now + 500)
    assert list(counters.windows) == [second.key("a")]
    counters.sweep(now + 1500)
    assert counters.windows == {}


async def test_all_rules_of_a_request_are_counted_together_or_not_at_all() -> None:
    limiter = limiter_for(rate_limit_login="1/minute", rate_limit_per_ip="5/minute")
    both = [(limiter.routes["login"], "a"), (limiter.per_ip, "a")]
    await limiter.enforce(request(), both)
    for _ in range(3):
        with pytest.raises(RateLimited):
            await limiter.enforce(request(), both)
    assert (await hit(limiter, "per_ip", "a")).remaining == 3  # 5 - the first request - this one


async def test_the_tightest_verdict_of_a_request_is_kept() -> None:
    limiter = limiter_for(rate_limit_per_ip="100/minute", rate_limit_login="3/minute", rate_limit_per_user="10/minute")
    scope = request()
    await limiter.enforce(scope, [(limiter.routes["login"], "ip"), (limiter.per_ip, "ip")])
    assert (verdict_of(scope).rule, verdict_of(scope).remaining) == ("login", 2)
    await limiter.enforce(scope, [(limiter.per_user, "user")])
    assert verdict_of(scope).rule == "login"  # 2 left beats 9 left


def test_tightness_orders_refused_then_fewest_left_then_longest_wait() -> None:
    refused_soon = Verdict("a", 5, 0, 3, allowed=False)
    last_slot = Verdict("b", 5, 0, 50, allowed=True)
    last_slot_sooner = Verdict("c", 5, 0, 10, allowed=True)
    plenty = Verdict("d", 100, 90, 60, allowed=True)
    candidates = [plenty, last_slot_sooner, last_slot, refused_soon]
    assert sorted(candidates, key=lambda v: v.tightness) == [refused_soon, last_slot, last_slot_sooner, plenty]
    assert plenty.headers() == {"RateLimit-Limit": "100", "RateLimit-Remaining": "90", "RateLimit-Reset": "60"}
    assert refused_soon.headers()["Retry-After"] == "3"


# --- the before_send hook ---------------------------------------------------------------------


async def test_the_hook_writes_the_headers_once() -> None:
    limiter = limiter_for()
    scope = request()
    scope["state"] = {STATE_KEY: Verdict("login", 10, 4, 42, allowed=True)}
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"ratelimit-limit", b"7"), (b"RateLimit-Reset", b"9"), (b"etag", b'"1"')],
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"{}", "more_body": False}
    await limiter.add_headers(start, scope)
    await limiter.add_headers(body, scope)
    assert sorted(start["headers"]) == [
        (b"etag", b'"1"'),
        (b"ratelimit-limit", b"10"),
        (b"ratelimit-remaining", b"4"),
        (b"ratelimit-reset", b"42"),
    ]
    assert body == {"type": "http.response.body", "body": b"{}", "more_body": False}


async def test_the_hook_leaves_unlimited_responses_alone() -> None:
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": []}
    await limiter_for().add_headers(start, request())
    assert start["headers"] == []


# --- on_limited -------------------------------------------------------------------------------


class Calls:
    """Records ``on_limited`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, rule: str) -> None:
        client = scope.get("client")
        self.calls.append((client[0] if client else "?", rule))


async def test_on_limited_runs_once_per_key_and_window_not_per_refusal() -> None:
    limiter = limiter_for(rate_limit_login="1/second")
    limiter.on_limited = calls = Calls()
    await hit(limiter, "login", "a", request("198.51.100.1"))
    first = time.monotonic()
    wait = int((await refused(limiter, "login", "a", request("198.51.100.1"))).headers["Retry-After"])
    for _ in range(4):
        await refused(limiter, "login", "a", request("198.51.100.1"))
    await hit(limiter, "login", "b", request("198.51.100.2"))
    await refused(limiter, "login", "b", request("198.51.100.2"))
    assert calls.calls == [("198.51.100.1", "login"), ("198.51.100.2", "login")]
    assert events(limiter).rejections == {"login": 6}

    # Once the key has room again, the next flood is reported again, once.
    await asyncio.sleep(max(0.0, first + wait - time.monotonic()) + 0.05)
    await hit(limiter, "login", "a", request("198.51.100.1"))
    await refused(limiter, "login", "a", request("198.51.100.1"))
    await refused(limiter, "login", "a", request("198.51.100.1"))
    assert calls.calls[2:] == [("198.51.100.1", "login")]


async def test_a_failing_on_limited_is_logged_and_the_request_still_refused(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Scope, rule: str) -> None:
        raise RuntimeError("audit store down")

    limiter = limiter_for(rate_limit_login="1/minute")
    limiter.on_limited = broken
    await hit(limiter, "login", "a")
    with caplog.at_level(logging.ERROR, logger=ratelimit.__name__):
        await refused(limiter, "login", "a")
    assert [r.getMessage() for r in caplog.records] == ["the on_limited callback failed for rule login"]


# --- failing open -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; yields its port."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(10):
                await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()


def unavailable_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rate-limit storage unavailable" in r.getMessage()]


async def test_an_unreachable_redis_fails_open_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "STORAGE_RETRY_SECONDS", 0.2)
    limiter = limiter_for(redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit_login="1/minute")
    caplog.set_level(logging.WARNING, logger=ratelimit.__name__)
    started = time.monotonic()
    for _ in range(2):  # over the limit, had Redis answered: both served, unlimited
        scope = request()
        await limiter.enforce(scope, [(limiter.routes["login"], "a")])
        assert STATE_KEY not in scope.get("state", {})
    assert events(limiter).storage_failures == 1  # the second request did not even try
    assert time.monotonic() - started < 1.0

    await asyncio.sleep(0.25)  # past the retry pause: it tries (and fails) again, quietly
    await limiter.enforce(request(), [(limiter.routes["login"], "a")])
    assert events(limiter).storage_failures == 2
    assert events(limiter).rejections == {}
    warnings = unavailable_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "ConnectionError" in warnings[0]
    await limiter.close()


async def test_a_redis_that_never_answers_costs_at_most_the_timeout() -> None:
    async with silent_server() as port:
        limiter = limiter_for(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout=0.2)
        started = time.monotonic()
        scope = request()
        await limiter.enforce(scope, [(limiter.per_ip, "a"), (limiter.routes["login"], "a")])
        elapsed = time.monotonic() - started
        await limiter.close()
    # At least the timeout (it did wait for Redis), and nowhere near a hang, even on a loaded machine.
    assert 0.15 < elapsed < 2.0, elapsed
    assert STATE_KEY not in scope.get("state", {})
    assert events(limiter).storage_failures == 1


# --- a real Redis -----------------------------------------------------------------------------


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


async def test_limiters_on_one_redis_share_counters_and_on_limited_calls(redis_url: str) -> None:
    worker_1 = limiter_for(redis_url=redis_url, rate_limit_login="3/minute")
    worker_2 = limiter_for(redis_url=redis_url, rate_limit_login="3/minute")
    assert isinstance(worker_1.counters, RedisCounters)
    worker_1.on_limited = calls_1 = Calls()
    worker_2.on_limited = calls_2 = Calls()
    try:
        assert (await hit(worker_1, "login", "a")).remaining == 2
        assert (await hit(worker_2, "login", "a")).remaining == 1
        assert (await hit(worker_1, "login", "a")).remaining == 0
        error = await refused(worker_2, "login", "a")
        assert 1 <= int(error.headers["Retry-After"]) <= WINDOW
        await refused(worker_1, "login", "a")
        await refused(worker_2, "login", "a")
        assert (await hit(worker_2, "login", "b")).remaining == 2
    finally:
        await worker_1.close()
        await worker_2.close()
    assert calls_1.calls + calls_2.calls == [("198.51.100.7", "login")]  # once, across both workers
    assert (events(worker_1).rejections, events(worker_2).rejections) == ({"login": 1}, {"login": 2})
    assert events(worker_1).storage_failures == events(worker_2).storage_failures == 0


async def test_every_rule_of_a_request_is_one_round_trip_to_redis(redis_url: str) -> None:
    limiter = limiter_for(redis_url=redis_url, rate_limit_per_ip="100000000/minute", rate_limit_login="1000/minute")
    caller = Caller(user_id=uuid.uuid4(), session_id=uuid.uuid4())
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        await limiter.enforce(request(), [(limiter.per_ip, "warm")])  # loads the script once
        await client.config_resetstat()
        for _ in range(50):
            scope = request(caller=caller)
            await limiter.enforce(scope, limiter.checks(scope, "login", with_user=True))
        commands = await client.info("commandstats")
        size = await client.llen("ratelimit:" + limiter.per_ip.key("198.51.100.7"))
    finally:
        await client.aclose()
        await limiter.close()
    calls = {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in commands.items()}
    assert calls["evalsha"] == 50  # three rules a request, one script call each
    assert {name for name in calls if name != "evalsha"} <= {
        "config|resetstat",
        "time",
        "lindex",
        "llen",
        "lpush",
        "pexpire",
    }
    assert size == 50  # one time per request in the window, whatever the limit


async def test_a_refusal_stands_when_its_marker_cannot_be_written(redis_url: str) -> None:
    limiter = limiter_for(redis_url=redis_url, rate_limit_login="1/minute")
    limiter.on_limited = calls = Calls()
    client = Redis.from_url(redis_url)
    try:  # the marker's key holds a list: Redis answers INCRBY with WRONGTYPE
        await client.rpush("ratelimit:refused/" + limiter.routes["login"].key("a"), "x")
        await hit(limiter, "login", "a")
        error = await refused(limiter, "login", "a")
    finally:
        await client.aclose()
        await limiter.close()
    assert error.headers["RateLimit-Remaining"] == "0"
    assert calls.calls == []
    assert (events(limiter).rejections, events(limiter).storage_failures) == ({"login": 1}, 1)


async def test_the_per_user_rule_keys_by_user_id(redis_url: str) -> None:
    limiter = limiter_for(redis_url=redis_url, rate_limit_per_user="1/minute")
    caller = Caller(user_id=uuid.uuid4(), session_id=uuid.uuid4())
    try:
        await hit(limiter, "per_user", str(caller.user_id))
        await refused(limiter, "per_user", str(caller.user_id))
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            keys = [str(key) for key in await client.keys("*")]
        finally:
            await client.aclose()
    finally:
        await limiter.close()
    assert keys == [f"ratelimit:per_user/{caller.user_id}/1/60000"]


# --- building ---------------------------------------------------------------------------------


def test_disabled_limits_build_nothing() -> None:
    assert build_rate_limiter(settings(rate_limit_enabled=False, redis_url="redis://127.0.0.1:1/0")) is None


def test_memory_is_the_default_storage() -> None:
    limiter = limiter_for()
    assert isinstance(limiter.counters, MemoryCounters)
    assert (limiter.per_ip.limit, limiter.per_user.limit) == (1200, 600)
    assert {name: rule.limit for name, rule in limiter.routes.items()} == {"register": 5, "login": 10, "refresh": 30}


def test_limits_in_memory_do_not_load_redis_py() -> None:
    """redis-py and what it loads (its OpenTelemetry metrics, cryptography) held 8-10 MB of a worker for nothing."""
    program = (
        "from tests.factories import make_settings\n"
        "from todo_service.ratelimit.limiter import build_rate_limiter\n"
        "limiter = build_rate_limiter(make_settings('sqlite+aiosqlite:///:memory:', rate_limit_enabled=True))\n"
        "assert limiter is not None and limiter.failures == (TimeoutError, OSError)\n"
    )
    assert modules_loaded_by(program, "redis") == []


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "async+redis://127.0.0.1:6379", "unix:///run/redis.sock"])
def test_redis_urls(url: str) -> None:
    assert isinstance(limiter_for(redis_url=url).counters, RedisCounters)


def test_a_redis_url_of_another_scheme_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        build_rate_limiter(settings(redis_url="http://127.0.0.1:6379"))
