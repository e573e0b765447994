"""Lists, labels and the trash: ``task_lists``, ``labels``, ``task_labels``, ``tasks.list_id`` and the trash's expiry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Every user gets one default list, "Inbox" (``is_default``; at most one per user, a partial unique
index), and every existing task moves into its owner's Inbox before ``tasks.list_id`` becomes
NOT NULL. New accounts get their Inbox from a trigger on ``users``, so every path that creates an
account (registration, the admin command, a test inserting a row) has one without a second
statement, and no two concurrent requests can race to create it.

A label's name is unique per user case-insensitively through ``name_key`` (the name NFKC-normalised
and case-folded in Python): one plain unique index that behaves the same on both databases, where
SQLite's ``lower()`` folds ASCII only.

A trashed task is a tombstone (``deleted_at``, as a delete was) that can be restored until
``trash_expires_at``. On SQLite, making ``list_id`` NOT NULL copies the table, which drops its
triggers (revision counter, webhook outbox): they are read before and created again after.

Downgrade keeps every task (trashed ones stay deleted, as they were to every client before this
revision) and drops lists and labels.
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_LITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_INBOX_COLUMNS = "id, user_id, name, is_default, version, created_at, updated_at"
# The Inbox of each account: one statement for the existing users, one trigger for new ones.
_PG_INBOX = "gen_random_uuid(), {user}, 'Inbox', true, 1, now(), now()"
_LITE_INBOX = f"randomblob(16), {{user}}, 'Inbox', 1, 1, {_LITE_NOW}, {_LITE_NOW}"
_INBOXES = "INSERT INTO task_lists (" + _INBOX_COLUMNS + ") SELECT {values} FROM users"  # noqa: S608  (constants)
_PG_FUNCTION = (
    "CREATE FUNCTION create_inbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608  (constants)
    f"INSERT INTO task_lists ({_INBOX_COLUMNS}) VALUES ({_PG_INBOX.format(user='NEW.id')}); RETURN NULL; END $$"
)
_PG_TRIGGER = "CREATE TRIGGER users_inbox AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION create_inbox()"
_LITE_TRIGGER = (
    "CREATE TRIGGER users_inbox AFTER INSERT ON users BEGIN "  # noqa: S608  (constants)
    f"INSERT INTO task_lists ({_INBOX_COLUMNS}) VALUES ({_LITE_INBOX.format(user='NEW.id')}); END"
)
# PostgreSQL's webhook trigger (0005) fired on any difference in the row; now, like SQLite's, when the
# revision moves, which every change a client sees does: moving a deleted list's tombstones to the
# Inbox (a foreign key needs it) must not deliver their deletes again.
_PG_WEBHOOK_UPDATE = (
    "CREATE TRIGGER tasks_webhooks_update AFTER UPDATE ON tasks FOR EACH ROW "
    "WHEN ({condition}) EXECUTE FUNCTION webhooks_outbox()"
)
_BACKFILL = (
    "UPDATE tasks SET list_id = (SELECT l.id FROM task_lists AS l WHERE l.user_id = tasks.user_id AND l.is_default)"
)


def _audited() -> list[sa.Column[object]]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def _sqlite_task_triggers() -> list[str]:
    """The CREATE statements of the triggers on ``tasks`` (SQLite drops them when a batch copies the table)."""
    rows = op.get_bind().exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks'")
    return [row[0] for row in rows]


def _guids(*, list_id_nullable: bool) -> list[sa.Column[object]]:
    """The columns a SQLite batch must declare as GUID (reflection reads BINARY(16) back as NUMERIC).

    A column given here replaces the reflected one with its constraints: user_id's foreign key is
    stated again; list_id's is left out (the upgrade adds it, the downgrade drops the column).
    """
    owner = sa.ForeignKey("users.id", name="fk_tasks_user_id_users", ondelete="CASCADE")
    return [
        sa.Column("id", GUID(length=16), primary_key=True, nullable=False),
        sa.Column("user_id", GUID(length=16), owner, nullable=False),
        sa.Column("list_id", GUID(length=16), nullable=list_id_nullable),
    ]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "task_lists",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        *_audited(),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_lists_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_lists")),
    )
    op.create_index("ix_task_lists_user_id_created_at", "task_lists", ["user_id", "created_at", "id"])
    op.create_index(
        "uq_task_lists_user_id_default",
        "task_lists",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )
    op.create_table(
        "labels",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        *_audited(),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_labels_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    op.create_index("uq_labels_user_id_name_key", "labels", ["user_id", "name_key"], unique=True)
    op.create_table(
        "task_labels",
        sa.Column("task_id", GUID(length=16), nullable=False),
        sa.Column("label_id", GUID(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_labels_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_task_labels_label_id_labels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "label_id", name=op.f("pk_task_labels")),
    )
    op.create_index("ix_task_labels_label_id_task_id", "task_labels", ["label_id", "task_id"])

    op.execute(_INBOXES.format(values=(_LITE_INBOX if sqlite else _PG_INBOX).format(user="id")))
    if sqlite:
        op.execute(_LITE_TRIGGER)
    else:
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
        op.execute("DROP TRIGGER tasks_webhooks_update ON tasks")
        op.execute(_PG_WEBHOOK_UPDATE.format(condition="OLD.revision IS DISTINCT FROM NEW.revision"))

    op.add_column("tasks", sa.Column("list_id", GUID(length=16), nullable=True))
    op.add_column("tasks", sa.Column("trash_expires_at", DateTimeUTC(timezone=True), nullable=True))
    op.execute(_BACKFILL)
    triggers = _sqlite_task_triggers() if sqlite else []
    with op.batch_alter_table("tasks", reflect_args=_guids(list_id_nullable=True)) as batch:
        batch.alter_column("list_id", existing_type=GUID(length=16), nullable=False)
        batch.create_foreign_key(op.f("fk_tasks_list_id_task_lists"), "task_lists", ["list_id"], ["id"])
    for trigger in triggers:
        op.execute(trigger)
    # A list's tasks, newest first (the list_id filter; also the foreign key's lookups).
    op.create_index("ix_tasks_list_id_created_at", "tasks", ["list_id", "created_at", "id"])
    # completed_since, and the trash (newest first, still restorable).
    op.create_index("ix_tasks_user_id_completed_at", "tasks", ["user_id", "completed_at"])
    op.create_index("ix_tasks_user_id_trash_expires_at", "tasks", ["user_id", "trash_expires_at"])
    # A listing's total (and the label filter's semi-join) counts live tasks from the index alone.
    op.create_index(
        "ix_tasks_live_user_id_id",
        "tasks",
        ["user_id", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_tasks_live_user_id_id", table_name="tasks")
    op.drop_index("ix_tasks_user_id_trash_expires_at", table_name="tasks")
    op.drop_index("ix_tasks_user_id_completed_at", table_name="tasks")
    op.drop_index("ix_tasks_list_id_created_at", table_name="tasks")
    triggers = _sqlite_task_triggers() if sqlite else []
    with op.batch_alter_table("tasks", reflect_args=_guids(list_id_nullable=False)) as batch:
        batch.drop_column("trash_expires_at")
        batch.drop_column("list_id")
    for trigger in triggers:
        op.execute(trigger)
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS users_inbox")
    else:
        op.execute("DROP TRIGGER IF EXISTS users_inbox ON users")
        op.execute("DROP FUNCTION IF EXISTS create_inbox()")
        op.execute("DROP TRIGGER tasks_webhooks_update ON tasks")
        op.execute(_PG_WEBHOOK_UPDATE.format(condition="OLD.* IS DISTINCT FROM NEW.*"))
    op.drop_table("task_labels")
    op.drop_table("labels")
    op.drop_table("task_lists")
