"""Migration 0007 (subtasks, order, recurrence, reminders) on a database holding rows of 0006, both ways."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import BigInteger, Boolean, String, column, insert, inspect, select, table

from tests.integration.test_migrations import fresh_url, on_database  # noqa: F401  (fresh_url is a fixture)
from tests.migration_rows import NOW, insert_users, task_triggers
from tests.servers import migrate
from todo_service.tasks.ranks import time_key

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_TASKS = table(
    "tasks",
    column("id", GUID()),
    column("user_id", GUID()),
    column("list_id", GUID()),
    column("title", String()),
    column("completed", Boolean()),
    column("priority", String()),
    column("revision", BigInteger()),
    column("deleted_at", DateTimeUTC()),
    column("created_at", DateTimeUTC()),
    column("updated_at", DateTimeUTC()),
)
_POSITIONS = table("tasks", column("id", GUID()), column("position", String()), column("title", String()))
_LISTS = table("task_lists", column("id", GUID()), column("user_id", GUID()))


def _seed(connection: Connection) -> dict[str, Any]:
    """Two users with tasks at 0006 (two created at the same instant, one a tombstone)."""
    users = insert_users(connection, 2)
    inbox = {row.user_id: row.id for row in connection.execute(select(_LISTS))}
    created = [NOW, NOW + timedelta(seconds=1), NOW + timedelta(seconds=1), NOW + timedelta(seconds=2), NOW]
    tasks = {uuid.uuid4(): (users[0] if n < 4 else users[1], created[n]) for n in range(5)}
    connection.execute(
        insert(_TASKS),
        [
            {
                "id": task,
                "user_id": owner,
                "list_id": inbox[owner],
                "title": f"t{n}",
                "completed": False,
                "priority": "medium",
                "revision": n + 1,
                "deleted_at": NOW if n == 3 else None,
                "created_at": at,
                "updated_at": at,
            }
            for n, (task, (owner, at)) in enumerate(tasks.items())
        ],
    )
    connection.commit()
    return {"users": users, "tasks": tasks}


def _positions(connection: Connection) -> dict[uuid.UUID, tuple[str, str]]:
    return {row.id: (row.title, row.position) for row in connection.execute(select(_POSITIONS))}


def _titles(connection: Connection) -> dict[uuid.UUID, str]:
    return {row.id: row.title for row in connection.execute(select(_POSITIONS.c.id, _POSITIONS.c.title))}


def _columns(connection: Connection, name: str) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns(name)}


async def test_upgrade_ranks_tasks_in_creation_order_and_downgrade_keeps_them(fresh_url: str) -> None:  # noqa: F811
    await asyncio.to_thread(migrate, fresh_url, "0006")
    seeded = await on_database(fresh_url, _seed)
    titles = await on_database(fresh_url, _titles)
    triggers = await on_database(fresh_url, task_triggers)

    await asyncio.to_thread(migrate, fresh_url, "0007")

    positions = await on_database(fresh_url, _positions)
    assert {task: title for task, (title, _) in positions.items()} == titles
    for task, (_, position) in positions.items():
        assert position.startswith(time_key(seeded["tasks"][task][1]))  # its creation instant, then a tie-break
    first = [positions[t][1] for t, (owner, _) in seeded["tasks"].items() if owner == seeded["users"][0]]
    assert first[0] < min(first[1:3])  # creation order kept
    assert max(first[1:3]) < first[3]
    assert first[1] != first[2]  # same instant, distinct ranks
    assert {"parent_id", "position", "due_on", "rrule", "timezone"} <= await on_database(
        fresh_url, lambda c: _columns(c, "tasks")
    )
    assert "timezone" in await on_database(fresh_url, lambda c: _columns(c, "users"))
    assert await on_database(fresh_url, task_triggers) == triggers

    await asyncio.to_thread(migrate, fresh_url, "0006", down=True)
    assert await on_database(fresh_url, _titles) == titles
    assert not {"parent_id", "position", "due_on", "rrule", "timezone"} & await on_database(
        fresh_url, lambda c: _columns(c, "tasks")
    )
    assert "timezone" not in await on_database(fresh_url, lambda c: _columns(c, "users"))
    tables = await on_database(fresh_url, lambda c: inspect(c).get_table_names())
    assert not {"task_completions", "task_reminders"} & set(tables)
    assert await on_database(fresh_url, task_triggers) == triggers

    await asyncio.to_thread(migrate, fresh_url, "head")
    assert await on_database(fresh_url, _titles) == titles
