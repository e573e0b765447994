"""CPU per owner-scoped read of one task, by each way the data layer could run it (docs/adr/0002).

One process, 32 concurrent readers, PostgreSQL on loopback; prints microseconds of this process's
CPU per read (the service's own cost: the database's is the same for every path) and reads/s.

    uv run --frozen python bench/data_paths.py postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from todo_service.db.models import Priority, Role, Task, TaskList, User
from todo_service.db.statements import AsyncpgStatements, EngineStatements
from todo_service.tasks.queries import TASK_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

READERS, READS = 32, 200
GET = select(*TASK_COLUMNS).where(Task.id == bindparam("task_id"), Task.user_id == bindparam("owner_id"))


class Tasks(SQLAlchemyAsyncRepository[Task]):
    """The canonical Advanced Alchemy repository of tasks."""

    model_type = Task


async def seeded(admin_url: str) -> tuple[AsyncEngine, uuid.UUID, uuid.UUID]:
    """A fresh database with one user and one task: the engine, the owner's id, the task's id."""
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text("DROP DATABASE IF EXISTS adr_data_paths"))
        await connection.execute(text("CREATE DATABASE adr_data_paths"))
    await admin.dispose()
    engine = create_async_engine(admin_url.rsplit("/", 1)[0] + "/adr_data_paths", pool_size=40, max_overflow=0)
    # The schema as the migrations make it (with the trigger that gives an account its Inbox).
    upgrade = [str(Path(sys.executable).parent / "todo-service"), "database", "upgrade", "--no-prompt"]
    env = {**os.environ, "DATABASE_URL": str(engine.url.render_as_string(hide_password=False))}
    await asyncio.to_thread(subprocess.run, upgrade, env=env, check=True, stdout=subprocess.DEVNULL)
    owner, task = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    async with async_sessionmaker(engine)() as session:
        session.add(
            User(
                id=owner,
                email="a@example.com",
                password_hash="not-a-hash",  # noqa: S106
                first_name="A",
                last_name="B",
                role=Role.USER,
                is_active=True,
            )
        )
        await session.flush()
        # The account's Inbox (a trigger made it with the account): every task is in a list.
        inbox = await session.scalar(select(TaskList.id).where(TaskList.user_id == owner, TaskList.is_default))
        session.add(
            Task(
                id=task,
                user_id=owner,
                list_id=inbox,
                title="t",
                description=None,
                completed=False,
                priority=Priority.LOW,
                due_date=None,
                completed_at=None,
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    return engine, owner, task


async def measure(name: str, read: Callable[[], Awaitable[Any]]) -> None:
    """Print the CPU per read and the reads per second of ``read``, by 32 concurrent readers."""
    assert await read() is not None

    async def reader() -> None:
        for _ in range(READS):
            await read()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(reader() for _ in range(READERS)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"{name:52} {cpu / (READERS * READS) * 1e6:7.0f} us CPU/read {READERS * READS / wall:8.0f} reads/s")


async def main(admin_url: str) -> None:
    """Every path, twice; the second round is the one to read."""
    engine, owner, task = await seeded(admin_url)
    params = {"task_id": task, "owner_id": owner}
    borrowed = AsyncpgStatements(engine)
    core = EngineStatements(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def via_connect() -> Any:  # noqa: ANN401
        async with engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            compiled = borrowed._compile(GET)  # noqa: SLF001  (the same prepared SQL, to isolate the checkout)
            return await pooled.driver_connection.fetchrow(compiled.sql, *compiled.arguments(params))

    async def driver_sql() -> Any:  # noqa: ANN401
        async with engine.connect() as connection:
            return (
                await connection.exec_driver_sql(
                    "SELECT id, title FROM tasks WHERE id = $1 AND user_id = $2", (task, owner)
                )
            ).first()

    async def repository_autocommit() -> Any:  # noqa: ANN401
        async with sessions(bind=engine.execution_options(isolation_level="AUTOCOMMIT")) as session:
            return await Tasks(session=session).get_one_or_none(id=task, user_id=owner)

    async def repository_transaction() -> Any:  # noqa: ANN401
        async with sessions() as session, session.begin():
            return await Tasks(session=session).get_one_or_none(id=task, user_id=owner)

    for _ in range(2):  # the second round is the one to read: caches warm, connections open
        await measure("borrowed driver connection (raw_connection)", lambda: borrowed.one(GET, params))
        await measure("borrowed driver connection (connect + get_raw)", via_connect)
        await measure("exec_driver_sql on an engine connection", driver_sql)
        await measure("Core on an autocommit connection", lambda: core.one(GET, params))
        await measure("AA repository, autocommit session", repository_autocommit)
        await measure("AA repository, session in a transaction", repository_transaction)
        print()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
