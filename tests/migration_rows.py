"""Rows of an older schema for the migration tests: users inserted as the schema before a migration
holds them (Core, not the ORM models, which follow the newest schema), and the triggers on ``tasks``
that a migration must keep (SQLite's table copies drop them unless recreated).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import BigInteger, Boolean, String, column, insert, table, text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ("LISTS", "NOW", "TASKS", "USERS", "insert_users", "task_triggers")

NOW = datetime(2026, 12, 1, tzinfo=UTC)
USERS = table(
    "users",
    column("id", GUID()),
    column("email", String()),
    column("first_name", String()),
    column("last_name", String()),
    column("password_hash", String()),
    column("role", String()),
    column("is_active", Boolean()),
    column("created_at", DateTimeUTC()),
    column("updated_at", DateTimeUTC()),
)

# Tasks as 0007 and later hold them (the columns these tests write and read), and their lists.
TASKS = table(
    "tasks",
    column("id", GUID()),
    column("user_id", GUID()),
    column("list_id", GUID()),
    column("title", String()),
    column("description", String()),
    column("completed", Boolean()),
    column("priority", String()),
    column("position", String()),
    column("revision", BigInteger()),
    column("created_at", DateTimeUTC()),
    column("updated_at", DateTimeUTC()),
)
LISTS = table("task_lists", column("id", GUID()), column("user_id", GUID()))


def insert_users(connection: Connection, count: int, *, email: str = "u{n}@example.com") -> list[uuid.UUID]:
    """Insert ``count`` active users (``email`` formatted with their index); their ids, in order."""
    users = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": user,
            "email": email.format(n=n),
            "first_name": "A",
            "last_name": "B",
            "password_hash": "x",
            "role": "user",
            "is_active": True,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for n, user in enumerate(users)
    ]
    connection.execute(insert(USERS), rows)
    return users


def task_triggers(connection: Connection) -> set[str]:
    """The names of the triggers on ``tasks``."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'tasks'::regclass AND NOT tgisinternal"
    return {row[0] for row in connection.execute(text(query))}
