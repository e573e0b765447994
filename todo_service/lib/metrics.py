"""Prometheus metrics at ``/metrics`` (no token, not rate limited, not in the OpenAPI schema).

- HTTP: Litestar's Prometheus middleware with ``group_path=True``: the ``path`` label is the route
  *template* (``/api/v1/users/{user_id}/tasks/{task_id}``), never a raw path (litestar#4891).
  Requests that match no route (404, 405) never reach app middleware: a ``before_send`` hook counts
  them in one family labelled by status code only, so scanners cannot mint series either.
- Database pool: checked-out connections, kept from the engine's pool checkout/checkin events (a
  callback gauge cannot work in multiprocess mode), and the pool's size.
- Rate-limit rejections by rule and audit events by event and outcome (login failures, lockouts,
  blocked logins, rate-limit hits, ...), counted by hooks where they happen.
- Build info (version, Python version) = 1.

With several workers, prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` must be
in the environment before the process starts (prometheus-client reads it when imported); each
worker writes its own files there, ``/metrics`` merges them, gauges count live workers only and a
worker removes its gauge files when it stops. The directory must be empty when the service starts.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import get
from litestar._asgi.utils import wrap_in_exception_handler  # what Litestar wraps its own layers in
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.response import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event

from todo_service import __version__
from todo_service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.handlers import HTTPRouteHandler
    from litestar.types import ASGIApp, Message, Scope
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    from todo_service.lib.audit import AuditLog, Event, Outcome
    from todo_service.lib.ratelimit import RateLimiter

__all__ = ("METRICS_PATH", "Metrics", "build_metrics", "watch_pool")

METRICS_PATH = "/metrics"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "todo"
SKIP_KEY = "skip_metrics"  # a handler ``opt`` key: the request middleware leaves it alone
_CHECKED_OUT = "todo_service.metrics.checked_out"  # marks a pool entry we counted as checked out


class _Families:
    """The service's own metric families, made on first use (in a serving worker).

    prometheus-client registers a name once per process, and in multiprocess mode an unlabelled
    metric writes a file as soon as it exists: never at import, nor by the CLI's app discovery.
    """

    def __init__(self) -> None:
        self.audit_events = Counter(
            f"{PREFIX}_audit_events_total", "Security events recorded in the audit trail", ["event", "outcome"]
        )
        self.rate_limit_rejections = Counter(
            f"{PREFIX}_rate_limit_rejections_total", "Requests refused by a rate-limit rule", ["rule"]
        )
        self.unmatched_requests = Counter(
            f"{PREFIX}_http_unmatched_requests_total", "Requests that matched no route (any path)", ["status_code"]
        )
        self.pool_checked_out = Gauge(
            f"{PREFIX}_db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum"
        )
        self.pool_size = Gauge(
            f"{PREFIX}_db_pool_size", "Connections the database pools keep open", multiprocess_mode="livesum"
        )
        self.build_info = Gauge(
            f"{PREFIX}_build_info", "The running version", ["version", "python_version"], multiprocess_mode="livemax"
        )


@cache
def families() -> _Families:
    """The process's metric families (made on first call)."""
    return _Families()


class _RequestMetrics(PrometheusMiddleware):
    """Litestar's middleware, answering errors raised by the middleware inside it *inside* it.

    Litestar 2.25 counts such responses (the JWT middleware's 401, the rate limiter's 429) as 200:
    the exception passes this middleware before an outer layer turns it into a response
    (litestar#4747). Wrapped like this it sees the real status; the response is the same.
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(wrap_in_exception_handler(app), config)


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


class Metrics:
    """Everything metrics install in one app; see the module docstring."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.directory = multiprocess_dir(settings)
        self.engine = engine
        self.config = PrometheusConfig(
            app_name="todo-service",
            prefix=f"{PREFIX}_http",
            group_path=True,
            exclude_opt_key=SKIP_KEY,
            middleware_class=_RequestMetrics,
        )
        self._pool_size = 0

    def install(self, app_config: AppConfig) -> AppConfig:
        """``on_app_init`` hook; list it before the transport hooks, after JWT and the rate limiter.

        The request middleware goes in front of those two, so their 401s and 429s are counted.
        """
        app_config.middleware.insert(0, self.config.middleware)
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

    def _endpoint(self) -> HTTPRouteHandler:
        registry: CollectorRegistry = REGISTRY
        if self.directory is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]

        def metrics() -> Response[bytes]:
            """The Prometheus text format, merged over every worker in multiprocess mode."""
            return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        options = {"exclude_from_auth": True, SKIP_KEY: True}
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
    settings: Settings, engine: AsyncEngine, audit_log: AuditLog, rate_limiter: RateLimiter | None
) -> Metrics | None:
    """The app's metrics, hooked into the audit log, the rate limiter and the engine's pool.

    None when ``METRICS_ENABLED`` is false: then nothing is installed or hooked.

    Raises:
        SettingsError: see :func:`multiprocess_dir`.
    """
    if not settings.metrics_enabled:
        return None
    metrics = Metrics(settings, engine)
    watch_pool(engine)
    audit_log.on_record = metrics.count_audit_event
    if rate_limiter is not None:
        rate_limiter.on_rejected = metrics.count_rejection
    return metrics
