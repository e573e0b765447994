"""The application factory: every piece of the service is assembled here, from one Settings object."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from todo_service import __version__
from todo_service.admin.controllers import AdminController
from todo_service.auth.access import Caller
from todo_service.auth.controllers import AuthController
from todo_service.auth.lockout import LockoutPolicy
from todo_service.auth.passwords import Passwords
from todo_service.auth.services import AuthConfig
from todo_service.auth.sessions import session_pruner
from todo_service.auth.tokens import TokenIssuer, build_jwt_auth
from todo_service.cli import ProjectCommands
from todo_service.lib.audit import AuditLog, AuditTrail, Event, Outcome
from todo_service.lib.database import create_engine, database_config
from todo_service.lib.errors import exception_to_response
from todo_service.lib.http_headers import TransportSecurity
from todo_service.lib.openapi import openapi_config
from todo_service.lib.ratelimit import build_rate_limiter
from todo_service.lib.request_context import ClientAddress
from todo_service.settings import Settings
from todo_service.system.controllers import SystemController
from todo_service.system.services import ReadinessProbe, database_check, redis_check
from todo_service.tasks.controllers import TaskController
from todo_service.users.controllers import UserController

__all__ = ("AppContext", "create_app")

logger = logging.getLogger(__name__)
T = TypeVar("T")


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


def provide_caller(request: Request[Caller, Any, Any]) -> Caller:
    """The caller the JWT middleware authenticated."""
    return request.user


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service. Without ``settings`` they are read from the environment (and ``.env``)."""
    settings = settings or Settings.from_env()
    engine = create_engine(settings)
    audit_log = AuditLog(engine, settings.signing_key)
    db_config = database_config(settings, engine, after_transaction=audit_log.flush)
    client_address = ClientAddress(settings.trusted_proxies)
    jwt_auth = build_jwt_auth(settings.signing_key, timedelta(minutes=settings.access_token_expire_minutes))
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
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
    )

    def provide_audit(request: Request[Any, Any, Any]) -> AuditTrail:
        """The request's audit trail (written once the response starts)."""
        return audit_log.trail(request.scope, client_address)

    async def dispose_engine() -> None:
        # Advanced Alchemy's lifespan skips this when its state keys were de-duplicated (several
        # configs in one process, as in the tests).
        await engine.dispose()

    async def audit_rate_limited(scope: Scope, rule: str) -> None:
        # Called once per key and window, not per refused request: a flood is one event, not a write each.
        audit_log.trail(scope, client_address).record(Event.RATE_LIMITED, Outcome.BLOCKED, detail=rule)

    # None when RATE_LIMIT_ENABLED=false: then nothing is installed.
    rate_limiter = build_rate_limiter(settings, on_limited=audit_rate_limited)
    checks = {"database": database_check(engine)}
    if rate_limiter is not None and settings.redis_url:
        checks["redis"] = redis_check(rate_limiter.storage)
    readiness = ReadinessProbe(checks, timeout=settings.health_check_timeout)

    session_maker = db_config.create_session_maker()
    context = AppContext(engine=engine, session_maker=session_maker, auth_config=auth_config, audit_log=audit_log)

    return Litestar(
        route_handlers=[AuthController, UserController, TaskController, AdminController, SystemController],
        plugins=[SQLAlchemyPlugin(config=db_config), ProjectCommands()],
        state=State({"context": context}),
        # TransportSecurity last: its request-id middleware must end up outermost.
        on_app_init=[
            jwt_auth.on_app_init,
            *([rate_limiter.install] if rate_limiter else []),  # after JWT: its limits run before authentication
            TransportSecurity(settings).install,
        ],
        dependencies={
            "caller": Provide(provide_caller, sync_to_thread=False),
            "auth_config": _singleton(auth_config),
            "audit": Provide(provide_audit, sync_to_thread=False),
            "readiness": _singleton(readiness),
        },
        exception_handlers={Exception: exception_to_response},
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.max_body_bytes,
        lifespan=[session_pruner(session_maker, settings.session_prune_interval_seconds)],
        on_startup=[passwords.prepare],
        on_shutdown=[passwords.close, dispose_engine],
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="never",  # our exception handler logs every 5xx once, with its traceback
        ),
        debug=False,
    )
