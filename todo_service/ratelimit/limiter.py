"""Rate limits: moving windows (the ``limits`` package) per client IP, per sensitive route and per user.

Where each rule runs (the app's middleware list, in ``create_app``, places them):

- :attr:`RateLimiter.before_authentication` goes *outside* the JWT middleware: the per-IP rule and
  the route rules (register, login, refresh; keyed by client IP) count every request, floods of
  bad tokens included;
- :attr:`RateLimiter.after_authentication` goes *inside* it: the per-user rule, keyed by the
  caller's user id;
- the limiter is a plugin: its ``on_app_init`` adds a ``before_send`` hook for the ``RateLimit-*``
  headers of the tightest rule (a hook, not a send wrapper: errors raised by middleware, a 401 or
  a 429, are sent past any wrapper); it inserts no middleware itself.

Both share one :class:`RateLimiter`: one storage, one set of counters. What applies to a route is
declared by the route, in its ``opt`` (:data:`~todo_service.core.request_context.RATE_LIMIT`): a
rule of its own (``register``, ``login``, ``refresh``), or none at all (health probes, the docs,
``/metrics``). Storage: memory (per process), or Redis when ``REDIS_URL`` is set
(shared by every worker). If Redis fails or takes longer than ``REDIS_TIMEOUT``, the request is
served unlimited (fail open): an optional limiter store must not take the whole API down with it,
and account lockout, in the database, keeps protecting logins. After a failure Redis is left alone
for ``STORAGE_RETRY_SECONDS`` (requests do not each wait for it); a warning is logged at most once
every ``WARNING_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from litestar.datastructures import MutableScopeHeaders
from litestar.plugins import InitPlugin
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from todo_service.core.errors import RateLimited
from todo_service.core.request_context import RATE_LIMIT, ClientAddress
from todo_service.core.settings import Settings, SettingsError
from todo_service.ratelimit.middleware import PerClientLimits, PerUserLimits

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.middleware import ASGIMiddleware
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
# REDIS_URL schemes (redis-py's) and the matching ``limits`` storage URIs.
_STORAGE_SCHEMES = {"redis": "async+redis://", "rediss": "async+rediss://", "unix": "async+redis+unix://"}


class _StorageDown(Exception):
    """The storage failed, timed out or is being left alone: serve the request unlimited."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule's answer for one request."""

    rule: str
    limit: int
    remaining: int
    reset_after: int  # seconds until the moving window frees a slot
    allowed: bool

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


