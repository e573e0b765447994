"""Moving-window counters: every rule of a request checked and counted in one step, in memory or in Redis.

A rule is ``limit`` requests per ``window``: a request is allowed when fewer than ``limit``
requests were counted in the ``window`` before it (the contract's moving window, exact). Each key
keeps the times of the requests it counted, oldest last; a check first drops the ones that left
the window (from the old end, so each time is dropped once), then reads the count and the
oldest. So a check costs the same for a limit of 5 and of 100,000,000 (amortised: every request is
added once and dropped once), where the ``limits`` package's moving window walked its list of up
to ``limit`` entries on every hit (ADR 0005 has the figures).

All the rules of a request are decided together: either every one has room and every one is
counted, or the first that has none refuses the request and nothing is counted (a refusal spends
no slot). In Redis that is one Lua script, so one round trip per request whatever the number of
rules, and Redis's clock decides (replicas may disagree on the time; Redis does not).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis

__all__ = ("Counted", "Counters", "MemoryCounters", "RedisCounters", "Rule")


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


class MemoryCounters:
    """Counts in this process's memory: a deque of request times per key; idle keys swept once a minute."""

    SWEEP_EVERY_MS = 60_000

    def __init__(self) -> None:
        self.windows: dict[str, tuple[deque[int], int]] = {}  # key -> (times, newest first; window ms)
        self.refusals: dict[str, int] = {}  # marker key -> expiry (ms)
        self.next_sweep = 0

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> list[Counted]:
        """Decide and count synchronously: nothing else runs in between on the event loop."""
        now = time.monotonic_ns() // 1_000_000
        if now >= self.next_sweep:
            self.sweep(now)
        found: list[tuple[Counted, deque[int]]] = []
        for rule, identity in checks:
            key = rule.key(identity)
            if (entry := self.windows.get(key)) is None:
                entry = self.windows[key] = (deque(), rule.window_ms)
            times = entry[0]
            horizon = now - rule.window_ms
            while times and times[-1] <= horizon:
                times.pop()
            counted = Counted(rule, len(times), now - times[-1] if times else 0)
            found.append((counted, times))
            if not counted.allowed:
                break
        else:
            for _, times in found:
                times.appendleft(now)
        return [counted for counted, _ in found]

    def sweep(self, now: int) -> None:
        """Forget keys whose every request has left the window, and expired refusal markers."""
        self.windows = {key: entry for key, entry in self.windows.items() if entry[0] and entry[0][0] > now - entry[1]}
        self.refusals = {key: expiry for key, expiry in self.refusals.items() if expiry > now}
        self.next_sweep = now + self.SWEEP_EVERY_MS

    async def first_refusal(self, key: str, expires_in: int) -> bool:
        """True unless ``key`` was marked less than its expiry ago."""
        now = time.monotonic_ns() // 1_000_000
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
