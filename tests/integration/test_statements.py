"""Single statements without a session: the same rows whichever way they run, and asyncpg's path on its own.

``create_statements`` gives the task routes the asyncpg connection of a connection borrowed from the
engine's pool on PostgreSQL and an autocommit engine connection on SQLite; both must return what
SQLAlchemy itself would (types processed both ways), and the asyncpg path must keep the pool's
rules: bounded waits, outages as 503, broken or interrupted connections replaced, spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
import pytest
import sqlalchemy.exc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Integer, bindparam, delete, event, func, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_settings
from tests.servers import free_port
from todo_service.core.errors import ServiceUnavailable
from todo_service.db import statements as statements_module
from todo_service.db.database import create_engine, create_statements
from todo_service.db.driver_errors import connection_lost
from todo_service.db.models import Priority, Role, Task, TaskList, User
from todo_service.db.statements import AsyncpgStatements, EngineStatements, SessionStatements
from todo_service.http.errors import to_app_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from opentelemetry.trace import Tracer

    from todo_service.core.settings import Settings

NOW = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)


@contextlib.asynccontextmanager
async def statements_on(
    settings: Settings, tracer: Tracer | None = None
) -> AsyncIterator[AsyncpgStatements | EngineStatements]:
    """The statements an app on ``settings`` runs on; their engine disposed afterwards."""
    engine = create_engine(settings)
    try:
        yield create_statements(engine, tracer=tracer)
    finally:
        await engine.dispose()


@pytest.fixture
async def runner(database_url: str, db_engine: AsyncEngine) -> AsyncIterator[AsyncpgStatements | EngineStatements]:
    """The statements of an app on the session's database (asyncpg on PostgreSQL), with one user."""
    async with db_engine.begin() as connection:
        await connection.execute(delete(Task))
        await connection.execute(delete(User))
    async with statements_on(make_settings(database_url)) as statements:
        yield statements


