"""Search indexes that hold the owner: ``btree_gin``, and each trigram index led by ``user_id``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

A search always names its owner (``tasks.user_id = :owner AND (lower(title) LIKE :p OR
lower(description) LIKE :p)``). The indexes of 0010 held the trigrams of every user's tasks: the
word's matches of all users came out of them, and PostgreSQL ANDed them with a bitmap of the
owner's tasks read from a B-tree (for a user with 100,000 tasks, 100,000 entries read on every
search). With ``user_id`` as the first column of each GIN index (``btree_gin`` gives GIN a uuid
operator class), the index hands back the owner's matches alone: on the ``large`` benchmark's data a
search's page took 1.6-2.1 ms instead of 3.0-3.7, its total 1.6 instead of 2.9, a word the owner
never wrote 0.05-0.14 ms instead of 1.5-1.7, and a 200-task user's search 0.07-0.10 instead of
0.38-0.46 ms (docs/performance.md).

The new indexes are built first, then the old ones dropped, each ``CONCURRENTLY`` outside the
migration's transaction (as in 0010: writes go on; an index an interrupted build left invalid is
dropped and built again on the next run). ``btree_gin``, like ``pg_trgm``, is a trusted extension
(PostgreSQL 13+): the database's owner may create it (docs/operations.md). Downgrade builds 0010's
indexes again before it drops these, and leaves the extensions. SQLite gets nothing (its search
reads the owner's tasks).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Index name -> what it indexes, over live tasks.
BY_OWNER = {
    "ix_tasks_live_owner_title_trgm": "user_id, lower(title) gin_trgm_ops",
    "ix_tasks_live_owner_description_trgm": "user_id, lower(description) gin_trgm_ops",
}
OF_0010 = {
    "ix_tasks_live_title_trgm": "lower(title) gin_trgm_ops",
    "ix_tasks_live_description_trgm": "lower(description) gin_trgm_ops",
}
_INVALID = sa.text("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid")


def _replace(build: dict[str, str], drop: dict[str, str]) -> None:
    """Build the ``build`` indexes (again, where a build left one invalid), then drop the ``drop`` ones."""
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        for name, columns in build.items():
            if bind.execute(_INVALID, {"name": name}).first():  # a build interrupted earlier
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks "
                f"USING gin ({columns}) WHERE deleted_at IS NULL"
            )
        for name in drop:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    _replace(BY_OWNER, OF_0010)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _replace(OF_0010, BY_OWNER)
