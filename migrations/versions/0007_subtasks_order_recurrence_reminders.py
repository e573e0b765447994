"""Subtasks, manual order, recurrence, all-day dates, time zones and reminders.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

``tasks`` gains ``parent_id`` (subtasks), ``position`` (manual order, a rank of tasks/ranks.py),
``due_on`` (an all-day due date), ``rrule``, ``timezone``, ``overdue_at`` (when it becomes
overdue: ``due_date`` for every existing task) and ``reminded_at`` (the last reminder fired);
``users`` gains ``timezone``. New tables: ``task_completions`` (the completed occurrences of
recurring tasks) and ``task_reminders``.

Every existing task gets the position of its creation instant (``time_key(created_at)`` with its
id's first digits to break ties), so each list keeps its creation order; the sibling positions are
then unique among live siblings (``uq_tasks_subtasks_position``, ``uq_tasks_top_level_position``).
Columns are only added (nullable, or ``position`` with a default the backfill replaces), so SQLite
needs no table copy and its triggers on ``tasks`` stay as they are.

Downgrade drops what was added; every task and its other columns stay (subtasks become top-level
tasks, recurrence and reminders are forgotten).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

# A copy of ``todo_service/tasks/ranks.py``'s ``time_key`` as it was when this migration was
# written: a migration must not change when the application's code does (a test keeps them equal).
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_key(instant: datetime) -> str:
    """The rank of a task created at ``instant``: later instants sort after."""
    micros = max(0, (instant - _EPOCH) // timedelta(microseconds=1))
    digits = ""
    while micros:
        micros, digit = divmod(micros, len(DIGITS))
        digits = DIGITS[digit] + digits
    digits = digits.rjust(10, DIGITS[0])
    return chr(ord("n") + len(digits) - 1) + digits


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000
_TASKS = sa.table(
    "tasks",
    sa.column("id", GUID(length=16)),
    sa.column("created_at", DateTimeUTC(timezone=True)),
    sa.column("position", sa.String(64)),
)


def _backfill_positions() -> None:
    """Each task's rank is its creation instant, plus two digits of its id (never 0 last) against ties."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_TASKS.c.id, _TASKS.c.created_at)).all()
    update = sa.update(_TASKS).where(_TASKS.c.id == sa.bindparam("task_id")).values(position=sa.bindparam("rank"))
    values = []
    for task_id, created_at in rows:
        tie = DIGITS[task_id.int % 36] + DIGITS[1 + (task_id.int >> 8) % 35]
        values.append({"task_id": task_id, "rank": time_key(created_at) + tie})
        if len(values) == _BATCH:
            bind.execute(update, values)
            values = []
    if values:
        bind.execute(update, values)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    position_type = sa.String(64) if sqlite else sa.String(64, collation="C")
    op.add_column("tasks", sa.Column("parent_id", GUID(length=16), nullable=True))
    op.add_column("tasks", sa.Column("position", position_type, server_default="n0", nullable=False))
    op.add_column("tasks", sa.Column("due_on", sa.Date(), nullable=True))
    op.add_column("tasks", sa.Column("rrule", sa.String(length=500), nullable=True))
    op.add_column("tasks", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column("tasks", sa.Column("overdue_at", DateTimeUTC(timezone=True), nullable=True))
    op.add_column("tasks", sa.Column("reminded_at", DateTimeUTC(timezone=True), nullable=True))
    op.add_column("users", sa.Column("timezone", sa.String(length=64), nullable=True))
    _backfill_positions()
    op.execute("UPDATE tasks SET overdue_at = due_date")  # every existing due is an instant
    if not sqlite:  # every insert names its position (SQLite cannot drop a default without a table copy)
        op.alter_column("tasks", "position", server_default=None)
    for name, columns, parent in (
        ("uq_tasks_subtasks_position", ["list_id", "parent_id", "position"], "parent_id IS NOT NULL"),
        ("uq_tasks_top_level_position", ["list_id", "position"], "parent_id IS NULL"),
    ):
        where = sa.text(f"deleted_at IS NULL AND {parent}")
        op.create_index(name, "tasks", columns, unique=True, postgresql_where=where, sqlite_where=where)
    op.create_index("ix_tasks_user_id_overdue_at", "tasks", ["user_id", "overdue_at"])
    subtask = sa.text("parent_id IS NOT NULL")
    op.create_index("ix_tasks_parent_id", "tasks", ["parent_id"], postgresql_where=subtask, sqlite_where=subtask)
    op.create_table(
        "task_completions",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("task_id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("completed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("due_date", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_completions_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_completions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_completions")),
    )
    op.create_index("ix_task_completions_task_id_completed_at", "task_completions", ["task_id", "completed_at"])
    op.create_table(
        "task_reminders",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("task_id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("before_due", sa.Integer(), nullable=True),
        sa.Column("fire_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("fired_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_reminders_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_reminders_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_reminders")),
    )
    op.create_index("ix_task_reminders_task_id", "task_reminders", ["task_id"])
    op.create_index(
        "ix_task_reminders_fire_at",
        "task_reminders",
        ["fire_at"],
        postgresql_where=sa.text("fired_at IS NULL"),
        sqlite_where=sa.text("fired_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("task_reminders")
    op.drop_table("task_completions")
    op.drop_index("ix_tasks_user_id_overdue_at", table_name="tasks")
    op.drop_index("ix_tasks_parent_id", table_name="tasks")
    op.drop_index("uq_tasks_top_level_position", table_name="tasks")
    op.drop_index("uq_tasks_subtasks_position", table_name="tasks")
    # SQLite (3.35+) drops a column in place when nothing (index, trigger, constraint) names it.
    op.drop_column("users", "timezone")
    for name in ("reminded_at", "overdue_at", "timezone", "rrule", "due_on", "position", "parent_id"):
        op.drop_column("tasks", name)
