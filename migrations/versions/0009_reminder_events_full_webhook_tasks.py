"""Fired reminders in the feed (``tasks.reminded_revision``), and webhook tasks equal to what GET answers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

``tasks.reminded_revision`` (nullable) is the revision the reminder worker stamped with
``reminded_at``; while the task is still at it, the change feed and SSE show that change as a
fired reminder. SQLite adds the column in place (no table copy), so its triggers stay.

The webhook outbox triggers of 0005 (with 0006's update condition) built ``data.task`` from the
row with the fields of that time; the task has since gained its list, labels, parent, position,
all-day date, zone, recurrence, overdue and reminder fields. Here the payload is the whole task, as
``GET .../tasks/{id}`` encodes it (times as msgspec writes them: no fraction when it is zero).

``label_ids`` live in ``task_labels``, written after a new task's row (their foreign key needs it):

- **PostgreSQL**: the triggers become constraint triggers deferred to the commit, and the function
  reads the task as the transaction leaves it (labels included). A revision is the transaction's
  id, so that is exactly the task at that revision; several writes of one task in a transaction
  make one delivery per webhook (the first queued; the others find it and add nothing).
- **SQLite**: every write statement is a revision of its own, so the triggers run with the row. A
  create with labels then runs a write that stamps no new revision (the task's re-read), and the
  trigger ``tasks_webhooks_refresh`` sets the labels of that revision's pending deliveries.

Downgrade restores the triggers of 0005/0006 and drops the column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    "id, webhook_id, event, task_id, revision, payload, traceparent, created_at, status, next_attempt_at, attempts"
)
_UPDATE_TRIGGERS = ("tasks_webhooks_insert", "tasks_webhooks_update")


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_time(value: str) -> str:
    """A timestamptz as msgspec writes it: UTC, ``Z``, microseconds only when not zero (NULL stays NULL)."""
    utc = f"{value} AT TIME ZONE 'UTC'"
    fraction = f"CASE WHEN extract(microseconds FROM {value}) % 1000000 = 0 THEN '' ELSE to_char({utc}, '.US') END"
    return f"""(to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || {fraction} || 'Z')"""


_PG_TASK = f"""json_build_object(
    'id', t.id, 'user_id', t.user_id, 'title', t.title, 'description', t.description,
    'completed', t.completed, 'priority', t.priority, 'due_date', {_pg_time("t.due_date")},
    'completed_at', {_pg_time("t.completed_at")}, 'created_at', {_pg_time("t.created_at")},
    'updated_at', {_pg_time("t.updated_at")}, 'etag', '"' || t.revision || '"', 'list_id', t.list_id,
    'label_ids', COALESCE(
        (SELECT json_agg(tl.label_id ORDER BY tl.label_id) FROM task_labels AS tl WHERE tl.task_id = t.id),
        '[]'::json),
    'parent_id', t.parent_id, 'position', t.position, 'due_on', to_char(t.due_on, 'YYYY-MM-DD'),
    'timezone', t.timezone, 'rrule', t.rrule, 'overdue_at', {_pg_time("t.overdue_at")},
    'reminded_at', {_pg_time("t.reminded_at")})"""  # noqa: S608  (built from constants)

# Run at commit (deferred): the task as the transaction leaves it. One delivery per webhook, task and
# revision (a revision is the transaction): a later event of the same task finds it and adds nothing.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION webhooks_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t tasks%ROWTYPE;
    deleted boolean;
    kind text;
    body text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks AS w WHERE w.user_id = NEW.user_id AND w.enabled) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO t FROM tasks WHERE id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    deleted := t.deleted_at IS NOT NULL;
    kind := CASE WHEN deleted THEN 'task.deleted' ELSE 'task.upserted' END;
    body := CASE WHEN deleted THEN json_build_object(
            'type', kind, 'timestamp', {_pg_time("t.deleted_at")},
            'data', json_build_object('task_id', t.id, 'deleted_at', {_pg_time("t.deleted_at")}))
        ELSE json_build_object(
            'type', kind, 'timestamp', {_pg_time("t.updated_at")}, 'data', json_build_object('task', {_PG_TASK}))
        END::text;
    INSERT INTO webhook_deliveries ({_COLUMNS})
    SELECT gen_random_uuid(), w.id, kind, t.id, t.revision, body,
        NULLIF(current_setting('todo_service.traceparent', true), ''), now(), 'pending', now(), 0
    FROM webhooks AS w
    WHERE w.user_id = t.user_id AND w.enabled
        AND CASE WHEN deleted THEN w.on_task_deleted ELSE w.on_task_upserted END
        AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries AS d
            WHERE d.webhook_id = w.id AND d.created_at = now() AND d.task_id = t.id AND d.revision = t.revision
                AND d.event IN ('task.upserted', 'task.deleted'));
    RETURN NULL;
END
$$
"""  # noqa: S608  (built from constants)
_PG_TRIGGERS = (
    (
        "CREATE CONSTRAINT TRIGGER tasks_webhooks_insert AFTER INSERT ON tasks DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION webhooks_outbox()"
    ),
    (
        "CREATE CONSTRAINT TRIGGER tasks_webhooks_update AFTER UPDATE ON tasks DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision) EXECUTE FUNCTION webhooks_outbox()"
    ),
)


