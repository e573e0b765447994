"""The service's Prometheus metric families, made once per process on first use.

:func:`families` holds the service's own; :func:`request_series` the request families, with their
children kept by label values (one lookup per series, not per request).
"""

from __future__ import annotations

from functools import cache
from http import HTTPStatus

from prometheus_client import Counter, Gauge, Histogram

__all__ = ("APP_NAME", "PREFIX", "families", "request_series")

PREFIX = "todo"
APP_NAME = "todo-service"


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
        self.rate_limit_storage_failures = Counter(
            f"{PREFIX}_rate_limit_storage_failures_total",
            "Rate-limit storage calls that failed or timed out (the request was served unlimited)",
        )
        self.unmatched_requests = Counter(
            f"{PREFIX}_http_unmatched_requests_total", "Requests that matched no route (any path)", ["status_code"]
        )
        self.pool_checked_out = Gauge(
            f"{PREFIX}_db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum"
        )
        self.pool_size = Gauge(
            f"{PREFIX}_db_pool_size",
            "Connections the database pool may hold (DB_POOL_SIZE + DB_MAX_OVERFLOW)",
            multiprocess_mode="livesum",
        )
        self.dependency_up = Gauge(
            f"{PREFIX}_dependency_up",
            "Whether a dependency answered the last readiness probe (1) or not (0)",
            ["dependency"],
            multiprocess_mode="livemostrecent",
        )
        self.build_info = Gauge(
            f"{PREFIX}_build_info", "The running version", ["version", "python_version"], multiprocess_mode="livemax"
        )


@cache
def families() -> _Families:
    """The process's metric families (made on first call)."""
    return _Families()


class _RequestSeries:
    """The request families, and their children by label values, looked up once per series.

    ``Counter.labels(...)`` takes a lock and builds a key each call; four of them per request cost
    more than the rest of this middleware, so children are kept here (bounded by the routes).
    """

    def __init__(self) -> None:
        labels = ["method", "path", "status_code", "app_name"]
        self.requests = Counter(f"{PREFIX}_http_requests_total", "Total requests", labels)
        self.duration = Histogram(f"{PREFIX}_http_request_duration_seconds", "Request duration, in seconds", labels)
        self.errors = Counter(f"{PREFIX}_http_requests_error_total", "Total errors in requests", labels)
        self.in_progress = Gauge(
            f"{PREFIX}_http_requests_in_progress",
            "Total requests currently in progress",
            labels,
            multiprocess_mode="livesum",
        )
        self._finished: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter | None]] = {}
        self._running: dict[tuple[str, str], Gauge] = {}

    def running(self, method: str, path: str) -> Gauge:
        gauge = self._running.get((method, path))
        if gauge is None:  # status_code is always 200 while running (as Litestar's middleware has it)
            gauge = self._running[method, path] = self.in_progress.labels(method, path, 200, APP_NAME)
        return gauge

    def finished(self, method: str, path: str, status: int) -> tuple[Counter, Histogram, Counter | None]:
        key = (method, path, status)
        series = self._finished.get(key)
        if series is None:
            values = (method, path, status, APP_NAME)
            error = self.errors.labels(*values) if status >= HTTPStatus.INTERNAL_SERVER_ERROR else None
            series = self._finished[key] = (self.requests.labels(*values), self.duration.labels(*values), error)
        return series


@cache
def request_series() -> _RequestSeries:
    """The process's request families (made on first call, in a serving worker)."""
    return _RequestSeries()
