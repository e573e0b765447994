"""The Alembic history, on a fresh database of each backend: up, down, up again, and in step with the models."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import TYPE_CHECKING, Any

import pytest
from advanced_alchemy.base import metadata_registry
from advanced_alchemy.types import GUID
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

import todo_service.db.models  # noqa: F401  (registers the tables on the metadata)
from tests.servers import migrate
from todo_service.db.database import MIGRATIONS_DIR, VERSION_TABLE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from sqlalchemy import Column
    from sqlalchemy.engine import Connection
    from sqlalchemy.types import TypeEngine

APP_TABLES = {"users", "tasks", "auth_sessions"}
_POSTGRESQL_ONLY = r"autogenerate skipping .* expression-based index 'ix_tasks_live_\w+_trgm'; dialect 'sqlite'"


@pytest.fixture
async def fresh_url(database_url: str, backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on the backend of ``database_url``: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"mig_{uuid.uuid4().hex[:12]}"
    server = make_url(database_url)
    admin = create_async_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def on_database(url: str, work: Callable[[Connection], Any]) -> Any:
    """Run ``work`` on a sync connection of a short-lived engine."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def versions(connection: Connection) -> list[str]:
    return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]  # noqa: S608  (a constant)


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


async def test_upgrade_head_creates_the_tables(fresh_url: str) -> None:
    assert not (await on_database(fresh_url, table_names)) & APP_TABLES
    await asyncio.to_thread(migrate, fresh_url, "head")
    assert await on_database(fresh_url, table_names) >= {*APP_TABLES, VERSION_TABLE}
    assert await on_database(fresh_url, versions) == [head_revision()]


async def test_downgrade_base_removes_them_and_upgrade_works_again(fresh_url: str) -> None:
    await asyncio.to_thread(migrate, fresh_url, "head")
    await asyncio.to_thread(migrate, fresh_url, "base", down=True)
    assert not (await on_database(fresh_url, table_names)) & APP_TABLES
    assert await on_database(fresh_url, versions) == []

    await asyncio.to_thread(migrate, fresh_url, "head")
    assert await on_database(fresh_url, table_names) >= {*APP_TABLES, VERSION_TABLE}
    assert await on_database(fresh_url, versions) == [head_revision()]


async def test_upgrade_is_idempotent_at_head(fresh_url: str) -> None:
    await asyncio.to_thread(migrate, fresh_url, "head")
    await asyncio.to_thread(migrate, fresh_url, "head")
    assert await on_database(fresh_url, versions) == [head_revision()]


def _compare_type(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic's type comparison, except for what SQLite cannot reflect.

    SQLite reflects a declared ``BINARY(16)`` (a GUID column) as ``NUMERIC``, its type affinity: there,
    compare the type as declared in the table with the type the model renders.
    """
    if context.dialect.name != "sqlite" or not isinstance(metadata_type, GUID):
        return None  # Alembic's own comparison
    assert context.bind is not None
    rows = context.bind.exec_driver_sql(f"PRAGMA table_info('{inspected_column.table.name}')")
    declared = {row[1]: row[2] for row in rows}[inspected_column.name]
    return bool(declared.upper() != metadata_type.compile(dialect=context.dialect).upper())


def model_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": _compare_type, "version_table": VERSION_TABLE}
    )
    with warnings.catch_warnings():
        # SQLite has no trigram indexes (PostgreSQL only, migrations 0010 and 0011) and Alembic cannot reflect an
        # expression index there: it skips the models' with a warning. PostgreSQL compares them.
        warnings.filterwarnings("ignore", message=_POSTGRESQL_ONLY, category=UserWarning)
        return list(compare_metadata(context, metadata_registry.get(None)))


async def test_head_matches_the_models(fresh_url: str) -> None:
    await asyncio.to_thread(migrate, fresh_url, "head")
    differences = await on_database(fresh_url, model_differences)
    assert differences == []


async def test_head_keeps_emails_unique_and_cascades_tasks(fresh_url: str) -> None:
    await asyncio.to_thread(migrate, fresh_url, "head")

    def constraints(connection: Connection) -> dict[str, Any]:
        inspector = inspect(connection)
        return {
            "user_unique": [u["column_names"] for u in inspector.get_unique_constraints("users")]
            + [i["column_names"] for i in inspector.get_indexes("users") if i["unique"]],
            "task_fks": [
                (fk["referred_table"], fk["options"].get("ondelete")) for fk in inspector.get_foreign_keys("tasks")
            ],
        }

    found = await on_database(fresh_url, constraints)
    assert ["email"] in found["user_unique"]
    # A list's tasks are trashed or moved by the service before the list goes (no cascade there).
    assert sorted((table, (ondelete or "").upper()) for table, ondelete in found["task_fks"]) == [
        ("task_lists", ""),
        ("users", "CASCADE"),
    ]
