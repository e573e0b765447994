"""Moving-window counters: every rule of a request checked and counted in one step, in memory or in Redis.

A rule is ``limit`` requests per ``window``: a request is allowed when fewer than ``limit``
requests were counted in the ``window`` before it (the contract's moving window, exact). Each key
keeps the times of the requests it counted, oldest first; a check first drops the ones that left
the window (from the old end, so each time is dropped once), then reads the count and the
oldest. So a check costs the same for a limit of 5 and of 100,000,000 (amortised: every request is
added once and dropped once), where the ``limits`` package's moving window walked its list of up
to ``limit`` entries on every hit (ADR 0005 has the figures). In memory a time is 8 bytes in an
``array('q')``, not an int object and its pointer in a deque (40 bytes): a worker serving 1,000
clients keeps 150,000 times or more (ADR 0005, docs/performance.md "Memory").

All the rules of a request are decided together: either every one has room and every one is
counted, or the first that has none refuses the request and nothing is counted (a refusal spends
no slot). In Redis that is one Lua script, so one round trip per request whatever the number of
rules, and Redis's clock decides (replicas may disagree on the time; Redis does not).
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.asyncio import Redis

__all__ = ("Counted", "Counters", "MemoryCounters", "RedisCounters", "Rule", "Window")


@dataclass(frozen=True, slots=True)
class Rule:
    """``limit`` requests per ``window_ms`` milliseconds, named ``name`` (the setting's name)."""

    name: str
    limit: int
    window_ms: int

    def key(self, identity: str) -> str:
        """The counter's key: a changed limit or window starts new counts."""
        return f"{self.name}/{identity}/{self.limit}/{self.window_ms}"


@dataclass(frozen=True, slots=True)
class Counted:
    """One rule's window as the request found it: how many it held, and how old the oldest was."""

    rule: Rule
    count: int  # requests counted in the window before this one
    oldest_age_ms: int  # age of the oldest of them (0 when there was none)

    @property
    def allowed(self) -> bool:
        """Room for this request."""
        return self.count < self.rule.limit

    def remaining(self, *, counted: bool) -> int:
        """Requests still allowed now, after this one when it was ``counted``."""
        return max(0, self.rule.limit - self.count - counted)

    def reset_after(self) -> int:
        """Seconds until the oldest request leaves the window (and frees its slot), rounded up."""
        wait_ms = self.rule.window_ms - (self.oldest_age_ms if self.count else 0)
        return max(1, -(-wait_ms // 1000))


class Counters(Protocol):
    """Where the counts live: one process's memory, or Redis shared by every worker and replica."""

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> list[Counted]:
        """Decide ``(rule, identity)`` pairs together; count them all when every one has room."""
        ...

    async def first_refusal(self, key: str, expires_in: int) -> bool:
        """True the first time ``key`` is refused within ``expires_in`` seconds (across workers with Redis)."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class Window:
    """One key's request times (ms, oldest first) from ``start`` on; the ones before ``start`` have left.

    :meth:`MemoryCounters.hit` reads and moves ``start`` itself (a method call per rule cost a tenth
    of the limiter's time); the dropped times go from the array once they are half of it.
    """

    __slots__ = ("start", "times", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.times = array("q")  # 8 bytes a request; a deque of ints held 40
        self.start = 0
        self.window_ms = window_ms

    def __len__(self) -> int:
        """Requests counted and still in the window (as of the last check)."""
        return len(self.times) - self.start

    def compact(self) -> None:
        """Forget the dropped times (amortised O(1): called once they are half the array)."""
        del self.times[: self.start]  # array shrinks its buffer with it
        self.start = 0


def monotonic_ms() -> int:
    """Milliseconds of the monotonic clock."""
    return time.monotonic_ns() // 1_000_000


class MemoryCounters:
    """Counts in this process's memory: a :class:`Window` per key; idle keys swept once a minute."""

    SWEEP_EVERY_MS = 60_000

    def __init__(self, clock: Callable[[], int] = monotonic_ms) -> None:
        self.clock = clock  # ms; tests pass their own
        self.windows: dict[str, Window] = {}
        self.refusals: dict[str, int] = {}  # marker key -> expiry (ms)
        self.next_sweep = 0

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> list[Counted]:
        """Decide and count synchronously: nothing else runs in between on the event loop."""
        now = self.clock()
        if now >= self.next_sweep:
            self.sweep(now)
        found: list[tuple[Counted, Window]] = []
        for rule, identity in checks:
            key = rule.key(identity)
            if (window := self.windows.get(key)) is None:
                window = self.windows[key] = Window(rule.window_ms)
            times, start, end, horizon = window.times, window.start, len(window.times), now - rule.window_ms
            if start < end and times[start] <= horizon:  # some left: each time is stepped over once
                start += 1
                while start < end and times[start] <= horizon:
                    start += 1
                window.start = start
            count = end - start
            found.append((Counted(rule, count, now - times[start] if count else 0), window))
            if count >= rule.limit:
                break
        else:
            for _, window in found:
                if window.start and window.start * 2 >= len(window.times):
                    window.compact()
                window.times.append(now)
        return [counted for counted, _ in found]

    def sweep(self, now: int) -> None:
        """Forget keys whose every request has left the window, and expired refusal markers."""
        self.windows = {
            key: window
            for key, window in self.windows.items()
            if window.times and window.times[-1] > now - window.window_ms
        }
        self.refusals = {key: expiry for key, expiry in self.refusals.items() if expiry > now}
        self.next_sweep = now + self.SWEEP_EVERY_MS

    async def first_refusal(self, key: str, expires_in: int) -> bool:
        """True unless ``key`` was marked less than its expiry ago."""
        now = self.clock()
        if self.refusals.get(key, 0) > now:
            return False
        self.refusals[key] = now + expires_in * 1000
        return True

    async def ping(self) -> bool:
        """Memory always answers."""
        return True

    async def close(self) -> None:
        """Nothing to release."""


# KEYS: one list of request times (ms, newest first) per (rule, identity). ARGV: limit and window
# (ms) per key, in the same order. Returns {allowed, then count and oldest age per key checked};
# adds the time to every key only when all have room.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = {}
local allowed = 1
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local horizon = now - tonumber(ARGV[2 * i])
  local oldest = redis.call('LINDEX', KEYS[i], -1)
  while oldest and tonumber(oldest) <= horizon do
    redis.call('RPOP', KEYS[i])
    oldest = redis.call('LINDEX', KEYS[i], -1)
  end
  local count = redis.call('LLEN', KEYS[i])
  found[#found + 1] = count
  found[#found + 1] = oldest and (now - tonumber(oldest)) or 0
  if count >= limit then
    allowed = 0
    break
  end
end
if allowed == 1 then
  for i = 1, #KEYS do
    redis.call('LPUSH', KEYS[i], now)
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  end
end
table.insert(found, 1, allowed)
return found
"""

_FIRST = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisCounters:
    """Counts in Redis, shared by every worker and replica: one script call per request."""

    PREFIX = "ratelimit:"

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.hit_script = client.register_script(_HIT)
        self.first_script = client.register_script(_FIRST)

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> list[Counted]:
        """One EVALSHA for every rule of the request."""
        keys = [self.PREFIX + rule.key(identity) for rule, identity in checks]
        arguments: list[int] = []
        for rule, _ in checks:
            arguments += (rule.limit, rule.window_ms)
        answer = await self.hit_script(keys=keys, args=arguments)
        figures = [int(value) for value in answer[1:]]
        return [
            Counted(rule, figures[2 * i], figures[2 * i + 1]) for i, (rule, _) in enumerate(checks[: len(figures) // 2])
        ]

    async def first_refusal(self, key: str, expires_in: int) -> bool:
        """INCR with an expiry: 1 means first."""
        return int(await self.first_script(keys=[self.PREFIX + "refused/" + key], args=[expires_in])) == 1

    async def ping(self) -> bool:
        """PING."""
        return bool(await self.client.ping())

    async def close(self) -> None:
        """Close the client and its pool."""
        await self.client.aclose(close_connection_pool=True)
