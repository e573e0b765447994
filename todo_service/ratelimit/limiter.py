"""Rate limits per client IP, per sensitive route and per user: sliding-window counters, memory or Redis.

Where the rules run (the app's middleware list, in ``create_app``, places the two middlewares):

- :attr:`RateLimiter.middleware` goes *inside* the JWT middleware: it checks every rule that
  applies to the request in one step, the route's own (register, login, refresh; keyed by client
  IP), the per-IP rule and, when a valid token came, the per-user rule: one storage call, so one
  Redis round trip per request at most (``counters.py``);
- :attr:`RateLimiter.refused_callers` goes *outside* it and does nothing until authentication
  refuses a request (a 401 never reaches the inner middleware): then it counts that request
  against the per-IP rule, so floods of bad tokens are limited too;
- the limiter is a plugin: its ``on_app_init`` adds a ``before_send`` hook for the ``RateLimit-*``
  headers of the tightest rule (a hook, not a send wrapper: errors raised by middleware, a 401 or
  a 429, are sent past any wrapper); it inserts no middleware itself.

What applies to a route is declared by the route, in its ``opt``
(:data:`~todo_service.core.request_context.RATE_LIMIT`): a rule of its own (``register``,
``login``, ``refresh``), or none at all (health probes, the docs, ``/metrics``): such a request
costs the limiter nothing. Rules are written as the ``limits`` package parses them ("10/minute").
Storage: memory (per process), or Redis when ``REDIS_URL`` is set (shared by every worker). If
Redis fails or takes longer than ``REDIS_TIMEOUT``, the request is served unlimited (fail open): an
optional limiter store must not take the whole API down with it, and account lockout, in the
database, keeps protecting logins. After a failure Redis is left alone for
``STORAGE_RETRY_SECONDS`` (requests do not each wait for it); a warning is logged at most once
every ``WARNING_INTERVAL_SECONDS``.

(Just over 300 lines: the rules, their one storage call and the headers they answer belong together.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from limits import parse
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPlugin

from todo_service.core.errors import RateLimited
from todo_service.core.request_context import RATE_LIMIT, ClientAddress
from todo_service.core.settings import Settings, SettingsError
from todo_service.ratelimit.counters import Counted, Counters, MemoryCounters, RedisCounters, Rule
from todo_service.ratelimit.middleware import RateLimits, RefusedCallers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import Message, Scope

    OnLimited = Callable[[Scope, str], Awaitable[None]]

__all__ = ("STATE_KEY", "RateLimiter", "Verdict", "build_rate_limiter")

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

STATE_KEY = "rate_limiter"  # the limiter in ``app.state``, and the request's verdict in ``scope["state"]``
# The rules a route may declare as its own (``opt={RATE_LIMIT: "login"}``): each is a setting,
# RATE_LIMIT_<NAME>, counted per client IP.
ROUTE_RULES = ("register", "login", "refresh")
STORAGE_RETRY_SECONDS = 1.0
WARNING_INTERVAL_SECONDS = 60.0
REDIS_SCHEMES = ("redis", "rediss", "unix")


class StorageDown(Exception):
    """The storage failed, timed out or is being left alone: serve the request unlimited."""


def rule(name: str, text: str) -> Rule:
    """The setting ``text`` ("10/minute", as ``limits`` parses it) as a rule named ``name``."""
    item = parse(text)
    return Rule(name, item.amount, item.get_expiry() * 1000)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule's answer for one request."""

    rule: str
    limit: int
    remaining: int
    reset_after: int  # seconds until the window frees a slot (refused) or rolls over (allowed)
    allowed: bool

    @classmethod
    def of(cls, counted: Counted) -> Verdict:
        """The verdict of one rule's counts (counted when allowed)."""
        allowed = counted.allowed
        remaining = counted.remaining(counted=allowed)
        return cls(counted.rule.name, counted.rule.limit, remaining, counted.reset_after(), allowed)

    @property
    def tightness(self) -> tuple[bool, int, int]:
        """Smaller is tighter: refused first, then fewest requests left, then the longest wait."""
        return self.allowed, self.remaining, -self.reset_after

    def headers(self) -> dict[str, str]:
        """The ``RateLimit-*`` headers (and ``Retry-After`` when refused)."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after)
        return headers

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as an ASGI message carries them (lower-case names, bytes)."""
        return [(name.lower().encode(), value.encode()) for name, value in self.headers().items()]


