"""The application factory: every piece of the service is assembled here, from one Settings object.

(Over 300 lines on purpose: the one place that wires features, plugins and the middleware order.)
"""

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_scoped_session, async_sessionmaker

from todo_service import __version__
from todo_service.admin.controllers import AdminController
from todo_service.audit.log import AuditLog, AuditTrail, Event, Outcome
from todo_service.auth.controllers import AuthController
from todo_service.cli import ProjectCommands
from todo_service.core.periodic import periodic
from todo_service.core.request_context import ClientAddress
from todo_service.core.settings import Settings
from todo_service.db.database import create_engine, create_statements, database_config, wait_for_database
from todo_service.drain import DrainOnStop
from todo_service.events.wiring import LiveEvents
from todo_service.http.body_schema import StrictBodySchema
from todo_service.http.errors import exception_to_response, status_of
from todo_service.http.front_door import FrontDoor
from todo_service.http.headers import TransportSecurity, ensure_request_id
from todo_service.http.openapi import openapi_config
from todo_service.http.query import check_query
from todo_service.http.strict import StrictBodies
from todo_service.idempotency.store import Idempotency
from todo_service.labels.controllers import LabelController
from todo_service.labels.repository import LabelRepository
from todo_service.labels.services import LabelService
from todo_service.lists.controllers import ListController
from todo_service.lists.repository import ListRepository
from todo_service.lists.services import ListService
from todo_service.observability.logs import configure_logging
from todo_service.observability.metrics import build_metrics
from todo_service.observability.traces import build_tracing, current_trace_ids
from todo_service.ratelimit.limiter import build_rate_limiter
from todo_service.reminders.controllers import ReminderController
from todo_service.reminders.services import ReminderService
from todo_service.reminders.store import follow_due
from todo_service.reminders.worker import ReminderWorker
from todo_service.security.access import Caller
from todo_service.security.config import AuthConfig
from todo_service.security.lockout import LockoutPolicy
from todo_service.security.passwords import Passwords
from todo_service.security.sessions import session_pruner
from todo_service.security.tokens import TokenIssuer, build_jwt_auth
from todo_service.system.controllers import SystemController
from todo_service.system.root import to_the_docs
from todo_service.system.schema import with_schema
from todo_service.system.services import ReadinessProbe, database_check
from todo_service.tasks.controllers import TaskController
from todo_service.tasks.cursors import Cursors
from todo_service.tasks.ranks import key_between
from todo_service.tasks.repository import TaskRepository, task_scope
from todo_service.tasks.services import TaskService
from todo_service.users.controllers import UserController
from todo_service.webhooks.controllers import WebhookController
from todo_service.webhooks.feature import Webhooks, build_webhooks

__all__ = ("AppContext", "create_app", "create_served_app")

logger = logging.getLogger(__name__)
T = TypeVar("T")
# How long a claimed Idempotency-Key waits for its request before a retry may take it over.
IDEMPOTENCY_LEASE = timedelta(seconds=60)


def _singleton(value: T) -> Provide:
    """A dependency that always provides ``value`` (built once, in the factory)."""

    def provide() -> T:
        return value

    provide.__annotations__["return"] = type(value)
    return Provide(provide, use_cache=True, sync_to_thread=False)


@dataclass(frozen=True, slots=True)
class AppContext:
    """What the app's own commands need (``todo-service users ...``); kept in ``app.state.context``."""

    engine: AsyncEngine
    session_maker: Callable[[], AsyncSession]
    auth_config: AuthConfig
    audit_log: AuditLog


async def log_started() -> None:
    """The last word of start-up, whatever serves the app (one line per worker)."""
    logger.info("Application startup complete.")


async def log_stopped() -> None:
    """The last word of shutdown: pools closed, spans flushed (one line per worker)."""
    logger.info("Application shutdown complete.")


async def freeze_startup_objects() -> None:
    """Move what start-up made (modules, models, routes, pools) out of the garbage collector's sight.

    A full collection walks every object the process holds: with SQLAlchemy, Litestar and
    OpenTelemetry loaded that took 70 to 90 ms here, a stall every few seconds under load and the
    whole of the p99 latency. Frozen objects are never collected (they live as long as the app
    anyway); what requests allocate is collected as before, in a fraction of the time.
    """
    gc.collect()
    gc.freeze()


