"""Prometheus metrics at ``/metrics`` (not rate limited, not in the OpenAPI schema).

No token by default (a scraper on the private network); with ``METRICS_TOKEN`` set, only requests
with ``Authorization: Bearer <METRICS_TOKEN>`` are answered (compared in constant time), the rest
get a 401 in the contract's error body. The service's own JWTs do not open it.

- HTTP: our own middleware, with the families and labels of Litestar's Prometheus middleware
  (``group_path=True``) at a fraction of its cost: the ``path`` label is the route *template*
  (``/api/v1/users/{user_id}/tasks/{task_id}``), never a raw path (litestar#4891).
  Requests that match no route (404, 405) never reach app middleware: a ``before_send`` hook counts
  them in one family labelled by status code only, so scanners cannot mint series either.
- The database pool (one per process, the engine's): checked-out connections, kept from its
  checkout/checkin events (a callback gauge cannot work in multiprocess mode), and its size.
- Rate-limit rejections by rule, rate-limit storage failures (Redis down: served unlimited),
  and audit events by event and outcome (login failures, lockouts, blocked logins, rate-limit
  hits, ...), counted by hooks where they happen.
- Dependencies: ``todo_dependency_up{dependency}``, 1 or 0 as the last readiness probe found it
  (database, redis); a Redis outage leaves the service ready but degraded, this says so.
- Build info (version, Python version) = 1.

With several workers, prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` must be
in the environment before the process starts (prometheus-client reads it when imported); each
worker writes its own files there, ``/metrics`` merges them, gauges count live workers only and a
worker removes its gauge files when it stops. The directory must be empty when the service starts.
"""

from __future__ import annotations

import hmac
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Request, get
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPlugin
from litestar.response import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event

from todo_service import __version__
from todo_service.core.errors import InvalidToken, NotAuthenticated
from todo_service.core.request_context import RATE_LIMIT
from todo_service.core.settings import Settings, SettingsError
from todo_service.observability.families import families, request_series
from todo_service.observability.traces import UNTRACED

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.config.app import AppConfig
    from litestar.handlers import HTTPRouteHandler
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    from todo_service.audit.log import AuditLog, Event, Outcome
    from todo_service.ratelimit.limiter import RateLimiter

__all__ = ("METRICS_PATH", "Metrics", "build_metrics", "watch_pool")

METRICS_PATH = "/metrics"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
SKIP_KEY = "skip_metrics"  # a handler ``opt`` key: the request middleware leaves it alone
_CHECKED_OUT = "todo_service.metrics.checked_out"  # marks a pool entry we counted as checked out


class _RequestMetrics:
    """Counts, times and tracks every request a route answered, by route template.

    The status is the one sent; for an error raised by the middleware inside this one (the JWT
    middleware's 401, the rate limiter's 429) it is the status the app's exception handler will
    answer, worked out by the same mapping (Litestar's own Prometheus middleware counted them as
    200, litestar#4747). The duration runs until the last body chunk is sent, or the error.
    """

    def __init__(self, app: ASGIApp, status_of: Callable[[Exception], int]) -> None:
        self.app = app
        self.status_of = status_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        if scope["type"] != ScopeType.HTTP or handler is None or handler.opt.get(SKIP_KEY):
            await self.app(scope, receive, send)
            return
        series = request_series()
        method, path = scope["method"], scope["path_template"]
        started = time.perf_counter()
        status = 200
        duration = 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        running = series.running(method, path)
        running.inc()
        try:
            await self.app(scope, receive, timed_send)
        except Exception as exc:
            if not duration:  # no body sent yet: the app's exception handler (outside) answers for it
                status, duration = self.status_of(exc), time.perf_counter() - started
            raise
        finally:
            running.dec()
            requests, durations, errors = series.finished(method, path, status)
            if errors is not None:
                errors.inc()
            requests.inc()
            durations.observe(duration)


class MetricsTokenInvalid(InvalidToken):
    """A bearer token was sent to ``/metrics``, but not ``METRICS_TOKEN``."""

    default_detail = "The metrics token is invalid"


def _check_bearer(request: Request[Any, Any, Any], token: bytes) -> None:
    """Let the request through only with ``Authorization: Bearer <token>`` (constant-time comparison).

    Raises:
        NotAuthenticated: no bearer token was sent.
        MetricsTokenInvalid: another one was.
    """
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise NotAuthenticated("Authentication required: send 'Authorization: Bearer <METRICS_TOKEN>'")
    if not hmac.compare_digest(credentials.strip().encode(), token):
        raise MetricsTokenInvalid


def _pool_checkout(_: DBAPIConnection, entry: ConnectionPoolEntry, __: PoolProxiedConnection) -> None:
    if entry.record_info is not None:  # always, in SQLAlchemy's pools
        entry.record_info[_CHECKED_OUT] = True  # survives invalidation, unlike ``entry.info``
        families().pool_checked_out.inc()


def _pool_return(_: DBAPIConnection | None, entry: ConnectionPoolEntry) -> None:
    # A failed reconnect returns an entry that was never handed out: only count what we counted.
    if entry.record_info is not None and entry.record_info.pop(_CHECKED_OUT, False):
        families().pool_checked_out.dec()


def watch_pool(engine: AsyncEngine) -> None:
    """Keep ``todo_db_pool_checked_out`` from the engine's pool events (they survive ``dispose()``)."""
    event.listen(engine.sync_engine, "checkout", _pool_checkout)
    event.listen(engine.sync_engine, "checkin", _pool_return)
    event.listen(engine.sync_engine, "detach", _pool_return)  # a detached connection is closed, not checked in