class RateLimiter(InitPlugin):
    """The rules and their counters, shared by the two middlewares of one app; a plugin."""

    def __init__(
        self,
        settings: Settings,
        counters: Counters,
        *,
        remote: bool = False,
        on_limited: OnLimited | None = None,
    ) -> None:
        self.counters = counters
        self.client_address = ClientAddress(settings.trusted_proxies)
        self.per_ip = rule("per_ip", settings.rate_limit_per_ip)
        self.per_user = rule("per_user", settings.rate_limit_per_user)
        self.routes = {name: rule(name, getattr(settings, f"rate_limit_{name}")) for name in ROUTE_RULES}
        # Called the first time a key is refused within its window (not once per refused request).
        self.on_limited = on_limited
        self.on_rejected: Callable[[str], None] | None = None  # metrics: every refused request, by rule
        self.on_storage_failure: Callable[[], None] | None = None  # metrics: each storage call that failed
        self.timeout = settings.redis_timeout if remote else None  # memory does no I/O: nothing to bound
        self.failures: tuple[type[Exception], ...] = (TimeoutError, OSError)  # what fails open
        if remote:
            from redis.exceptions import RedisError  # noqa: PLC0415  (redis-py only with REDIS_URL: see build_rate_limiter)

            self.failures = (RedisError, TimeoutError, OSError)
        self.skip_until = 0.0
        self.next_warning = 0.0
        self.unreported = 0
        self.failing = False

    @property
    def middleware(self) -> DefineMiddleware:
        """Every rule of the request in one check: listed inside authentication (it needs the caller)."""
        return DefineMiddleware(RateLimits, limiter=self)

    @property
    def refused_callers(self) -> DefineMiddleware:
        """The per-IP rule for requests authentication refuses: listed outside it (bad tokens count)."""
        return DefineMiddleware(RefusedCallers, limiter=self)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """The ``RateLimit-*`` headers, the route check at start, the storage's close."""
        app_config.before_send.append(self.add_headers)
        app_config.on_startup.append(self.check_routes)
        app_config.on_shutdown.append(self.close)
        app_config.state[STATE_KEY] = self
        return app_config

    def check_routes(self, app: Litestar) -> None:
        """At start: every rule a route declares exists (a typo would otherwise be a 500 per request).

        Raises:
            ValueError: a route declares a rule that no setting defines.
        """
        for route in app.routes:
            for handler in getattr(route, "route_handlers", ()):
                declared = handler.opt.get(RATE_LIMIT)
                if isinstance(declared, str) and declared not in self.routes:
                    msg = f"{route.path} declares the rate-limit rule {declared!r}; known: {', '.join(ROUTE_RULES)}"
                    raise ValueError(msg)

    async def close(self) -> None:
        """Close the Redis connections (at app shutdown)."""
        await self.counters.close()

    async def ping(self) -> None:
        """Readiness: the storage answers.

        Raises:
            ConnectionError: it does not.
        """
        if not await self.counters.ping():
            raise ConnectionError

    def checks(self, scope: Scope, declared: str | None, *, with_user: bool) -> list[tuple[Rule, str]]:
        """The ``(rule, identity)`` pairs that apply: the route's own first (tighter), per IP, per user."""
        ip = self.client_address.of(scope)
        checks = [(self.per_ip, ip)]
        if declared is not None:
            checks.insert(0, (self.routes[declared], ip))
        if with_user and (user_id := getattr(scope.get("user"), "user_id", None)) is not None:
            checks.append((self.per_user, str(user_id)))
        return checks

    async def enforce(self, scope: Scope, checks: Sequence[tuple[Rule, str]]) -> None:
        """Count this request against every ``(rule, identity)`` at once; keep the tightest verdict.

        Raises:
            RateLimited: a rule is exhausted (with ``Retry-After`` and ``RateLimit-*``).
        """
        try:
            counts = await self.call(self.counters.hit, checks)
        except StorageDown:
            return
        verdicts = [Verdict.of(counted) for counted in counts]
        verdict = min(verdicts, key=lambda v: v.tightness)
        state = scope.setdefault("state", {})
        known = state.get(STATE_KEY)
        if not isinstance(known, Verdict) or verdict.tightness < known.tightness:
            state[STATE_KEY] = verdict
        if not verdict.allowed:
            refused_rule, identity = checks[len(counts) - 1]  # counting stops at the rule that refused
            await self.refused(scope, verdict, refused_rule.key(identity))
            raise RateLimited(f"Too many requests: retry in {verdict.reset_after} s", headers=verdict.headers())

    async def add_headers(self, message: Message, scope: Scope) -> None:
        """``before_send`` hook: the tightest rule's ``RateLimit-*`` headers on the response."""
        if message["type"] != "http.response.start":
            return
        verdict = scope.get("state", {}).get(STATE_KEY)
        if isinstance(verdict, Verdict):
            # On the raw list: a 429 already carries them (they replace those), nothing else sets them.
            added = verdict.raw_headers()
            names = {name for name, _ in added}
            headers = [header for header in message.get("headers", ()) if header[0].lower() not in names]
            message["headers"] = [*headers, *added]

    async def refused(self, scope: Scope, verdict: Verdict, key: str) -> None:
        """Count the refusal; call ``on_limited`` for the first one of a key within its window."""
        if self.on_rejected is not None:
            self.on_rejected(verdict.rule)
        if self.on_limited is None:
            return
        # One marker per refused key, living until the window frees a slot: the first refusal
        # calls back, the rest of a flood does not. In Redis it is shared by every worker.
        try:
            first = await self.call(self.counters.first_refusal, key, verdict.reset_after)
        except StorageDown:
            return
        if first:
            try:
                await self.on_limited(scope, verdict.rule)
            except Exception:
                logger.exception("the on_limited callback failed for rule %s", verdict.rule)

    async def call(self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """One storage call, bounded by ``REDIS_TIMEOUT``; any failure opens the gate for a while.

        Raises:
            StorageDown: the storage failed, timed out, or is being left alone after a failure.
        """
        if self.skip_until and time.monotonic() < self.skip_until:
            raise StorageDown
        try:
            if self.timeout is None:
                result = await function(*args, **kwargs)
            else:
                async with asyncio.timeout(self.timeout):
                    result = await function(*args, **kwargs)
        except self.failures as exc:
            self.failed(exc)
            raise StorageDown from exc
        if self.failing:
            self.failing = False
            logger.info("rate-limit storage answers again: rate limits apply")
        return result

    def failed(self, exc: Exception) -> None:
        """Leave the storage alone for a while; warn at most once every ``WARNING_INTERVAL_SECONDS``."""
        now = time.monotonic()
        if self.on_storage_failure is not None:
            self.on_storage_failure()
        self.unreported += 1
        self.failing = True
        self.skip_until = now + STORAGE_RETRY_SECONDS
        if now >= self.next_warning:
            logger.warning(
                "rate-limit storage unavailable (%s: %s): serving requests without rate limits "
                "(%d failed calls since the last warning)",
                type(exc).__name__,
                exc,
                self.unreported,
            )
            self.unreported = 0
            self.next_warning = now + WARNING_INTERVAL_SECONDS


def build_rate_limiter(settings: Settings, on_limited: OnLimited | None = None) -> RateLimiter | None:
    """The app's limiter, or None when ``RATE_LIMIT_ENABLED`` is false (then nothing is added)."""
    if not settings.rate_limit_enabled:
        return None
    if not settings.redis_url:
        return RateLimiter(settings, MemoryCounters(), on_limited=on_limited)
    # redis-py is imported only here: loaded for nothing it held 8-10 MB of every worker (docs/performance.md).
    from redis.asyncio import ConnectionPool, Redis  # noqa: PLC0415
    from redis.asyncio.retry import Retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    url = settings.redis_url.removeprefix("async+")
    scheme = url.partition("://")[0]
    if scheme not in REDIS_SCHEMES:
        raise SettingsError("invalid setting REDIS_URL: expected redis://, rediss:// or unix://")
    # Our own pool, so short socket timeouts apply and shutdown can close it. One quick retry
    # replaces a connection that went stale (e.g. Redis restarted); asyncio.timeout bounds it all.
    pool = ConnectionPool.from_url(
        url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 1),
    )
    return RateLimiter(settings, RedisCounters(Redis(connection_pool=pool)), remote=True, on_limited=on_limited)
