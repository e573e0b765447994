"""Migration 0006 (lists, labels, trash) on a database holding rows of the schema before it, both ways."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import BigInteger, Boolean, String, column, insert, inspect, select, table

from tests.integration.test_migrations import fresh_url, on_database  # noqa: F401  (fresh_url is a fixture)
from tests.migration_rows import NOW, insert_users, task_triggers
from tests.servers import migrate

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_TASKS = table(
    "tasks",
    column("id", GUID()),
    column("user_id", GUID()),
    column("title", String()),
    column("completed", Boolean()),
    column("priority", String()),
    column("revision", BigInteger()),
    column("deleted_at", DateTimeUTC()),
    column("created_at", DateTimeUTC()),
    column("updated_at", DateTimeUTC()),
)
_LISTS = table("task_lists", column("id", GUID()), column("user_id", GUID()), column("name", String()))
_TASK_LISTS = table("tasks", column("id", GUID()), column("list_id", GUID()), column("user_id", GUID()))


def _seed(connection: Connection) -> dict[str, Any]:
    """Two users with tasks (one a tombstone), and a user without any, as the schema at 0005 holds them."""
    users = insert_users(connection, 3)
    tasks = {uuid.uuid4(): users[n % 2] for n in range(5)}
    connection.execute(
        insert(_TASKS),
        [
            {
                "id": task,
                "user_id": owner,
                "title": f"t{n}",
                "completed": False,
                "priority": "medium",
                "revision": n + 1,
                "deleted_at": NOW if n == 4 else None,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for n, (task, owner) in enumerate(tasks.items())
        ],
    )
    connection.commit()
    return {"users": users, "tasks": tasks}


def _lists(connection: Connection) -> list[tuple[uuid.UUID, str]]:
    return [(row.user_id, row.name) for row in connection.execute(select(_LISTS))]


def _task_lists(connection: Connection) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]]:
    rows = connection.execute(select(_TASK_LISTS.c.id, _TASK_LISTS.c.user_id, _TASK_LISTS.c.list_id))
    return {row.id: (row.user_id, row.list_id) for row in rows}


def _inbox_of(connection: Connection) -> dict[uuid.UUID, uuid.UUID]:
    return {row.user_id: row.id for row in connection.execute(select(_LISTS))}


def _task_columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("tasks")}


def _task_foreign_keys(connection: Connection) -> list[tuple[str, str]]:
    keys = inspect(connection).get_foreign_keys("tasks")
    return sorted((fk["referred_table"], (fk["options"].get("ondelete") or "").upper()) for fk in keys)


def _task_ids(connection: Connection) -> set[uuid.UUID]:
    return {row[0] for row in connection.execute(select(_TASKS.c.id))}


async def test_upgrade_gives_every_user_an_inbox_holding_their_tasks_and_downgrade_keeps_them(fresh_url: str) -> None:  # noqa: F811
    await asyncio.to_thread(migrate, fresh_url, "0005")
    seeded = await on_database(fresh_url, _seed)
    triggers = await on_database(fresh_url, task_triggers)
    assert triggers  # revision counter (SQLite) or events and webhooks (PostgreSQL)

    await asyncio.to_thread(migrate, fresh_url, "0006")

    lists = await on_database(fresh_url, _lists)
    assert sorted(lists) == sorted((user, "Inbox") for user in seeded["users"])
    inbox = await on_database(fresh_url, _inbox_of)
    placed = await on_database(fresh_url, _task_lists)
    assert placed == {task: (owner, inbox[owner]) for task, owner in seeded["tasks"].items()}
    assert await on_database(fresh_url, task_triggers) == triggers  # SQLite's table copy kept them
    assert await on_database(fresh_url, _task_foreign_keys) == [("task_lists", ""), ("users", "CASCADE")]

    # A new account gets its Inbox from the trigger, whoever inserts it.
    def new_user(connection: Connection) -> uuid.UUID:
        (user,) = insert_users(connection, 1, email="new@example.com")
        connection.commit()
        return user

    newcomer = await on_database(fresh_url, new_user)
    assert (newcomer, "Inbox") in await on_database(fresh_url, _lists)

    await asyncio.to_thread(migrate, fresh_url, "0005", down=True)
    assert await on_database(fresh_url, _task_ids) == set(seeded["tasks"])
    assert not {"list_id", "trash_expires_at"} & await on_database(fresh_url, _task_columns)
    assert await on_database(fresh_url, task_triggers) == triggers
    assert await on_database(fresh_url, _task_foreign_keys) == [("users", "CASCADE")]
    assert "task_lists" not in await on_database(fresh_url, lambda c: inspect(c).get_table_names())

    await asyncio.to_thread(migrate, fresh_url, "head")
    assert len(await on_database(fresh_url, _lists)) == len(seeded["users"]) + 1
