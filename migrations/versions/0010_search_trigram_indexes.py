"""Search through trigram indexes on PostgreSQL: ``pg_trgm`` and a GIN index per searched expression.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

A listing's ``search`` runs ``lower(title) LIKE :p ESCAPE '/' OR lower(description) LIKE :p
ESCAPE '/'`` with ``:p`` = ``%word%`` (tasks/queries.py). No B-tree serves a substring, so it read
every task of the owner; a GIN index with ``gin_trgm_ops`` on each of the two expressions serves
it (a BitmapOr of the two), for patterns that hold a trigram (3 characters or more).

- **Partial** (``WHERE deleted_at IS NULL``): every statement that searches also requires
  ``tasks.deleted_at IS NULL`` (only live tasks are listed), so PostgreSQL proves the predicate and
  uses the indexes, while tombstones and the trash (kept until pruned) stay out of them: smaller
  indexes, and a delete writes no trigram entries for the task's new row version.
- **Concurrently**: ``CREATE INDEX CONCURRENTLY`` outside the migration's transaction (Alembic's
  ``autocommit_block``), so creates and edits go on while a big table is indexed (a plain
  ``CREATE INDEX`` would block every write to ``tasks`` until both are built). An index left
  invalid by an interrupted build is dropped and built again on the next upgrade.
- **The extension**: ``CREATE EXTENSION IF NOT EXISTS pg_trgm`` needs the right to create in the
  database and its first schema; ``pg_trgm`` is a trusted extension (PostgreSQL 13+), so the
  database's owner may create it without being a superuser (docs/operations.md says what else works).

SQLite gets nothing here: its search stays a scan of the owner's tasks (zero setup; no trigram
index there). Downgrade drops the two indexes and leaves the extension: other objects may use it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Index name -> the searched column (its lower() is indexed).
INDEXES = {"ix_tasks_live_title_trgm": "title", "ix_tasks_live_description_trgm": "description"}
_INVALID = sa.text("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        for name, column in INDEXES.items():
            if bind.execute(_INVALID, {"name": name}).first():  # a build interrupted earlier
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON tasks "
                f"USING gin (lower({column}) gin_trgm_ops) WHERE deleted_at IS NULL"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
