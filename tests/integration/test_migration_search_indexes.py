"""Migrations 0010 (trigram indexes for search) and 0011 (the same led by the owner), PostgreSQL only, both ways.

On a database holding tasks of 0009; SQLite gets no index from either.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from tests.integration.test_migrations import fresh_url, on_database  # noqa: F401  (fresh_url is a fixture)
from tests.migration_rows import LISTS, TASKS, insert_users, task_triggers
from tests.servers import migrate

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

_NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
# The definitions PostgreSQL reports for the two indexes of each migration (pg_get_indexdef).
_OF_0010 = {
    "ix_tasks_live_title_trgm": (
        "CREATE INDEX ix_tasks_live_title_trgm ON public.tasks USING gin (lower((title)::text) gin_trgm_ops) "
        "WHERE (deleted_at IS NULL)"
    ),
    "ix_tasks_live_description_trgm": (
        "CREATE INDEX ix_tasks_live_description_trgm ON public.tasks USING gin "
        "(lower((description)::text) gin_trgm_ops) WHERE (deleted_at IS NULL)"
    ),
}
_OF_0011 = {
    "ix_tasks_live_owner_title_trgm": (
        "CREATE INDEX ix_tasks_live_owner_title_trgm ON public.tasks USING gin "
        "(user_id, lower((title)::text) gin_trgm_ops) WHERE (deleted_at IS NULL)"
    ),
    "ix_tasks_live_owner_description_trgm": (
        "CREATE INDEX ix_tasks_live_owner_description_trgm ON public.tasks USING gin "
        "(user_id, lower((description)::text) gin_trgm_ops) WHERE (deleted_at IS NULL)"
    ),
}
_PG_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'tasks'::regclass AND c.relname LIKE '%trgm%'
"""
_SQLITE_INDEXES = "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%trgm%'"


def _seed(connection: Connection) -> None:
    """A user with three tasks, one of them deleted (a tombstone: outside the partial indexes)."""
    (user,) = insert_users(connection, 1, email="t@example.com")
    inbox = connection.execute(select(LISTS.c.id).where(LISTS.c.user_id == user)).scalar_one()
    for n, (title, description) in enumerate(
        [("Quarterly report", None), ("Groceries", "before the quarterly review"), ("Gone", "quarterly")]
    ):
        row = {"id": uuid.uuid4(), "user_id": user, "list_id": inbox, "title": title, "description": description}
        extra = {"completed": False, "priority": "medium", "position": f"n{n}", "revision": n + 1}
        connection.execute(insert(TASKS).values(**row, **extra, created_at=_NOW, updated_at=_NOW))
    connection.execute(text("UPDATE tasks SET deleted_at = updated_at WHERE title = 'Gone'"))
    connection.commit()


def _indexes(connection: Connection) -> dict[str, tuple[str, bool]]:
    if connection.dialect.name == "sqlite":
        return {row[0]: ("", True) for row in connection.execute(text(_SQLITE_INDEXES))}
    return {row[0]: (row[1], row[2]) for row in connection.execute(text(_PG_INDEXES))}


def _extensions(connection: Connection) -> set[str]:
    return {row[0] for row in connection.execute(text("SELECT extname FROM pg_extension"))}


def _tasks(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(TASKS)).scalar_one())


def _valid(expected: dict[str, str]) -> dict[str, tuple[str, bool]]:
    return {name: (sql, True) for name, sql in expected.items()}


def _invalid_index(name: str) -> Callable[[Connection], None]:
    def leave(connection: Connection) -> None:
        """What an interrupted CREATE INDEX CONCURRENTLY leaves: an invalid index under the migration's name."""
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        # Tasks share a completed value: the unique build fails, and its index stays behind, invalid.
        with pytest.raises(DBAPIError, match="could not create unique index"):
            autocommit.execute(text(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON tasks (completed)"))

    return leave


async def test_upgrade_adds_the_indexes_and_downgrade_drops_them(fresh_url: str, backend: str) -> None:  # noqa: F811
    await asyncio.to_thread(migrate, fresh_url, "0009")
    await on_database(fresh_url, _seed)
    triggers = await on_database(fresh_url, task_triggers)
    assert await on_database(fresh_url, _indexes) == {}

    await asyncio.to_thread(migrate, fresh_url, "0010")
    assert await on_database(fresh_url, _tasks) == 3
    assert await on_database(fresh_url, task_triggers) == triggers
    if backend == "sqlite":  # nothing: SQLite's search reads the owner's tasks
        assert await on_database(fresh_url, _indexes) == {}
    else:
        assert await on_database(fresh_url, _indexes) == _valid(_OF_0010)
        assert "pg_trgm" in await on_database(fresh_url, _extensions)

    await asyncio.to_thread(migrate, fresh_url, "0009", down=True)
    assert await on_database(fresh_url, _indexes) == {}
    assert await on_database(fresh_url, _tasks) == 3
    if backend == "postgresql":  # the extension stays: other objects may use it
        assert "pg_trgm" in await on_database(fresh_url, _extensions)

    await asyncio.to_thread(migrate, fresh_url, "0010")
    assert await on_database(fresh_url, _indexes) == ({} if backend == "sqlite" else _valid(_OF_0010))


async def test_0011_replaces_the_indexes_with_ones_led_by_the_owner_and_back(fresh_url: str, backend: str) -> None:  # noqa: F811
    await asyncio.to_thread(migrate, fresh_url, "0009")
    await on_database(fresh_url, _seed)
    await asyncio.to_thread(migrate, fresh_url, "0010")
    triggers = await on_database(fresh_url, task_triggers)

    await asyncio.to_thread(migrate, fresh_url, "0011")
    assert await on_database(fresh_url, _tasks) == 3
    assert await on_database(fresh_url, task_triggers) == triggers
    if backend == "sqlite":
        assert await on_database(fresh_url, _indexes) == {}
        return
    assert await on_database(fresh_url, _indexes) == _valid(_OF_0011)
    assert {"pg_trgm", "btree_gin"} <= await on_database(fresh_url, _extensions)

    await asyncio.to_thread(migrate, fresh_url, "0010", down=True)
    assert await on_database(fresh_url, _indexes) == _valid(_OF_0010)
    assert await on_database(fresh_url, _tasks) == 3
    assert "btree_gin" in await on_database(fresh_url, _extensions)  # left: other objects may use it

    await asyncio.to_thread(migrate, fresh_url, "head")
    assert await on_database(fresh_url, _indexes) == _valid(_OF_0011)


async def test_upgrades_rebuild_an_index_an_interrupted_build_left_invalid(
    fresh_url: str,  # noqa: F811
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: SQLite gets no index from 0010 or 0011")
    await asyncio.to_thread(migrate, fresh_url, "0009")
    await on_database(fresh_url, _seed)
    await on_database(fresh_url, _invalid_index("ix_tasks_live_title_trgm"))
    left = await on_database(fresh_url, _indexes)
    assert left["ix_tasks_live_title_trgm"][1] is False

    await asyncio.to_thread(migrate, fresh_url, "0010")
    assert await on_database(fresh_url, _indexes) == _valid(_OF_0010)

    await on_database(fresh_url, _invalid_index("ix_tasks_live_owner_title_trgm"))  # 0011's build, interrupted
    assert (await on_database(fresh_url, _indexes))["ix_tasks_live_owner_title_trgm"][1] is False
    await asyncio.to_thread(migrate, fresh_url, "0011")
    assert await on_database(fresh_url, _indexes) == _valid(_OF_0011)
