"""Code a migration keeps a copy of (migrations must not change with the application) still agrees with it."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

from todo_service.tasks.ranks import time_key

MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0007_subtasks_order_recurrence_reminders.py"


def test_migration_0007_ranks_existing_tasks_as_the_application_ranks_new_ones() -> None:
    spec = importlib.util.spec_from_file_location("migration_0007", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    start = datetime(1970, 1, 1, tzinfo=UTC)
    instants = [start, start + timedelta(microseconds=1), datetime(2026, 12, 5, 14, 0, 0, 123456, tzinfo=UTC)]
    instants += [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n * 7919) for n in range(200)]
    assert [migration.time_key(instant) for instant in instants] == [time_key(instant) for instant in instants]
