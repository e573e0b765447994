"""The limiter's CPU per request in process: the ``limits`` package's moving window against ours (ADR 0005).

Run: ``taskset -c 1 uv run --frozen python bench/limiter.py``. Two rules per request (per IP and
per user), each key first filled with ``fill`` requests, then CPU time over 2,000 requests. Then our
counters in the steady state (on a hand-moved clock): 1,000 times in each key, one leaving per request.
"""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from todo_service.ratelimit.counters import MemoryCounters, Rule

REQUESTS = 2000
CASES = (("1200/minute", 0), ("1200/minute", 1000), ("100000000/minute", 10000), ("100000000/minute", 50000))


async def with_limits(item: RateLimitItem, fill: int) -> float:
    """µs of CPU per request: ``hit`` and ``get_window_stats`` per rule, as the service did before."""
    strategy = MovingWindowRateLimiter(MemoryStorage())
    for _ in range(fill):
        await strategy.hit(item, "per_ip", "a")
    started = time.process_time()
    for _ in range(REQUESTS):
        for name in ("per_ip", "per_user"):
            await strategy.hit(item, name, "a")
            await strategy.get_window_stats(item, name, "a")
    return (time.process_time() - started) / REQUESTS * 1e6


async def with_counters(item: RateLimitItem, fill: int) -> float:
    """µs of CPU per request: both rules in one step."""
    counters = MemoryCounters()
    per_ip = Rule("per_ip", item.amount, item.get_expiry() * 1000)
    per_user = Rule("per_user", item.amount, item.get_expiry() * 1000)
    for _ in range(fill):
        await counters.hit([(per_ip, "a")])
    started = time.process_time()
    for _ in range(REQUESTS):
        await counters.hit([(per_ip, "a"), (per_user, "a")])
    return (time.process_time() - started) / REQUESTS * 1e6


async def steady_state() -> float:
    """µs of CPU per request: 1200/minute and 600/minute, a request every 60 ms, so one time leaves each key."""
    clock = [10**9]
    counters = MemoryCounters(lambda: clock[0])
    checks = [(Rule("per_ip", 1200, 60_000), "a"), (Rule("per_user", 600, 60_000), "a")]
    for _ in range(1000):
        clock[0] += 60
        await counters.hit(checks)
    started = time.process_time()
    for _ in range(REQUESTS * 10):
        clock[0] += 60
        await counters.hit(checks)
    return (time.process_time() - started) / (REQUESTS * 10) * 1e6


async def main() -> None:
    """Print one line per case."""
    for text, fill in CASES:
        item = parse(text)
        before, after = await with_limits(item, fill), await with_counters(item, fill)
        print(f"{text:>18}, {fill:>6} in the key: limits {before:6.1f} µs/request, counters {after:5.1f} µs/request")
    print(f"steady state, 1000 in each key, one leaving per request: counters {await steady_state():5.1f} µs/request")


if __name__ == "__main__":
    asyncio.run(main())
