"""Migration 0009 (reminded_revision, whole tasks in webhook payloads) on a database holding rows of 0008, both ways."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Boolean, LargeBinary, String, column, insert, inspect, select, table, text

from tests.integration.test_migrations import fresh_url, on_database  # noqa: F401  (fresh_url is a fixture)
from tests.migration_rows import LISTS, TASKS, insert_users, task_triggers
from tests.servers import migrate
from todo_service.tasks.schemas import TaskRead

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_NOW = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
_WEBHOOKS = table(
    "webhooks",
    column("id", GUID()),
    column("user_id", GUID()),
    column("url", String()),
    column("on_task_upserted", Boolean()),
    column("on_task_deleted", Boolean()),
    column("secret_encrypted", LargeBinary()),
    column("enabled", Boolean()),
    column("created_at", DateTimeUTC()),
    column("updated_at", DateTimeUTC()),
)
_DELIVERIES = table("webhook_deliveries", column("task_id", GUID()), column("payload", String()))


def _seed(connection: Connection) -> uuid.UUID:
    """A user with a webhook and one task (its delivery written by 0005's trigger)."""
    (user,) = insert_users(connection, 1, email="m@example.com")
    connection.execute(
        insert(_WEBHOOKS).values(
            id=uuid.uuid4(),
            user_id=user,
            url="https://hooks.example.com/",
            on_task_upserted=True,
            on_task_deleted=True,
            secret_encrypted=b"x",
            enabled=True,
            created_at=_NOW,
            updated_at=_NOW,
        )
    )
    connection.commit()
    _add_task(connection, user, "before", revision=1)
    return user


def _add_task(connection: Connection, user: uuid.UUID, title: str, *, revision: int) -> uuid.UUID:
    inbox = connection.execute(select(LISTS.c.id).where(LISTS.c.user_id == user)).scalar_one()
    task = uuid.uuid4()
    row = {"id": task, "user_id": user, "list_id": inbox, "title": title, "completed": False, "priority": "medium"}
    connection.execute(
        insert(TASKS).values(**row, position=f"n{revision}", revision=revision, created_at=_NOW, updated_at=_NOW)
    )
    connection.commit()  # PostgreSQL's trigger runs at the commit since 0009
    return task


def _payload_task(connection: Connection, task: uuid.UUID) -> dict[str, Any]:
    (payload,) = connection.execute(select(_DELIVERIES.c.payload).where(_DELIVERIES.c.task_id == task)).scalars()
    return dict(json.loads(payload)["data"]["task"])


def _titles(connection: Connection) -> dict[uuid.UUID, str]:
    return {row.id: row.title for row in connection.execute(select(TASKS.c.id, TASKS.c.title))}


def _label_triggers(connection: Connection) -> set[str]:
    query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'labels'"
    return {row[0] for row in connection.execute(text(query))}


def _deferred(connection: Connection) -> set[str]:
    query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'tasks'::regclass AND tgdeferrable AND tginitdeferred"
    return {row[0] for row in connection.execute(text(query))}


def _columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("tasks")}


async def test_upgrade_adds_the_column_and_whole_payloads_and_downgrade_restores_0008(
    fresh_url: str,  # noqa: F811
    backend: str,
) -> None:
    await asyncio.to_thread(migrate, fresh_url, "0008")
    user = await on_database(fresh_url, _seed)
    titles = await on_database(fresh_url, _titles)
    triggers = await on_database(fresh_url, task_triggers)
    old_fields = {"id", "user_id", "title", "description", "completed", "priority", "due_date"}
    old_fields |= {"completed_at", "created_at", "updated_at", "etag"}
    (before,) = titles
    assert set(await on_database(fresh_url, lambda c: _payload_task(c, before))) == old_fields

    await asyncio.to_thread(migrate, fresh_url, "0009")
    assert "reminded_revision" in await on_database(fresh_url, _columns)
    assert await on_database(fresh_url, _titles) == titles
    found = await on_database(fresh_url, lambda c: c.execute(text("SELECT reminded_revision FROM tasks")).all())
    assert [row[0] for row in found] == [None]
    if backend == "sqlite":  # SQLite kept its other triggers (no table copy) and gained the refresh
        assert await on_database(fresh_url, task_triggers) == triggers | {"tasks_webhooks_refresh"}
        assert await on_database(fresh_url, _label_triggers) == {"labels_webhooks_refresh"}
    else:
        assert await on_database(fresh_url, task_triggers) == triggers
        assert await on_database(fresh_url, _deferred) == {"tasks_webhooks_insert", "tasks_webhooks_update"}
    after = await on_database(fresh_url, lambda c: _add_task(c, user, "after", revision=2))
    task = await on_database(fresh_url, lambda c: _payload_task(c, after))
    assert set(task) == {field.name for field in msgspec.structs.fields(TaskRead)}
    assert (task["title"], task["label_ids"], task["parent_id"], task["position"]) == ("after", [], None, "n2")
    assert (task["created_at"], task["etag"]) == ("2026-12-01T08:30:00Z", '"2"')

    await asyncio.to_thread(migrate, fresh_url, "0008", down=True)
    assert "reminded_revision" not in await on_database(fresh_url, _columns)
    assert await on_database(fresh_url, task_triggers) == triggers
    if backend == "postgresql":
        assert await on_database(fresh_url, _deferred) == set()
    else:
        assert await on_database(fresh_url, _label_triggers) == set()
    again = await on_database(fresh_url, lambda c: _add_task(c, user, "down again", revision=3))
    assert set(await on_database(fresh_url, lambda c: _payload_task(c, again))) == old_fields
    assert set(await on_database(fresh_url, _titles)) == {before, after, again}

    await asyncio.to_thread(migrate, fresh_url, "head")
    assert "reminded_revision" in await on_database(fresh_url, _columns)