def multiprocess_dir(settings: Settings) -> str | None:
    """The directory of multiprocess mode, checked; None when metrics stay in this process's memory.

    Raises:
        SettingsError: ``PROMETHEUS_MULTIPROC_DIR`` is not a writable directory, or is not where
            prometheus-client can see it (only in ``.env``, or set after it was imported).
    """
    directory = os.environ.get(MULTIPROC_VARIABLE)
    active = bool(getattr(values.ValueClass, "_multiprocess", False))  # what prometheus-client chose at import
    if settings.prometheus_multiproc_dir is not None and settings.prometheus_multiproc_dir != directory:
        msg = f"invalid setting {MULTIPROC_VARIABLE}: must be in the process environment (not only in .env)"
        raise SettingsError(msg)
    if directory is None and not active:
        return None
    if not directory or not Path(directory).is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        msg = f"invalid setting {MULTIPROC_VARIABLE}: {directory!r} is not an existing, writable directory"
        raise SettingsError(msg)
    if not active:
        msg = f"invalid setting {MULTIPROC_VARIABLE}: set after prometheus-client was imported; set it before start"
        raise SettingsError(msg)
    return directory


class Metrics(InitPlugin):
    """Everything metrics add to one app, as a plugin; see the module docstring.

    Its middleware (:attr:`middleware`) is not inserted by the plugin: ``create_app`` lists it.
    """

    def __init__(self, settings: Settings, engine: AsyncEngine, status_of: Callable[[Exception], int]) -> None:
        self.directory = multiprocess_dir(settings)
        self.status_of = status_of  # the status the app's exception handler answers an exception with
        self.engine = engine
        self.token = settings.metrics_token.encode() if settings.metrics_token else None
        self._pool_size = 0

    @property
    def middleware(self) -> DefineMiddleware:
        """The request metrics: listed outside the rate limits and authentication, to count their 429s and 401s."""
        return DefineMiddleware(_RequestMetrics, status_of=self.status_of)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """The ``/metrics`` route, the unmatched-request count, the pool gauge."""
        app_config.route_handlers.append(self._endpoint())
        app_config.before_send.append(self._count_unmatched)
        app_config.on_startup.append(self._started)
        app_config.on_shutdown.append(self._stopped)  # after the engine's disposal: the last word
        return app_config

    def count_audit_event(self, event: Event, outcome: Outcome) -> None:
        """``AuditLog.on_record``: every recorded event, whether or not its row is written."""
        families().audit_events.labels(event.value, outcome.value).inc()

    def count_rejection(self, rule: str) -> None:
        """``RateLimiter.on_rejected``: every refused request, by the rule that refused it."""
        families().rate_limit_rejections.labels(rule).inc()

    def count_storage_failure(self) -> None:
        """``RateLimiter.on_storage_failure``: a limiter storage call that failed or timed out (served unlimited)."""
        families().rate_limit_storage_failures.inc()

    def dependency_outcome(self, dependency: str, up: bool) -> None:  # noqa: FBT001  (the probe's callback)
        """``ReadinessProbe.on_outcome``: each dependency's state, as the last probe found it."""
        families().dependency_up.labels(dependency).set(1 if up else 0)

    def _endpoint(self) -> HTTPRouteHandler:
        registry: CollectorRegistry = REGISTRY
        if self.directory is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]

        token = self.token

        def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
            """The Prometheus text format, merged over every worker in multiprocess mode."""
            if token is not None:
                _check_bearer(request, token)
            return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        options = {"exclude_from_auth": True, SKIP_KEY: True, RATE_LIMIT: False, UNTRACED: True}
        return get(METRICS_PATH, include_in_schema=False, sync_to_thread=True, opt=options)(metrics)

    async def _count_unmatched(self, message: Message, scope: Scope) -> None:
        # The router sets ``path_template`` when a route matches; app middleware ran for those.
        if message["type"] == "http.response.start" and scope.get("path_template") is None:
            families().unmatched_requests.labels(message["status"]).inc()

    async def _started(self) -> None:
        metrics = families()
        metrics.build_info.labels(__version__, platform.python_version()).set(1)
        size = getattr(self.engine.sync_engine.pool, "size", None)
        self._pool_size = size() if callable(size) else 0
        metrics.pool_size.inc(self._pool_size)

    async def _stopped(self) -> None:
        families().pool_size.dec(self._pool_size)
        if self.directory is not None:  # drop this worker's gauges (livesum, livemax) from the merge
            multiprocess.mark_process_dead(os.getpid(), self.directory)  # type: ignore[no-untyped-call]


def build_metrics(
    settings: Settings,
    engine: AsyncEngine,
    audit_log: AuditLog,
    rate_limiter: RateLimiter | None,
    status_of: Callable[[Exception], int],
) -> Metrics | None:
    """The app's metrics, hooked into the audit log, the rate limiter and the engine's pool.

    None when ``METRICS_ENABLED`` is false: then nothing is added or hooked.

    Raises:
        SettingsError: see :func:`multiprocess_dir`.
    """
    if not settings.metrics_enabled:
        return None
    metrics = Metrics(settings, engine, status_of)
    watch_pool(engine)
    audit_log.on_record = metrics.count_audit_event
    if rate_limiter is not None:
        rate_limiter.on_rejected = metrics.count_rejection
        rate_limiter.on_storage_failure = metrics.count_storage_failure
    return metrics
