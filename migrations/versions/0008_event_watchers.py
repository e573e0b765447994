"""Live events: a task write notifies only when some process watches its owner.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Migration 0004's trigger sent ``pg_notify`` on every task write. A transaction that notifies takes
a lock PostgreSQL holds across its commit, one for the whole database, so every writing
transaction committed one at a time, watched or not: measured with pgbench on the create
statement (8 clients, docs/adr/0004), 3,600 creates/s with the notification, 6,100 without it.

Now the processes that hold streams of an owner say so in ``event_watchers`` (one row per owner
and process, with a lease the process renews: events/listener.py), and the trigger notifies only
while such a row is current. A write nobody watches costs one probe of that small table instead.

The table exists on SQLite too (the schema is one on both); nothing reads it there: SQLite's
streams are woken in-process.
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NOTIFY_WATCHED = """
CREATE OR REPLACE FUNCTION notify_task_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM event_watchers WHERE user_id = NEW.user_id AND expires_at > now()) THEN
        PERFORM pg_notify('task_events_' || replace(NEW.user_id::text, '-', ''), NEW.revision::text);
    END IF;
    RETURN NULL;
END
$$
"""
_NOTIFY_ALWAYS = """
CREATE OR REPLACE FUNCTION notify_task_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_events_' || replace(NEW.user_id::text, '-', ''), NEW.revision::text);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "event_watchers",
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("listener_id", GUID(length=16), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "listener_id", name=op.f("pk_event_watchers")),
    )
    op.create_index(op.f("ix_event_watchers_listener_id"), "event_watchers", ["listener_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_WATCHED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_ALWAYS)
    op.drop_index(op.f("ix_event_watchers_listener_id"), table_name="event_watchers")
    op.drop_table("event_watchers")
