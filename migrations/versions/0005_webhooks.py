"""Webhooks: endpoints, the outbox and its attempts, and the triggers on ``tasks`` that fill the outbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

A task write inserts one outbox row per enabled webhook of the task's owner subscribed to the event,
inside the writing statement (an AFTER trigger), so the event commits or rolls back with the change
and the write itself gains no round trip. The payload is captured then, as JSON built from the row
(the task's state of that change, not whatever it is when the delivery runs). An UPDATE that changes
nothing (the task routes run one to check permissions) makes no event: on PostgreSQL the trigger
fires only when the row differs, on SQLite only when the revision moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = (
    "id, webhook_id, event, task_id, revision, payload, traceparent, created_at, status, next_attempt_at, attempts"
)


def _pg_time(column: str) -> str:
    return f"""to_char(NEW.{column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


# PostgreSQL: one function for both triggers; the writer's traceparent comes from a transaction-local
# setting when it set one (SET LOCAL todo_service.traceparent), else NULL.
_PG_FUNCTION = f"""
CREATE FUNCTION webhooks_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deleted boolean := NEW.deleted_at IS NOT NULL;
    kind text := CASE WHEN NEW.deleted_at IS NOT NULL THEN 'task.deleted' ELSE 'task.upserted' END;
BEGIN
    INSERT INTO webhook_deliveries ({_COLUMNS})
    SELECT gen_random_uuid(), w.id, kind, NEW.id, NEW.revision,
        CASE WHEN deleted THEN json_build_object(
            'type', kind, 'timestamp', {_pg_time("deleted_at")},
            'data', json_build_object('task_id', NEW.id, 'deleted_at', {_pg_time("deleted_at")}))
        ELSE json_build_object(
            'type', kind, 'timestamp', {_pg_time("updated_at")},
            'data', json_build_object('task', json_build_object(
                'id', NEW.id, 'user_id', NEW.user_id, 'title', NEW.title, 'description', NEW.description,
                'completed', NEW.completed, 'priority', NEW.priority, 'due_date', {_pg_time("due_date")},
                'completed_at', {_pg_time("completed_at")}, 'created_at', {_pg_time("created_at")},
                'updated_at', {_pg_time("updated_at")}, 'etag', '"' || NEW.revision || '"')))
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
_PG_TRIGGERS = (
    "CREATE TRIGGER tasks_webhooks_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION webhooks_outbox()",
    (
        "CREATE TRIGGER tasks_webhooks_update AFTER UPDATE ON tasks FOR EACH ROW "
        "WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION webhooks_outbox()"
    ),
)


def _lite_uuid(column: str) -> str:
    h = f"hex(NEW.{column})"
    parts = (f"substr({h}, 1, 8)", f"substr({h}, 9, 4)", f"substr({h}, 13, 4)", f"substr({h}, 17, 4)")
    joined = " || '-' || ".join(parts)
    return f"lower({joined} || '-' || substr({h}, 21))"


def _lite_time(column: str) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): the same instant in RFC 3339.
    return f"(replace(NEW.{column}, ' ', 'T') || 'Z')"


_LITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_LITE_UPSERT = f"""json_object(
    'type', 'task.upserted', 'timestamp', {_lite_time("updated_at")},
    'data', json_object('task', json_object(
        'id', {_lite_uuid("id")}, 'user_id', {_lite_uuid("user_id")}, 'title', NEW.title,
        'description', NEW.description, 'completed', json(CASE WHEN NEW.completed THEN 'true' ELSE 'false' END),
        'priority', NEW.priority, 'due_date', {_lite_time("due_date")}, 'completed_at', {_lite_time("completed_at")},
        'created_at', {_lite_time("created_at")}, 'updated_at', {_lite_time("updated_at")},
        'etag', '"' || NEW.revision || '"')))"""
_LITE_DELETE = f"""json_object(
    'type', 'task.deleted', 'timestamp', {_lite_time("deleted_at")},
    'data', json_object('task_id', {_lite_uuid("id")}, 'deleted_at', {_lite_time("deleted_at")}))"""


def _lite_insert(kind: str, payload: str, subscribed: str) -> str:
    return f"""INSERT INTO webhook_deliveries ({_COLUMNS})
    SELECT randomblob(16), w.id, '{kind}', NEW.id, NEW.revision, {payload}, NULL, {_LITE_NOW}, 'pending', {_LITE_NOW}, 0
    FROM webhooks AS w WHERE w.user_id = NEW.user_id AND w.enabled AND w.{subscribed}"""  # noqa: S608  (built from constants)


_LITE_TRIGGERS = (
    f"""CREATE TRIGGER tasks_webhooks_insert AFTER INSERT ON tasks
    BEGIN {_lite_insert("task.upserted", _LITE_UPSERT, "on_task_upserted")}; END""",
    f"""CREATE TRIGGER tasks_webhooks_upsert AFTER UPDATE OF revision ON tasks
    WHEN NEW.revision <> OLD.revision AND NEW.deleted_at IS NULL
    BEGIN {_lite_insert("task.upserted", _LITE_UPSERT, "on_task_upserted")}; END""",
    f"""CREATE TRIGGER tasks_webhooks_delete AFTER UPDATE OF revision ON tasks
    WHEN NEW.revision <> OLD.revision AND NEW.deleted_at IS NOT NULL
    BEGIN {_lite_insert("task.deleted", _LITE_DELETE, "on_task_deleted")}; END""",
)
_TRIGGER_NAMES = ("tasks_webhooks_insert", "tasks_webhooks_update", "tasks_webhooks_upsert", "tasks_webhooks_delete")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "webhooks",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("on_task_upserted", sa.Boolean(), nullable=False),
        sa.Column("on_task_deleted", sa.Boolean(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_since", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("disabled_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(length=255), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_webhooks_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_user_id"), "webhooks", ["user_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("webhook_id", GUID(length=16), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("task_id", GUID(length=16), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("traceparent", sa.String(length=64), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_attempt_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim", GUID(length=16), nullable=True),
        sa.Column("delivered_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name=op.f("fk_webhook_deliveries_webhook_id_webhooks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_status_next_attempt_at", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_webhook_id_created_at", "webhook_deliveries", ["webhook_id", "created_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("delivery_id", GUID(length=16), nullable=False),
        sa.Column("attempted_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_bytes", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(op.f("ix_webhook_attempts_delivery_id"), "webhook_attempts", ["delivery_id"])
    if sqlite:
        for trigger in _LITE_TRIGGERS:
            op.execute(trigger)
    else:
        op.execute(_PG_FUNCTION)
        for trigger in _PG_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + ("" if sqlite else " ON tasks"))
    if not sqlite:
        op.execute("DROP FUNCTION IF EXISTS webhooks_outbox()")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
