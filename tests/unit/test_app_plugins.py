"""How ``create_app`` assembles the cross-cutting concerns: one plugin each, hooks in list order.

Every optional part is on (metrics, rate limits, tracing, CORS); the app is built, never served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from litestar.plugins import InitPluginProtocol
from litestar.plugins.opentelemetry import OpenTelemetryPlugin

from tests.factories import make_settings
from todo_service.app import LastWords, create_app
from todo_service.http.headers import TransportSecurity
from todo_service.observability.logs import RequestLogging
from todo_service.observability.metrics import Metrics
from todo_service.observability.providers import shutdown_tracing
from todo_service.observability.traces import Tracing
from todo_service.ratelimit.limiter import RateLimiter
from todo_service.security.tokens import BearerJWTAuth

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from litestar import Litestar


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Litestar]:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}",
        metrics_enabled=True,
        rate_limit_enabled=True,
        otel_exporter_otlp_endpoint="http://127.0.0.1:9",
        cors_origins=["https://app.example.com"],
    )
    yield create_app(settings)
    shutdown_tracing(settings)


def names(hooks: list[Any]) -> list[str]:
    return [getattr(hook, "__qualname__", type(hook).__name__) for hook in hooks]


def test_each_cross_cutting_concern_is_one_init_plugin(app: Litestar) -> None:
    kinds = (BearerJWTAuth, RateLimiter, Metrics, Tracing, RequestLogging, TransportSecurity, LastWords)
    for kind in kinds:
        (plugin,) = [plugin for plugin in app.plugins if isinstance(plugin, kind)]
        assert isinstance(plugin, InitPluginProtocol)
    assert len([plugin for plugin in app.plugins if isinstance(plugin, OpenTelemetryPlugin)]) == 1


def test_the_plugins_insert_no_middleware_the_app_lists_it_all(app: Litestar) -> None:
    listed = [getattr(middleware, "middleware", middleware) for middleware in app.middleware]
    assert [getattr(m, "__name__", type(m).__name__) for m in listed] == [
        "FrontDoor",
        "_RequestMetrics",
        "RefusedCallers",
        "BearerTokenMiddleware",
        "RateLimits",
        "_Untraced",
    ]


def test_hooks_run_in_the_order_of_the_plugins_and_the_last_words_come_last(app: Litestar) -> None:
    assert names(app.on_startup) == [
        "create_app.<locals>.wait_for_the_database",
        "Passwords.prepare",
        "RateLimiter.check_routes",
        "Metrics._started",
        "LiveEvents._end_streams_on_stop",
        "freeze_startup_objects",
        "log_started",
    ]
    assert names(app.on_shutdown) == [
        "Hub.close_all",  # first: open event streams end before anything they read from closes
        "Passwords.close",
        "create_app.<locals>.dispose_engine",
        "RateLimiter.close",
        "Metrics._stopped",
        "Tracing.flush",
        "log_stopped",
    ]
    assert names(app.before_send) == [
        "RateLimiter.add_headers",
        "Metrics._count_unmatched",
        "_name_span_and_answer_trace_id",
        "RequestLogging.before_send",
        "SecurityHeaders.before_send",
        "AllowHeader.before_send",
        "database_config.<locals>.before_send",  # the transaction ends after every header is written
    ]
    assert app.cors_config is not None