class RateLimiter(InitPlugin):
    """The rules, their storage and their counters, shared by the two middlewares of one app; a plugin."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        pool: ConnectionPool | None = None,
        on_limited: OnLimited | None = None,
    ) -> None:
        self.storage = storage
        self.client_address = ClientAddress(settings.trusted_proxies)
        self.per_ip = parse(settings.rate_limit_per_ip)
        self.per_user = parse(settings.rate_limit_per_user)
        self.routes = {name: parse(getattr(settings, f"rate_limit_{name}")) for name in ROUTE_RULES}
        # Called the first time a key is refused within its window (not once per refused request).
        self.on_limited = on_limited
        self.on_rejected: Callable[[str], None] | None = None  # metrics: every refused request, by rule
        self.on_storage_failure: Callable[[], None] | None = None  # metrics: each storage call that failed
        self._strategy = MovingWindowRateLimiter(storage)
        self._pool = pool
        self._timeout = settings.redis_timeout if pool else None  # memory does no I/O: nothing to bound
        self._skip_until = 0.0
        self._next_warning = 0.0
        self._unreported = 0
        self._failing = False

    @property
    def before_authentication(self) -> ASGIMiddleware:
        """The per-IP rule and the route's own: listed outside authentication (floods of bad tokens count)."""
        return PerClientLimits(self)

    @property
    def after_authentication(self) -> ASGIMiddleware:
        """The per-user rule: listed inside authentication (it needs the caller)."""
        return PerUserLimits(self)

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
        if self._pool is not None:
            await self._pool.aclose()

    async def enforce(self, scope: Scope, checks: Sequence[tuple[str, RateLimitItem, str]]) -> None:
        """Count this request against each ``(rule, limit, identity)``; keep the tightest verdict.

        Raises:
            RateLimited: a rule is exhausted (with ``Retry-After`` and ``RateLimit-*``).
        """
        verdict = await self._check(scope, checks)
        if verdict is None:
            return
        state = scope.setdefault("state", {})
        known = state.get(STATE_KEY)
        if not isinstance(known, Verdict) or verdict.tightness < known.tightness:
            state[STATE_KEY] = verdict
        if not verdict.allowed:
            raise RateLimited(f"Too many requests: retry in {verdict.reset_after} s", headers=verdict.headers())

    async def add_headers(self, message: Message, scope: Scope) -> None:
        """``before_send`` hook: the tightest rule's ``RateLimit-*`` headers on the response."""
        if message["type"] != "http.response.start":
            return
        verdict = scope.get("state", {}).get(STATE_KEY)
        if isinstance(verdict, Verdict):
            message.setdefault("headers", [])
            headers = MutableScopeHeaders.from_message(message)
            for name, value in verdict.headers().items():
                headers[name] = value  # replaces: a 429 already carries them

    async def _check(self, scope: Scope, checks: Sequence[tuple[str, RateLimitItem, str]]) -> Verdict | None:
        """The tightest verdict of ``checks`` (stopping at a refusal), or None when the storage is down."""
        verdicts: list[Verdict] = []
        try:
            for rule, item, identity in checks:
                verdict = await self._hit(rule, item, identity)
                verdicts.append(verdict)
                if not verdict.allowed:
                    await self._refused(scope, verdict, item, identity)
                    break
        except _StorageDown:
            return None
        return min(verdicts, key=lambda v: v.tightness) if verdicts else None

    async def _hit(self, rule: str, item: RateLimitItem, identity: str) -> Verdict:
        allowed = await self._call(self._strategy.hit, item, rule, identity)
        stats = await self._call(self._strategy.get_window_stats, item, rule, identity)
        reset_after = max(0 if allowed else 1, math.ceil(stats.reset_time - time.time()))
        return Verdict(rule, item.amount, max(0, stats.remaining), reset_after, allowed)

    async def _refused(self, scope: Scope, verdict: Verdict, item: RateLimitItem, identity: str) -> None:
        if self.on_rejected is not None:
            self.on_rejected(verdict.rule)
        if self.on_limited is None:
            return
        # One marker per refused key, living until the window frees a slot: the first refusal
        # calls back, the rest of a flood does not. In Redis it is shared by every worker.
        marker = "refused/" + item.key_for(verdict.rule, identity)
        try:
            first = await self._call(self.storage.incr, marker, verdict.reset_after) == 1
        except _StorageDown:
            return
        if first:
            try:
                await self.on_limited(scope, verdict.rule)
            except Exception:
                logger.exception("the on_limited callback failed for rule %s", verdict.rule)

    async def _call(self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """One storage call, bounded by ``REDIS_TIMEOUT``; any failure opens the gate for a while."""
        if time.monotonic() < self._skip_until:
            raise _StorageDown
        try:
            async with asyncio.timeout(self._timeout):
                result = await function(*args, **kwargs)
        except (StorageError, TimeoutError, OSError) as exc:
            self._failed(exc)
            raise _StorageDown from exc
        if self._failing:
            self._failing = False
            logger.info("rate-limit storage answers again: rate limits apply")
        return result

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if self.on_storage_failure is not None:
            self.on_storage_failure()
        self._unreported += 1
        self._failing = True
        self._skip_until = now + STORAGE_RETRY_SECONDS
        if now >= self._next_warning:
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            logger.warning(
                "rate-limit storage unavailable (%s: %s): serving requests without rate limits "
                "(%d failed calls since the last warning)",
                type(cause).__name__,
                cause,
                self._unreported,
            )
            self._unreported = 0
            self._next_warning = now + WARNING_INTERVAL_SECONDS


def build_rate_limiter(settings: Settings, on_limited: OnLimited | None = None) -> RateLimiter | None:
    """The app's limiter, or None when ``RATE_LIMIT_ENABLED`` is false (then nothing is added)."""
    if not settings.rate_limit_enabled:
        return None
    if not settings.redis_url:
        return RateLimiter(settings, MemoryStorage(), on_limited=on_limited)
    url = settings.redis_url.removeprefix("async+")
    scheme, _, rest = url.partition("://")
    if scheme not in _STORAGE_SCHEMES:
        raise SettingsError("invalid setting REDIS_URL: expected redis://, rediss:// or unix://")
    # Our own pool, so short socket timeouts apply and shutdown can close it. One quick retry
    # replaces a connection that went stale (e.g. Redis restarted); asyncio.timeout bounds it all.
    pool = ConnectionPool.from_url(
        url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 1),
    )
    options: dict[str, Any] = {"connection_pool": pool}  # limits types its options too narrowly
    storage = RedisStorage(_STORAGE_SCHEMES[scheme] + rest, implementation="redispy", wrap_exceptions=True, **options)
    return RateLimiter(settings, storage, pool=pool, on_limited=on_limited)
