"""The application factory: every piece of the service is assembled here, from one Settings object."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request
from litestar.di import Provide
from litestar.logging import LoggingConfig
from sqlalchemy.ext.asyncio import AsyncSession

from todo_service import __version__
from todo_service.auth.access import Caller
from todo_service.auth.controllers import AuthController
from todo_service.auth.passwords import Passwords
from todo_service.auth.services import prune_expired_sessions
from todo_service.auth.tokens import TokenIssuer, build_jwt_auth
from todo_service.lib.database import create_engine, database_config
from todo_service.lib.errors import exception_to_response
from todo_service.lib.openapi import openapi_config
from todo_service.settings import Settings
from todo_service.system.controllers import SystemController
from todo_service.system.services import ReadinessProbe, database_check
from todo_service.tasks.controllers import TaskController
from todo_service.users.controllers import UserController

__all__ = ("create_app",)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _singleton(value: T) -> Provide:
    """A dependency that always provides ``value`` (built once, in the factory)."""

    def provide() -> T:
        return value

    provide.__annotations__["return"] = type(value)
    return Provide(provide, use_cache=True, sync_to_thread=False)


def provide_caller(request: Request[Caller, Any, Any]) -> Caller:
    """The caller the JWT middleware authenticated."""
    return request.user


def _session_pruner(
    session_maker: Callable[[], AsyncSession], interval: float
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan task that deletes expired login sessions every ``interval`` seconds."""

    async def prune_forever() -> None:
        while True:
            try:
                async with session_maker() as db, db.begin():
                    pruned = await prune_expired_sessions(db)
                logger.info("pruned %d expired login sessions", pruned)
            except Exception:
                logger.exception("pruning expired login sessions failed; retrying later")
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(prune_forever(), name="prune-login-sessions")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service. Without ``settings`` they are read from the environment (and ``.env``)."""
    settings = settings or Settings.from_env()
    engine = create_engine(settings)
    db_config = database_config(settings, engine)
    jwt_auth = build_jwt_auth(settings.signing_key, timedelta(minutes=settings.access_token_expire_minutes))
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )

    async def dispose_engine() -> None:
        # Advanced Alchemy's lifespan skips this when its state keys were de-duplicated (several
        # configs in one process, as in the tests).
        await engine.dispose()

    readiness = ReadinessProbe({"database": database_check(engine)}, timeout=settings.health_check_timeout)

    return Litestar(
        route_handlers=[AuthController, UserController, TaskController, SystemController],
        plugins=[SQLAlchemyPlugin(config=db_config)],
        on_app_init=[jwt_auth.on_app_init],
        dependencies={
            "caller": Provide(provide_caller, sync_to_thread=False),
            "passwords": _singleton(passwords),
            "token_issuer": _singleton(TokenIssuer(jwt_auth)),
            "readiness": _singleton(readiness),
        },
        exception_handlers={Exception: exception_to_response},
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.max_body_bytes,
        lifespan=[_session_pruner(db_config.create_session_maker(), settings.session_prune_interval_seconds)],
        on_startup=[passwords.prepare],
        on_shutdown=[passwords.close, dispose_engine],
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="never",  # our exception handler logs every 5xx once, with its traceback
        ),
        debug=False,
    )