class LastWords(InitPlugin):
    """The plugin listed last: freeze and log once start-up is done; log once shutdown is."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """After every hook the plugins before it added (they run in list order)."""
        app_config.on_startup.extend([freeze_startup_objects, log_started])
        app_config.on_shutdown.append(log_stopped)
        return app_config


def provide_caller(request: Request[Caller, Any, Any]) -> Caller:
    """The caller the JWT middleware authenticated."""
    return request.user


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service. Without ``settings`` they are read from the environment (and ``.env``)."""
    settings = settings or Settings.from_env()
    # First: every record from here on is formatted; lines in a span carry its trace and span ids.
    request_logging = configure_logging(settings, trace_ids=current_trace_ids, ensure_request_id=ensure_request_id)
    engine = create_engine(settings)
    tracing = build_tracing(settings, engine)  # None without OTEL_EXPORTER_OTLP_ENDPOINT: nothing is installed
    # The task routes' statements: on the driver connection of the engine's pool on PostgreSQL (db/statements.py).
    statements = create_statements(engine, tracer=tracing.db_tracer if tracing else None)
    audit_log = AuditLog(engine, settings.signing_key)
    db_config = database_config(settings, engine, after_transaction=audit_log.flush)
    client_address = ClientAddress(settings.trusted_proxies)
    jwt_auth = build_jwt_auth(settings.signing_key, timedelta(minutes=settings.access_token_expire_minutes))
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
        tracer=tracing.tracer if tracing else None,
    )
    auth_config = AuthConfig(
        passwords=passwords,
        tokens=TokenIssuer(jwt_auth),
        lockout=LockoutPolicy(
            threshold=settings.lockout_threshold,
            window=timedelta(seconds=settings.lockout_window_seconds),
            duration=timedelta(seconds=settings.lockout_duration_seconds),
        ),
        session_ttl=timedelta(days=settings.refresh_token_expire_days),
        refresh_reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
    )

    def provide_audit(request: Request[Any, Any, Any]) -> AuditTrail:
        """The request's audit trail (written once the response starts)."""
        return audit_log.trail(request.scope, client_address)

    async def wait_for_the_database() -> None:
        await wait_for_database(
            engine, attempts=settings.db_connect_attempts, first_pause=settings.db_connect_retry_seconds
        )

    async def dispose_engine() -> None:
        # Advanced Alchemy's lifespan skips this when its state keys were de-duplicated (several
        # configs in one process, as in the tests).
        await engine.dispose()

    async def audit_rate_limited(scope: Scope, rule: str) -> None:
        # Called once per key and window, not per refused request: a flood is one event, not a write each.
        audit_log.trail(scope, client_address).record(Event.RATE_LIMITED, Outcome.BLOCKED, detail=rule)

    # None when RATE_LIMIT_ENABLED=false: then nothing is installed.
    rate_limiter = build_rate_limiter(settings, on_limited=audit_rate_limited)
    # None when METRICS_ENABLED=false: then nothing is installed (no /metrics, no hooks).
    metrics = build_metrics(settings, engine, audit_log, rate_limiter, status_of=status_of)
    # The database check fails also while the schema is behind the migrations (system/schema.py).
    checks = {"database": with_schema(engine, database_check(engine))}
    if rate_limiter is not None and settings.redis_url:
        checks["redis"] = rate_limiter.ping
    readiness = ReadinessProbe(
        checks,
        timeout=settings.health_check_timeout,
        optional={"redis"},  # rate limits fail open without it: degraded, still ready
        on_outcome=metrics.dependency_outcome if metrics else None,
    )

    session_maker = db_config.create_session_maker()
    # One per app; its inherited Advanced Alchemy methods get a session per asyncio task, from the
    # plugin's own session maker (an async_sessionmaker, typed as a plain callable by the plugin).
    scoped = async_scoped_session(cast("async_sessionmaker[AsyncSession]", session_maker), task_scope)
    task_repository = TaskRepository(statements=statements, session=scoped)
    idempotency = Idempotency(
        statements, ttl=timedelta(hours=settings.idempotency_key_ttl_hours), lease=IDEMPOTENCY_LEASE
    )
    tombstone_retention = timedelta(days=settings.tombstone_retention_days)
    task_service = TaskService(
        task_repository,
        Cursors(settings.signing_key),
        idempotency,
        trash_retention=timedelta(days=settings.trash_retention_days),
    )
    # Reminders: a task's due moving moves them; a worker in every process fires them once (docs/domain.md).
    task_service.on_due_change = follow_due
    reminder_service = ReminderService(statements)
    reminder_worker = ReminderWorker(statements)
    live_events = LiveEvents(settings, task_service, jwt_auth)  # SSE: routes, listener, streams' end

    def tasks_changed(owner_id: UUID) -> None:  # lists and labels move tasks: SQLite's live events hear of it
        if task_service.on_change is not None:
            task_service.on_change(owner_id)

    reminder_worker.on_fired = tasks_changed  # a fired reminder is a change too

    list_service = ListService(
        ListRepository(statements),
        idempotency,
        trash_retention=timedelta(days=settings.trash_retention_days),
        key_after=lambda last: key_between(last, None),  # a deleted list's tasks go after the target's
        on_change=tasks_changed,
    )
    label_service = LabelService(LabelRepository(statements), idempotency, on_change=tasks_changed)

    async def prune_sync_tables() -> str:
        tombstones = await task_repository.prune_tombstones(datetime.now(UTC) - tombstone_retention)
        keys = await idempotency.prune()
        return f"pruned {tombstones} task tombstones and {keys} idempotency keys"

    context = AppContext(engine=engine, session_maker=session_maker, auth_config=auth_config, audit_log=audit_log)
    # Signed webhooks: the routes' service and the outbox's delivery worker (docs/webhooks.md).
    webhooks = build_webhooks(settings, statements, tracing.tracer if tracing else None)
    openapi = Webhooks.document(openapi_config(__version__, enabled=settings.docs_enabled))
    transport = TransportSecurity(settings)

    return Litestar(
        route_handlers=[
            AuthController,
            UserController,
            TaskController,
            ReminderController,
            ListController,
            LabelController,
            WebhookController,
            AdminController,
            SystemController,
            *([to_the_docs] if settings.docs_enabled else []),  # / redirects to the docs (307)
        ],
        # Each cross-cutting concern is a plugin adding its routes, before_send hooks, start-up and shutdown
        # steps in its on_app_init, in this order (Litestar runs them in list order); none inserts middleware.
        plugins=[
            SQLAlchemyPlugin(config=db_config),
            ProjectCommands(),
            StrictBodies(),  # strict bodies: decoded without coercion, every error at once
            StrictBodySchema(),  # documented additionalProperties: false
            jwt_auth,  # the OpenAPI security scheme
            *([rate_limiter] if rate_limiter else []),  # RateLimit-* headers, the route-rule check, Redis's close
            *([metrics] if metrics else []),  # /metrics, unmatched requests, pool gauge
            *([tracing] if tracing else []),  # server spans (a plugin, around routing), X-Trace-Id, untraced routes
            request_logging,  # the access line
            transport,  # security headers, Allow, CORS
            live_events,  # GET .../tasks/events (SSE) and its tickets, the LISTEN connection, streams' end
            LastWords(),  # last: after every hook the others added
        ],
        before_request=check_query,  # unknown, repeated or invalid query parameters: one 422 naming them all
        state=State({"context": context}),
        # Every middleware, outermost first: the one place their order is stated.
        middleware=[
            # The server span (observability/server_spans.py): Litestar runs it outermost, around routing.
            *([tracing.server_spans] if tracing else []),
            # Then one layer: the request id (every response carries it), the Host check, the body
            # deadline, then the log context and the access line's clock (http/front_door.py).
            FrontDoor.define(transport.allowed_hosts, transport.body_timeout, request_logging),
            *([metrics.middleware] if metrics else []),  # outside limits and auth: counts their 429s and 401s
            *([rate_limiter.refused_callers] if rate_limiter else []),  # a 401 counts per IP: bad tokens are limited
            jwt_auth.middleware,  # the caller, from the bearer token (routes opt out with exclude_from_auth)
            *([rate_limiter.middleware] if rate_limiter else []),  # every rule at once (route, IP, user): one call
            *([tracing.middleware] if tracing else []),  # no child spans for routes declaring UNTRACED
        ],
        dependencies={
            "caller": Provide(provide_caller, sync_to_thread=False),
            "auth_config": _singleton(auth_config),
            "audit": Provide(provide_audit, sync_to_thread=False),
            "readiness": _singleton(readiness),
            "task_service": _singleton(task_service),
            "list_service": _singleton(list_service),
            "label_service": _singleton(label_service),
            "webhook_service": _singleton(webhooks.service),
            "reminder_service": _singleton(reminder_service),
        },
        exception_handlers={Exception: exception_to_response},
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        lifespan=[
            session_pruner(session_maker, settings.session_prune_interval_seconds, auth_config.lockout),
            periodic("prune-sync-tables", settings.session_prune_interval_seconds, prune_sync_tables),
            webhooks.worker.lifespan,  # delivers the outbox: a task in every worker
            periodic("fire-reminders", settings.reminders_poll_seconds, reminder_worker.step),
        ],
        on_startup=[wait_for_the_database, passwords.prepare],
        on_shutdown=[passwords.close, dispose_engine],
        debug=False,
    )


def create_served_app() -> DrainOnStop:
    """The factory ``todo-service run``'s workers load: the service, wrapped so that it can drain on SIGTERM."""
    return DrainOnStop(create_app())
