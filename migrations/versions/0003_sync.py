"""Sync: task revisions and tombstones (ETags, the change feed), idempotency keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Existing tasks get a revision now (PostgreSQL: this migration's transaction id; SQLite: 1), so
every task has an ETag and appears once in a feed read from the beginning. On SQLite a trigger
moves the one-row ``change_counter`` forward within each writing statement (PostgreSQL's
revisions are transaction ids and need no counter: see todo_service/db/revisions.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Moves the counter to a revision just written (the statements read ``value + 1``).
_TRIGGERS = (
    """CREATE TRIGGER tasks_revision_insert AFTER INSERT ON tasks
    BEGIN UPDATE change_counter SET value = NEW.revision WHERE value < NEW.revision; END""",
    """CREATE TRIGGER tasks_revision_update AFTER UPDATE OF revision ON tasks
    BEGIN UPDATE change_counter SET value = NEW.revision WHERE value < NEW.revision; END""",
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("users", sa.Column("feed_floor", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("tasks", sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("tasks", sa.Column("deleted_at", DateTimeUTC(timezone=True), nullable=True))
    op.execute(
        "UPDATE tasks SET revision = 1" if sqlite else "UPDATE tasks SET revision = pg_current_xact_id()::text::bigint"
    )
    op.create_index("ix_tasks_user_id_revision", "tasks", ["user_id", "revision", "id"])
    op.create_index("ix_tasks_deleted_at", "tasks", ["deleted_at"])
    op.create_table(
        "change_counter",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    if sqlite:
        op.execute("INSERT INTO change_counter (id, value) VALUES (randomblob(16), 1)")
        for trigger in _TRIGGERS:
            op.execute(trigger)
    op.create_table(
        "idempotency_keys",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("claim", GUID(length=16), nullable=False),
        sa.Column("lease_until", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("uq_idempotency_keys_user_id_key", "idempotency_keys", ["user_id", "key"], unique=True)
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_table("idempotency_keys")
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS tasks_revision_insert")
        op.execute("DROP TRIGGER IF EXISTS tasks_revision_update")
    op.drop_table("change_counter")
    # Tombstones were deleted tasks: they go for good, as a delete did before this revision.
    op.execute("DELETE FROM tasks WHERE deleted_at IS NOT NULL")
    op.drop_index("ix_tasks_deleted_at", table_name="tasks")
    op.drop_index("ix_tasks_user_id_revision", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("revision")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("feed_floor")
