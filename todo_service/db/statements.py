"""Single Core statements, run without an ORM session: the hot path of the task routes.

Every task route is one SQL statement that carries its own permission check (see
:mod:`todo_service.security.access`), so it needs no transaction, no session and no ORM object. The
statements are SQLAlchemy Core, built once at import with ``bindparam`` placeholders; a request
only supplies their values. Three ways to run them, one interface (:class:`Statements`):

- :class:`AsyncpgStatements` (PostgreSQL): each statement is compiled once for the engine's own
  asyncpg dialect (same SQL, same type processing as SQLAlchemy would apply, through public
  API) and run on the asyncpg connection of a connection borrowed from the engine's pool, where
  it stays prepared. The ADR docs/adr/0002-task-statements-on-a-borrowed-driver-connection.md
  measures this beside the canonical ways (Core and the repository on the engine, the ORM session).
  With ``DATABASE_PGBOUNCER`` nothing stays prepared: asyncpg's cache is off (db/database.py, PgBouncer).
- :class:`EngineStatements` (SQLite, or any engine): an autocommit connection of the engine per
  statement; SQLAlchemy's own instrumentation and pool events see it as usual.
- :class:`SessionStatements`: inside a request's ORM session (its transaction), for the services
  that need several statements to commit together.

With a tracer, :class:`AsyncpgStatements` makes the same ``CLIENT`` spans as OpenTelemetry's
SQLAlchemy instrumentation (``SELECT <db>``, ``db.statement`` with ``$n`` placeholders, never the
values), so a trace looks the same whichever way a statement ran.

(Just over 300 lines: the three ways share one interface and are read side by side.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from todo_service.db.compiled import CompiledStatement
from todo_service.db.driver_errors import connection_lost

if TYPE_CHECKING:
    import asyncpg
    from opentelemetry.trace import Tracer
    from opentelemetry.util.types import AttributeValue
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
    from sqlalchemy.sql import Executable

__all__ = ("AsyncpgStatements", "ConnectionStatements", "EngineStatements", "SessionStatements", "Statements")

Row = Sequence[Any]
Params = Mapping[str, Any]
_MAX_COMPILED = 512  # distinct statements kept compiled (listings vary by filters and sort)


def _inside_unsampled_trace() -> bool:
    """Whether the current span belongs to a trace that is not recorded (its children would not be either).

    Under the samplers the service offers (``parentbased_*``, and ``traceidratio``, which decides the
    same way for every span of a trace), a statement's span there would be dropped: making it costs
    a sampler call and a context switch per statement (9 requests in 10 at the 10% sampler).
    """
    current = trace.get_current_span()
    return current.get_span_context().is_valid and not current.is_recording()


class Statements(Protocol):
    """Runs one Core statement with its parameter values (each on its own, or in :meth:`transaction`)."""

    @property
    def dialect_name(self) -> str:
        """The database's dialect: ``postgresql`` or ``sqlite``."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Statements]:
        """Statements that commit together when the block ends, and roll back if it raises."""
        ...

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        ...

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        ...

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement (an UPDATE or DELETE without RETURNING) changed."""
        ...


class SessionStatements:
    """Statements inside an ORM session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect_name(self) -> str:
        """The database's dialect."""
        return self.session.get_bind().dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """The session's own transaction (it commits with the request)."""
        yield self

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        return (await self.session.execute(statement, params)).one_or_none()

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        return list((await self.session.execute(statement, params)).all())

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed."""
        return int((await self.session.execute(statement, params)).rowcount)  # type: ignore[attr-defined]


class ConnectionStatements:
    """Statements on one SQLAlchemy connection (inside its transaction)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect_name = connection.dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """The connection's transaction, already open."""
        yield self

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        return (await self.connection.execute(statement, params)).one_or_none()

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        return list((await self.connection.execute(statement, params)).all())

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed."""
        return int((await self.connection.execute(statement, params)).rowcount)


class EngineStatements:
    """Each statement on its own autocommit connection of ``engine`` (one statement is atomic)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.transactional = engine
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.dialect_name = engine.dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """One connection in a transaction, committed when the block ends."""
        async with self.transactional.begin() as connection:
            yield ConnectionStatements(connection)

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        async with self.engine.connect() as connection:
            return (await connection.execute(statement, params)).one_or_none()

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        async with self.engine.connect() as connection:
            return list((await connection.execute(statement, params)).all())

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed."""
        async with self.engine.connect() as connection:
            return int((await connection.execute(statement, params)).rowcount)


class AsyncpgStatements:
    """Statements on the asyncpg connection of one of the engine's pooled connections (PostgreSQL).

    There is one pool per process, the engine's: a statement checks a connection out through
    SQLAlchemy's public API (``AsyncEngine.raw_connection()``), runs on its ``driver_connection``
    (where asyncpg keeps it prepared), and checks it back in (``close()``). No transaction is
    opened, so the check-in's reset is a no-op, and the pool's size, timeout (503), recycling and
    checkout events (metrics) are the engine's. ``AsyncEngine.connect()`` would cost twice the CPU
    (an ``AsyncConnection``, three greenlet switches and a task per statement). A connection that broke under a
    statement is invalidated, so the pool replaces it instead of lending it on (a statement
    cancelled mid-flight needs nothing: asyncpg cancels it on the server and the connection stays usable).
    docs/adr/0002-task-statements-on-a-borrowed-driver-connection.md has the measured cost.
    """

    def __init__(self, engine: AsyncEngine, *, tracer: Tracer | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.dialect_name = engine.dialect.name
        self._compiled: dict[Executable, CompiledStatement] = {}
        self._tracer = tracer
        url = engine.url
        self._database = url.database or ""
        self._span_attributes: dict[str, AttributeValue] = {
            "db.system": "postgresql",
            "db.name": self._database,
            "net.peer.name": url.host or "",
            "net.peer.port": url.port or 5432,
        }

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        return await self.one_on(None, statement, params)

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        return await self.all_on(None, statement, params)

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed (from the command tag, ``DELETE 1``)."""
        return await self.affected_on(None, statement, params)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """One borrowed connection in an asyncpg transaction, committed when the block ends.

        The pool's reset on check-in has nothing to do: the transaction has ended by then, and it
        was the driver's own, not one SQLAlchemy's adapter opened.
        """
        pooled = await self.engine.raw_connection()
        try:
            connection = cast("asyncpg.Connection[asyncpg.Record]", pooled.driver_connection)
            async with connection.transaction():
                yield _InTransaction(self, connection)
        except Exception as exc:
            if connection_lost(exc):
                pooled.invalidate(exc)
            raise
        finally:
            pooled.close()

    async def one_on(self, connection: Any, statement: Executable, params: Params) -> Row | None:  # noqa: ANN401
        """:meth:`one` on ``connection`` (None: a connection borrowed for this statement)."""
        compiled = self._compile(statement)
        record = await self._run(compiled, params, "fetchrow", connection)
        return None if record is None else compiled.row(record)

    async def all_on(self, connection: Any, statement: Executable, params: Params) -> list[Row]:  # noqa: ANN401
        """:meth:`all` on ``connection``."""
        compiled = self._compile(statement)
        return [compiled.row(record) for record in await self._run(compiled, params, "fetch", connection)]

    async def affected_on(self, connection: Any, statement: Executable, params: Params) -> int:  # noqa: ANN401
        """:meth:`affected` on ``connection``."""
        status = await self._run(self._compile(statement), params, "execute", connection)
        return int(status.rsplit(" ", 1)[-1])

    def _compile(self, statement: Executable) -> CompiledStatement:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) >= _MAX_COMPILED:
                del self._compiled[next(iter(self._compiled))]  # the oldest
            compiled = self._compiled[statement] = CompiledStatement.of(statement, self.dialect)
        return compiled

    async def _run(self, compiled: CompiledStatement, params: Params, method: str, connection: Any) -> Any:  # noqa: ANN401
        arguments = compiled.arguments(params)
        call = self._call if connection is None else getattr(connection, method)
        tracer = self._tracer
        if tracer is None or not is_instrumentation_enabled() or _inside_unsampled_trace():
            return await (
                call(compiled.sql, arguments, method) if connection is None else call(compiled.sql, *arguments)
            )
        name = f"{compiled.operation} {self._database}".strip()
        with tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes={**self._span_attributes, "db.statement": compiled.sql}
        ) as span:
            try:
                if connection is None:
                    return await call(compiled.sql, arguments, method)
                return await call(compiled.sql, *arguments)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    async def _call(self, sql: str, arguments: list[Any], method: str) -> Any:  # noqa: ANN401
        pooled = await self.engine.raw_connection()  # the engine's pool: its size, timeout, recycling, events
        try:
            return await getattr(pooled.driver_connection, method)(sql, *arguments)
        except Exception as exc:
            if connection_lost(exc):  # the pool must not lend it again
                pooled.invalidate(exc)
            raise
        finally:
            # No transaction was opened, so the pool's reset on return has nothing to do, and the
            # pool never closes a connection on return (see create_engine): this needs no await.
            pooled.close()


class _InTransaction:
    """:class:`AsyncpgStatements` on one connection, inside its transaction."""

    def __init__(self, statements: AsyncpgStatements, connection: Any) -> None:  # noqa: ANN401
        self.statements = statements
        self.connection = connection
        self.dialect_name = statements.dialect_name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """The transaction already open."""
        yield self

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        return await self.statements.one_on(self.connection, statement, params)

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        return await self.statements.all_on(self.connection, statement, params)

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed."""
        return await self.statements.affected_on(self.connection, statement, params)