# -- SQLite -------------------------------------------------------------------------------------


def _lite_uuid(value: str) -> str:
    h = f"hex({value})"
    parts = (f"substr({h}, 1, 8)", f"substr({h}, 9, 4)", f"substr({h}, 13, 4)", f"substr({h}, 17, 4)")
    joined = " || '-' || ".join(parts)
    return f"lower({joined} || '-' || substr({h}, 21))"


def _lite_time(column: str) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); msgspec leaves out a zero fraction.
    value = f"NEW.{column}"
    fraction = f"CASE WHEN substr({value}, 20) IN ('', '.000000') THEN '' ELSE substr({value}, 20) END"
    return f"(replace(substr({value}, 1, 19), ' ', 'T') || {fraction} || 'Z')"


def _lite_labels(task: str, *, without: str = "") -> str:
    """The label ids of task ``task`` as a JSON array, as GET sorts them (``without``: one left out)."""
    left_out = f" AND tl.label_id <> {without}" if without else ""
    return f"""(SELECT json_group_array({_lite_uuid("label_id")}) FROM (
    SELECT tl.label_id FROM task_labels AS tl WHERE tl.task_id = {task}{left_out} ORDER BY hex(tl.label_id)))"""  # noqa: S608


_LITE_LABELS = _lite_labels("NEW.id")
_LITE_UPSERT = f"""json_object(
    'type', 'task.upserted', 'timestamp', {_lite_time("updated_at")},
    'data', json_object('task', json_object(
        'id', {_lite_uuid("NEW.id")}, 'user_id', {_lite_uuid("NEW.user_id")}, 'title', NEW.title,
        'description', NEW.description, 'completed', json(CASE WHEN NEW.completed THEN 'true' ELSE 'false' END),
        'priority', NEW.priority, 'due_date', {_lite_time("due_date")}, 'completed_at', {_lite_time("completed_at")},
        'created_at', {_lite_time("created_at")}, 'updated_at', {_lite_time("updated_at")},
        'etag', '"' || NEW.revision || '"', 'list_id', {_lite_uuid("NEW.list_id")},
        'label_ids', json({_LITE_LABELS}),
        'parent_id', CASE WHEN NEW.parent_id IS NULL THEN NULL ELSE {_lite_uuid("NEW.parent_id")} END,
        'position', NEW.position, 'due_on', NEW.due_on, 'timezone', NEW.timezone, 'rrule', NEW.rrule,
        'overdue_at', {_lite_time("overdue_at")}, 'reminded_at', {_lite_time("reminded_at")})))"""
_LITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _lite_insert(payload: str) -> str:
    return f"""INSERT INTO webhook_deliveries ({_COLUMNS})
    SELECT randomblob(16), w.id, 'task.upserted', NEW.id, NEW.revision, {payload}, NULL, {_LITE_NOW}, 'pending',
        {_LITE_NOW}, 0
    FROM webhooks AS w WHERE w.user_id = NEW.user_id AND w.enabled AND w.on_task_upserted"""  # noqa: S608


def _lite_upsert_triggers(payload: str) -> tuple[str, str]:
    """SQLite's two triggers that put a ``task.upserted`` with ``payload`` in the outbox (insert, new revision)."""
    return (
        f"""CREATE TRIGGER tasks_webhooks_insert AFTER INSERT ON tasks
    BEGIN {_lite_insert(payload)}; END""",
        f"""CREATE TRIGGER tasks_webhooks_upsert AFTER UPDATE OF revision ON tasks
    WHEN NEW.revision <> OLD.revision AND NEW.deleted_at IS NULL
    BEGIN {_lite_insert(payload)}; END""",
    )


_LITE_TRIGGERS = (
    *_lite_upsert_triggers(_LITE_UPSERT),
    # A write that stamps no new revision: that revision's pending, unsent deliveries get the task's
    # labels as they are now (a create writes them after its row, then re-reads it this way).
    f"""CREATE TRIGGER tasks_webhooks_refresh AFTER UPDATE OF revision ON tasks
    WHEN NEW.revision = OLD.revision AND NEW.deleted_at IS NULL
    BEGIN UPDATE webhook_deliveries SET payload = json_set(payload, '$.data.task.label_ids', json({_LITE_LABELS}))
    WHERE status = 'pending' AND task_id = NEW.id AND revision = NEW.revision AND event = 'task.upserted'
        AND attempts = 0 AND claim IS NULL; END""",  # noqa: S608  (built from constants)
    # Deleting a label first moves the revision of each live task carrying it (labels/repository.py),
    # then the label goes and task_labels with it: those revisions' pending deliveries lose it here.
    f"""CREATE TRIGGER labels_webhooks_refresh BEFORE DELETE ON labels
    BEGIN UPDATE webhook_deliveries SET payload = json_set(payload, '$.data.task.label_ids',
        json({_lite_labels("webhook_deliveries.task_id", without="OLD.id")}))
    WHERE status = 'pending' AND event = 'task.upserted' AND attempts = 0 AND claim IS NULL
        AND EXISTS (SELECT 1 FROM tasks AS t JOIN task_labels AS tl ON tl.task_id = t.id
            WHERE t.id = webhook_deliveries.task_id AND t.revision = webhook_deliveries.revision
                AND tl.label_id = OLD.id); END""",  # noqa: S608  (built from constants)
)
_LITE_NAMES = ("tasks_webhooks_insert", "tasks_webhooks_upsert", "tasks_webhooks_refresh", "labels_webhooks_refresh")


