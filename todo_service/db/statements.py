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
- :class:`EngineStatements` (SQLite, or any engine): an autocommit connection of the engine per
  statement; SQLAlchemy's own instrumentation and pool events see it as usual.
- :class:`SessionStatements`: inside a request's ORM session (its transaction), for the services
  that need several statements to commit together.

With a tracer, :class:`AsyncpgStatements` makes the same ``CLIENT`` spans as OpenTelemetry's
SQLAlchemy instrumentation (``SELECT <db>``, ``db.statement`` with ``$n`` placeholders, never the
values), so a trace looks the same whichever way a statement ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import asyncpg
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.sql.expression import ReturnsRows

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer
    from opentelemetry.util.types import AttributeValue
    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
    from sqlalchemy.sql import ClauseElement, Executable
    from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ("AsyncpgStatements", "EngineStatements", "SessionStatements", "Statements", "connection_lost")

Row = Sequence[Any]
Params = Mapping[str, Any]
_MAX_COMPILED = 512  # distinct statements kept compiled (listings vary by filters and sort)


class Statements(Protocol):
    """Runs one Core statement with its parameter values."""

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

    async def one(self, statement: Executable, params: Params) -> Row | None:
        """The statement's only row, or None."""
        return (await self.session.execute(statement, params)).one_or_none()

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        return list((await self.session.execute(statement, params)).all())

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed."""
        return int((await self.session.execute(statement, params)).rowcount)  # type: ignore[attr-defined]


class EngineStatements:
    """Each statement on its own autocommit connection of ``engine`` (one statement is atomic)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

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


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled for asyncpg: its SQL, how to order and convert its values and rows."""

    sql: str
    operation: str  # the span name's first word: SELECT, INSERT, ...
    names: tuple[str, ...]  # parameter names in $1, $2, ... order
    fixed: Mapping[str, Any]  # values written into the statement (``User.role != Role.GUEST``)
    binds: tuple[Callable[[Any], Any] | None, ...]  # SQLAlchemy's bind processors, by position
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, result processor)

    @classmethod
    def of(cls, statement: Executable, dialect: Dialect) -> _Compiled:
        compiled = cast("SQLCompiler", cast("ClauseElement", statement).compile(dialect=dialect))
        names = tuple(compiled.positiontup or ())
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise TypeError("expanding (IN) and literal-execute parameters are not supported")
        if compiled.insert_prefetch or compiled.update_prefetch:  # SQLAlchemy computes those per execution
            columns = ", ".join(column.name for column in (*compiled.insert_prefetch, *compiled.update_prefetch))
            raise TypeError(f"give every value: the statement relies on Python-side defaults for {columns}")
        fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        # The processors SQLAlchemy itself applies, through the types' public dialect API.
        binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        # A SELECT's columns, or an INSERT/UPDATE/DELETE's RETURNING columns, in the order they come back.
        returned = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
        results = tuple(
            (index, processor)
            for index, column in enumerate(returned)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        )
        sql = compiled.string
        return cls(sql, sql.split(None, 1)[0], names, fixed, binds, results)

    def arguments(self, params: Params) -> list[Any]:
        values = [params[name] if name in params else self.fixed[name] for name in self.names]
        for index, bind in enumerate(self.binds):
            if bind is not None and values[index] is not None:
                values[index] = bind(values[index])
        return values

    def row(self, record: asyncpg.Record) -> tuple[Any, ...]:
        if not self.results:
            return tuple(record)
        values = list(record)
        for index, process in self.results:
            values[index] = process(values[index])
        return tuple(values)


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
        self._compiled: dict[Executable, _Compiled] = {}
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
        compiled = self._compile(statement)
        record = await self._run(compiled, params, "fetchrow")
        return None if record is None else compiled.row(record)

    async def all(self, statement: Executable, params: Params) -> list[Row]:
        """Every row of the statement."""
        compiled = self._compile(statement)
        return [compiled.row(record) for record in await self._run(compiled, params, "fetch")]

    async def affected(self, statement: Executable, params: Params) -> int:
        """How many rows the statement changed (from the command tag, ``DELETE 1``)."""
        status = await self._run(self._compile(statement), params, "execute")
        return int(status.rsplit(" ", 1)[-1])

    def _compile(self, statement: Executable) -> _Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) >= _MAX_COMPILED:
                del self._compiled[next(iter(self._compiled))]  # the oldest
            compiled = self._compiled[statement] = _Compiled.of(statement, self.dialect)
        return compiled

    async def _run(self, compiled: _Compiled, params: Params, method: str) -> Any:  # noqa: ANN401
        arguments = compiled.arguments(params)
        tracer = self._tracer
        if tracer is None or not is_instrumentation_enabled():
            return await self._call(compiled.sql, arguments, method)
        name = f"{compiled.operation} {self._database}".strip()
        with tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes={**self._span_attributes, "db.statement": compiled.sql}
        ) as span:
            try:
                return await self._call(compiled.sql, arguments, method)
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


# asyncpg's protocol state machine, after the connection broke under an operation: the protocol is
# "failed" or stuck in the interrupted operation ("cannot switch to state 12; another operation (11)
# is in progress", seen over PostgreSQL restarts), or the connection is already gone.
_BROKEN_PROTOCOL = ("cannot switch to state", "not connected")
_MAX_CAUSES = 8  # how deep the chain of causes is searched (SQLAlchemy wraps twice)


def _driver_lost(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return str(exc).startswith(_BROKEN_PROTOCOL)
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError  # class 08: connection failures
        | asyncpg.exceptions.OperatorInterventionError  # class 57: shutting down, cannot connect now
        | asyncpg.exceptions.InsufficientResourcesError  # class 53: too many connections
        | asyncpg.exceptions.ConnectionDoesNotExistError,
    ) or (isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc))


def connection_lost(exc: BaseException) -> bool:
    """Whether an asyncpg error means the database is out of reach (a retryable 503), not a bug.

    Also when SQLAlchemy wrapped it: its ``DBAPIError`` keeps the adapted driver error in ``orig``,
    and that one was raised from asyncpg's own error (its ``__cause__``).
    """
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if current is None:
            return False
        if _driver_lost(current):
            return True
        orig = getattr(current, "orig", None)  # sqlalchemy.exc.StatementError and subclasses
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False
