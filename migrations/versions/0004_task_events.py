"""Live events: every task write notifies the owner's listeners (PostgreSQL LISTEN/NOTIFY).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

A row trigger sends ``NOTIFY task_events_<user id, 32 hex digits>, '<revision>'`` on each insert
and on each update that moves the revision (a delete is an update: its tombstone). One channel per
owner: a process listens only to the owners it holds streams of, so a write nobody watches wakes
no process at all. PostgreSQL delivers it when
the writing transaction commits (never for one rolled back), once per distinct payload per
transaction, to every process listening, whichever replica wrote. The payload only wakes the
owner's streams; they read the change feed (todo_service/events/). SQLite gets nothing here: its
streams are woken in-process (docs/adr/0004-live-events-over-listen-notify.md).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE FUNCTION notify_task_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_events_' || replace(NEW.user_id::text, '-', ''), NEW.revision::text);
    RETURN NULL;
END
$$
"""
_TRIGGERS = (
    "CREATE TRIGGER tasks_notify_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION notify_task_event()",
    (
        "CREATE TRIGGER tasks_notify_update AFTER UPDATE ON tasks FOR EACH ROW "
        "WHEN (OLD.revision IS DISTINCT FROM NEW.revision) EXECUTE FUNCTION notify_task_event()"
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    for trigger in _TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS tasks_notify_update ON tasks")
    op.execute("DROP TRIGGER IF EXISTS tasks_notify_insert ON tasks")
    op.execute("DROP FUNCTION IF EXISTS notify_task_event()")