async def add_user(runner: AsyncpgStatements | EngineStatements) -> uuid.UUID:
    user_id = uuid.uuid4()
    values = {
        "id": user_id,
        "email": f"{user_id.hex}@example.com",
        "first_name": "S",
        "last_name": "T",
        "password_hash": "x",
        "role": Role.USER,
        "is_active": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    await runner.affected(insert(User).values({name: bindparam(name) for name in values}), values)
    return user_id


def task_values(user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "title": "Water the plants",
        "description": None,
        "completed": False,
        "priority": Priority.HIGH,
        "due_date": NOW + timedelta(days=1),
        "completed_at": None,
        "created_at": NOW,
        "updated_at": NOW,
        "position": f"n0{uuid.uuid4().hex}1",  # a rank of its own among its siblings (tasks/ranks.py)
    }
    return values | overrides


# The owner's Inbox (a trigger on users made it with the account).
_INBOX = select(TaskList.id).where(TaskList.user_id == bindparam("user_id"), TaskList.is_default).scalar_subquery()
INSERT_TASK = insert(Task).values({name: bindparam(name) for name in task_values(uuid.uuid4())} | {"list_id": _INBOX})
READ_TASK = select(Task.id, Task.priority, Task.due_date, Task.completed).where(Task.id == bindparam("id"))


async def test_rows_come_back_typed_as_sqlalchemy_would_type_them(runner: AsyncpgStatements | EngineStatements) -> None:
    user_id = await add_user(runner)
    values = task_values(user_id)
    assert await runner.affected(INSERT_TASK, values) == 1

    row = await runner.one(READ_TASK, {"id": values["id"]})

    assert row is not None
    task_id, priority, due_date, completed = row
    assert task_id == values["id"]
    assert isinstance(task_id, uuid.UUID)
    # The enum on SQLAlchemy's paths; on the asyncpg one its stored value, which is equal (a StrEnum)
    # and encodes the same (db/compiled.py: returned_as_is).
    assert priority == Priority.HIGH
    assert msgspec.json.encode(priority) == b'"high"'
    assert due_date == values["due_date"]
    assert due_date.utcoffset() == timedelta(0)  # aware, in UTC
    assert completed is False
    assert await runner.one(READ_TASK, {"id": uuid.uuid4()}) is None


async def test_values_written_into_a_statement_are_sent_with_it(runner: AsyncpgStatements | EngineStatements) -> None:
    user_id = await add_user(runner)
    for priority in (Priority.LOW, Priority.URGENT):
        await runner.affected(INSERT_TASK, task_values(user_id, priority=priority))
    # Priority.URGENT is a literal of the statement, not a parameter the caller passes.
    statement = select(Task.priority).where(Task.user_id == bindparam("owner"), Task.priority == Priority.URGENT)

    assert [tuple(row) for row in await runner.all(statement, {"owner": user_id})] == [(Priority.URGENT,)]


async def test_all_and_affected_count_rows(runner: AsyncpgStatements | EngineStatements) -> None:
    user_id = await add_user(runner)
    for title in ("a", "b", "c"):
        await runner.affected(INSERT_TASK, task_values(user_id, title=title))
    listing = select(Task.title).where(Task.user_id == bindparam("owner")).order_by(Task.title)

    assert [row[0] for row in await runner.all(listing, {"owner": user_id})] == ["a", "b", "c"]
    done = (
        update(Task).where(Task.user_id == bindparam("owner"), Task.title != "b").values(completed=True, updated_at=NOW)
    )
    assert await runner.affected(done, {"owner": user_id}) == 2
    assert await runner.affected(delete(Task).where(Task.user_id == bindparam("owner")), {"owner": user_id}) == 3
    assert await runner.all(listing, {"owner": user_id}) == []


async def test_bind_processing_refuses_what_sqlalchemy_refuses(runner: AsyncpgStatements | EngineStatements) -> None:
    user_id = await add_user(runner)
    naive = datetime(2030, 1, 1, 12, 0)  # noqa: DTZ001  (the point: DateTimeUTC refuses it)
    with pytest.raises(Exception, match="tzinfo is required"):
        await runner.affected(INSERT_TASK, task_values(user_id, due_date=naive))


async def test_the_statements_of_sqlite_share_the_engine(database_url: str, backend: str) -> None:
    engine = create_engine(make_settings(database_url))
    try:
        statements = create_statements(engine)
        expected = AsyncpgStatements if backend == "postgresql" else EngineStatements
        assert type(statements) is expected
    finally:
        await engine.dispose()


async def test_session_statements_run_inside_the_session(database_url: str, db_engine: AsyncEngine) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    statement = select(literal(1, Integer) + bindparam("n", type_=Integer))
    async with async_sessionmaker(db_engine)() as session:
        runner = SessionStatements(session)
        assert await runner.one(statement, {"n": 41}) == (42,)
        assert [tuple(row) for row in await runner.all(statement, {"n": 1})] == [(2,)]
        assert await runner.affected(delete(Task).where(Task.id == bindparam("id")), {"id": uuid.uuid4()}) == 0


# --- asyncpg's path, on PostgreSQL -----------------------------------------------------------------


@pytest.fixture
async def postgres_statements(postgres_admin_url: str) -> AsyncIterator[AsyncpgStatements]:
    """AsyncpgStatements on the PostgreSQL server (no tables needed)."""
    settings = make_settings(postgres_admin_url, db_pool_size=2, db_max_overflow=0, db_pool_timeout=1)
    async with statements_on(settings) as statements:
        assert isinstance(statements, AsyncpgStatements)
        yield statements


PLUS = select(bindparam("a", type_=Integer) + bindparam("b", type_=Integer))


async def test_each_statement_is_compiled_once_and_the_oldest_dropped(
    postgres_statements: AsyncpgStatements, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statements_module, "_MAX_COMPILED", 2)
    others = [select(literal(n, Integer)) for n in range(2)]
    assert await postgres_statements.one(PLUS, {"a": 1, "b": 2}) == (3,)
    first = postgres_statements._compiled[PLUS]
    assert await postgres_statements.one(PLUS, {"a": 5, "b": 5}) == (10,)
    assert postgres_statements._compiled[PLUS] is first  # compiled once
    for statement in others:
        await postgres_statements.one(statement, {})
    assert list(postgres_statements._compiled) == others  # PLUS, the oldest, made room


async def test_statements_borrow_the_engine_pool_and_stay_within_it(postgres_statements: AsyncpgStatements) -> None:
    engine = postgres_statements.engine
    deltas: list[int] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: deltas.append(1))
    event.listen(engine.sync_engine, "checkin", lambda *_: deltas.append(-1))
    sleeping = select(func.pg_sleep(0.3))
    # Three statements at once on the engine's pool of two: the third waits for a connection (1 s at most).
    results = await asyncio.gather(*(postgres_statements.one(sleeping, {}) for _ in range(3)))
    assert len(results) == 3
    assert sorted(deltas) == [-1, -1, -1, 1, 1, 1]
    assert max(_running_sums(deltas)) == 2
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def _running_sums(deltas: list[int]) -> list[int]:
    total, sums = 0, []
    for delta in deltas:
        total += delta
        sums.append(total)
    return sums


async def test_an_exhausted_pool_is_a_503_after_the_pool_timeout(postgres_statements: AsyncpgStatements) -> None:
    sleeping = select(func.pg_sleep(2))
    waits = [asyncio.create_task(postgres_statements.one(sleeping, {})) for _ in range(2)]
    await asyncio.sleep(0.2)
    try:
        with pytest.raises(sqlalchemy.exc.TimeoutError) as caught:
            await postgres_statements.one(PLUS, {"a": 1, "b": 1})
    finally:
        await asyncio.gather(*waits)
    assert isinstance(to_app_error(caught.value), ServiceUnavailable)