# -- 0005's versions (PostgreSQL's update trigger with 0006's condition), for the downgrade --------


def _old_pg_time(column: str) -> str:
    return f"""to_char(NEW.{column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _old_lite_time(column: str) -> str:
    return f"(replace(NEW.{column}, ' ', 'T') || 'Z')"


_OLD_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION webhooks_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deleted boolean := NEW.deleted_at IS NOT NULL;
    kind text := CASE WHEN NEW.deleted_at IS NOT NULL THEN 'task.deleted' ELSE 'task.upserted' END;
BEGIN
    INSERT INTO webhook_deliveries ({_COLUMNS})
    SELECT gen_random_uuid(), w.id, kind, NEW.id, NEW.revision,
        CASE WHEN deleted THEN json_build_object(
            'type', kind, 'timestamp', {_old_pg_time("deleted_at")},
            'data', json_build_object('task_id', NEW.id, 'deleted_at', {_old_pg_time("deleted_at")}))
        ELSE json_build_object(
            'type', kind, 'timestamp', {_old_pg_time("updated_at")},
            'data', json_build_object('task', json_build_object(
                'id', NEW.id, 'user_id', NEW.user_id, 'title', NEW.title, 'description', NEW.description,
                'completed', NEW.completed, 'priority', NEW.priority, 'due_date', {_old_pg_time("due_date")},
                'completed_at', {_old_pg_time("completed_at")}, 'created_at', {_old_pg_time("created_at")},
                'updated_at', {_old_pg_time("updated_at")}, 'etag', '"' || NEW.revision || '"')))
        END::text,
        NULLIF(current_setting('todo_service.traceparent', true), ''),
        now(), 'pending', now(), 0
    FROM webhooks AS w
    WHERE w.user_id = NEW.user_id AND w.enabled
        AND CASE WHEN deleted THEN w.on_task_deleted ELSE w.on_task_upserted END;
    RETURN NULL;
END
$$
"""  # noqa: S608  (built from constants)
_OLD_PG_TRIGGERS = (
    "CREATE TRIGGER tasks_webhooks_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION webhooks_outbox()",
    (
        "CREATE TRIGGER tasks_webhooks_update AFTER UPDATE ON tasks FOR EACH ROW "
        "WHEN (OLD.revision IS DISTINCT FROM NEW.revision) EXECUTE FUNCTION webhooks_outbox()"
    ),
)
_OLD_LITE_UPSERT = f"""json_object(
    'type', 'task.upserted', 'timestamp', {_old_lite_time("updated_at")},
    'data', json_object('task', json_object(
        'id', {_lite_uuid("NEW.id")}, 'user_id', {_lite_uuid("NEW.user_id")}, 'title', NEW.title,
        'description', NEW.description, 'completed', json(CASE WHEN NEW.completed THEN 'true' ELSE 'false' END),
        'priority', NEW.priority, 'due_date', {_old_lite_time("due_date")},
        'completed_at', {_old_lite_time("completed_at")},
        'created_at', {_old_lite_time("created_at")}, 'updated_at', {_old_lite_time("updated_at")},
        'etag', '"' || NEW.revision || '"')))"""
_OLD_LITE_TRIGGERS = _lite_upsert_triggers(_OLD_LITE_UPSERT)


def _replace_triggers(*, sqlite: bool, function: str, pg_triggers: tuple[str, ...], lite: tuple[str, ...]) -> None:
    if sqlite:
        for name in _LITE_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for trigger in lite:
            op.execute(trigger)
        return
    for name in _UPDATE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON tasks")
    op.execute(function)
    for trigger in pg_triggers:
        op.execute(trigger)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("tasks", sa.Column("reminded_revision", sa.BigInteger(), nullable=True))
    _replace_triggers(sqlite=sqlite, function=_PG_FUNCTION, pg_triggers=_PG_TRIGGERS, lite=_LITE_TRIGGERS)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _replace_triggers(sqlite=sqlite, function=_OLD_PG_FUNCTION, pg_triggers=_OLD_PG_TRIGGERS, lite=_OLD_LITE_TRIGGERS)
    # SQLite (3.35+) drops a column in place when nothing (index, trigger, constraint) names it.
    op.drop_column("tasks", "reminded_revision")
