"""The database engine and Advanced Alchemy's plugin config, for PostgreSQL (asyncpg) or SQLite."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.extensions.litestar import (
    async_autocommit_handler_maker as autocommit_handler_maker,
)
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from todo_service.core.settings import Settings, normalize_database_url
from todo_service.db.statements import AsyncpgStatements, EngineStatements

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.types import Message, Scope
    from opentelemetry.trace import Tracer
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = (
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "create_engine",
    "create_statements",
    "database_config",
    "wait_for_database",
)

logger = logging.getLogger(__name__)
VERSION_TABLE = "alembic_versions"
_MAX_PAUSE = 5.0


def _migrations_dir() -> Path:
    """Inside an installed wheel the migrations ship in the package; in a checkout they sit at the top."""
    package = Path(__file__).resolve().parents[1]
    bundled = package / "migrations"
    return bundled if bundled.is_dir() else package.parent / "migrations"


MIGRATIONS_DIR = _migrations_dir()


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    # SQLite enforces foreign keys only when asked, on every connection; WAL and a busy timeout let
    # readers and a writer share the file instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _postgres_connect_args(settings: Settings) -> dict[str, Any]:
    """What every PostgreSQL connection of the engine's pool is opened with."""
    connect_args: dict[str, Any] = {
        "timeout": settings.db_pool_timeout,
        # Small OLTP queries gain nothing from JIT compilation and pay for its planning. Every statement
        # is prepared with the owner as a parameter; a custom plan per execution re-planned the change
        # feed's join each time (0.4 ms of planning for 0.04 ms of execution), a generic plan is made once.
        "server_settings": {"application_name": "todo-service", "jit": "off", "plan_cache_mode": "force_generic_plan"},
    }
    if settings.database_pgbouncer:
        # PgBouncer in transaction mode hands each transaction (each statement outside one) to any of
        # its server connections, where a statement prepared earlier, by name, may be missing or be
        # another client's. With both caches off, asyncpg parses every statement as the unnamed one
        # and parses it again with its Bind (one message), so nothing outlives the transaction; the
        # task statements (db/statements.py) run through the same asyncpg connections. PgBouncer
        # 1.18 refuses startup parameters other than a few (application_name is one of them).
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0  # SQLAlchemy's own cache, on the same connection
        connect_args["server_settings"] = {"application_name": "todo-service"}
    if settings.db_sslmode is not None:
        connect_args["ssl"] = settings.db_sslmode
    return connect_args


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine for ``DATABASE_URL`` with the pool and timeouts from settings."""
    url = normalize_database_url(settings.database_url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=settings.db_echo, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        # Statement parameters (task titles, emails, hashes) never appear in errors or in echo.
        hide_parameters=True,
        # DB_POOL_SIZE + DB_MAX_OVERFLOW connections at most, opened on demand and kept: a pool that
        # closes "overflow" connections as they return would have to await the driver there, which
        # the task statements' synchronous check-in cannot (db/statements.py, docs/adr/0002).
        pool_size=settings.db_pool_size + settings.db_max_overflow,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        connect_args=_postgres_connect_args(settings),
    )


def create_statements(engine: AsyncEngine, tracer: Tracer | None = None) -> AsyncpgStatements | EngineStatements:
    """How the single-statement routes run: on the driver connection of the engine's pool for PostgreSQL.

    Either way there is one pool per process, the engine's, shared with the sessions (sign-up,
    login, accounts, admin).
    """
    if engine.dialect.name != "postgresql":
        return EngineStatements(engine)
    return AsyncpgStatements(engine, tracer=tracer)


async def wait_for_database(engine: AsyncEngine, *, attempts: int, first_pause: float) -> None:
    """Return once the database answers; retry with a doubling pause (capped at 5 s), then give up.

    A container often starts before its database is ready: waiting a little beats crashing and
    being restarted, and giving up after a bounded time beats hanging forever.

    Raises:
        RuntimeError: the database never answered.
    """
    pause = first_pause
    for attempt in range(1, attempts + 1):  # attempts=0: no wait at all
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (OSError, sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError) as exc:
            if attempt == attempts:
                msg = f"the database did not answer after {attempts} attempts: {type(exc).__name__}"
                raise RuntimeError(msg) from None
            logger.warning("database not reachable yet (attempt %d of %d): %s", attempt, attempts, type(exc).__name__)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)
        else:
            return


def database_config(
    settings: Settings,
    engine: AsyncEngine | None = None,
    *,
    after_transaction: Callable[[Scope], Awaitable[None]] | None = None,
) -> SQLAlchemyAsyncConfig:
    """Advanced Alchemy's config: one session per request, committed when the response is 2xx.

    ``after_transaction`` runs as the response starts, once the request's transaction is committed
    or rolled back and its connection returned (the audit trail writes there).
    """
    config = SQLAlchemyAsyncConfig(
        engine_instance=engine or create_engine(settings),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
        # Our handler maps every error (repository ones included) to the contract's body.
        set_default_exception_handler=False,
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            version_table_name=VERSION_TABLE,
            compare_type=True,
            # Autogenerate writes Advanced Alchemy's types (GUID, DateTimeUTC) through their package,
            # which migrations import; not as the "sa." aliases its own template patches in.
            user_module_prefix="advanced_alchemy.types.",
        ),
    )
    if after_transaction is not None:
        # Built after the config: its session key may have been de-duplicated in __post_init__.
        end_transaction = autocommit_handler_maker(session_scope_key=config.session_scope_key)

        async def before_send(message: Message, scope: Scope) -> None:
            await end_transaction(message, scope)
            if message["type"] == "http.response.start":
                await after_transaction(scope)

        config.before_send_handler = before_send
    return config