async def test_a_database_that_is_down_is_a_503(postgres_admin_url: str) -> None:
    url = f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x"
    # The pool connects on first use: a database that is down does not stop the start.
    async with statements_on(make_settings(url, db_pool_timeout=1)) as statements:
        with pytest.raises(ConnectionRefusedError) as caught:
            await statements.one(PLUS, {"a": 1, "b": 1})
    assert isinstance(to_app_error(caught.value), ServiceUnavailable)


PID = select(func.pg_backend_pid())


async def test_a_connection_killed_under_a_statement_is_replaced_not_lent_again(
    postgres_statements: AsyncpgStatements, postgres_admin_url: str
) -> None:
    first = await postgres_statements.one(PID, {})
    assert first is not None
    admin = await asyncpg.connect(postgres_admin_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        # Both pooled connections (the fixture's pool holds two) are killed from outside.
        second = await asyncio.gather(
            *(postgres_statements.one(select(func.pg_backend_pid(), func.pg_sleep(0.1)), {}) for _ in range(2))
        )
        pids = {row[0] for row in second if row is not None}
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(pids))
    finally:
        await admin.close()
    failures = 0
    for _ in range(4):  # at most each dead connection fails once; then the pool has opened new ones
        try:
            row = await postgres_statements.one(PID, {})
        except Exception as exc:  # noqa: BLE001
            assert connection_lost(exc), exc  # noqa: PT017
            failures += 1
        else:
            assert row is not None
            assert row[0] not in pids
    assert failures <= 2
    assert await postgres_statements.one(PLUS, {"a": 2, "b": 2}) == (4,)


async def test_a_statement_cancelled_mid_flight_leaves_a_usable_pool(postgres_statements: AsyncpgStatements) -> None:
    running = asyncio.create_task(postgres_statements.one(select(func.pg_sleep(5)), {}))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # Every connection of the pool (two) answers at once: none is stuck in the cancelled operation.
    async with asyncio.timeout(3):
        rows = await asyncio.gather(*(postgres_statements.one(PLUS, {"a": n, "b": 1}) for n in range(4)))
    assert rows == [(1,), (2,), (3,), (4,)]
    assert postgres_statements.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_what_only_sqlalchemy_can_run_is_refused(postgres_statements: AsyncpgStatements) -> None:
    expanding = select(literal(1)).where(literal(1).in_(bindparam("many", expanding=True)))
    with pytest.raises(TypeError, match="expanding"):
        await postgres_statements.one(expanding, {"many": [1, 2]})
    # updated_at's onupdate default is computed by SQLAlchemy per execution: it must be given.
    defaulted = update(Task).where(Task.id == bindparam("id")).values(completed=True)
    with pytest.raises(TypeError, match="updated_at"):
        await postgres_statements.affected(defaulted, {"id": uuid.uuid4()})


async def test_sessions_are_left_as_they_are_on_release(postgres_statements: AsyncpgStatements) -> None:
    # No RESET ALL on release (one more round trip each): nothing here sets session state anyway.
    assert await postgres_statements.one(select(func.current_setting("application_name")), {}) == ("todo-service",)
    assert await postgres_statements.one(select(func.current_setting("jit")), {}) == ("off",)
    # Prepared once with parameters, planned once: no custom plan per execution (see db/database.py).
    setting = select(func.current_setting("plan_cache_mode"))
    assert await postgres_statements.one(setting, {}) == ("force_generic_plan",)


async def test_spans_name_the_statement_and_never_its_values(postgres_admin_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with statements_on(make_settings(postgres_admin_url), provider.get_tracer("test")) as statements:
        assert await statements.one(PLUS, {"a": 7_340_117, "b": 2}) == (7_340_119,)
        with pytest.raises(asyncpg.PostgresError):
            await statements.one(select(text("no_such_column")), {})
    provider.shutdown()

    ok, failed = exporter.get_finished_spans()
    database = postgres_admin_url.rpartition("/")[2]
    assert ok.name == f"SELECT {database}"
    assert ok.kind.name == "CLIENT"
    assert ok.attributes is not None
    assert ok.attributes["db.system"] == "postgresql"
    assert ok.attributes["db.statement"] == "SELECT $1::INTEGER + $2::INTEGER AS anon_1"
    # (A value that no port number or database name can contain by chance.)
    assert "7340117" not in str(dict(ok.attributes))
    assert ok.status.status_code.name == "UNSET"
    assert failed.status.status_code.name == "ERROR"


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (asyncpg.ConnectionDoesNotExistError("gone"), True),
        (asyncpg.CannotConnectNowError("starting up"), True),
        (asyncpg.TooManyConnectionsError("too many"), True),
        (asyncpg.exceptions.AdminShutdownError("shutdown"), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
        (asyncpg.UndefinedColumnError("no such column"), False),
        (ValueError("x"), False),
    ],
)
def test_which_driver_errors_mean_the_database_is_out_of_reach(error: Exception, *, lost: bool) -> None:
    assert connection_lost(error) is lost
    assert isinstance(to_app_error(error), ServiceUnavailable) is lost
