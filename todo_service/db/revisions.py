"""Revisions: the number every task write stamps on its row, in commit order per database.

A revision is the task's ETag and its place in the change feed, so it must never let a feed
reader pass a change that commits later with a smaller number. A sequence taken at insert time
does not guarantee that: two transactions can commit in the other order. So:

- **PostgreSQL**: the revision is the writing transaction's id (``pg_current_xact_id()``, 64 bits,
  never wraps). A feed reader takes only rows below its snapshot's ``xmin`` (the oldest
  transaction still running): every transaction below it has ended, so nothing can still commit
  with a smaller revision than one the reader returns. A change becomes visible to the feed as
  soon as every transaction older than it has ended (a long transaction anywhere in the database
  delays the feed; it never makes it skip).
- **SQLite**: writers are serialised by the database, so commit order is write order. The
  revision is ``change_counter.value + 1``, read by the writing statement under the write lock; a
  trigger (migration 0003) moves the counter forward within that statement.

No extra statement, lock or round trip on either: the revision is an expression inside the write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, String, Text, cast, func, literal_column, select

from todo_service.db.models import ChangeCounter

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import InstrumentedAttribute

__all__ = ("etag", "next_revision", "visible_below")


def next_revision(dialect: str) -> ColumnElement[int]:
    """The revision a write stamps on its rows (``dialect``: the engine's dialect name)."""
    if dialect == "postgresql":
        return cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    return select(ChangeCounter.value + 1).scalar_subquery()


def visible_below(dialect: str) -> ColumnElement[int] | None:
    """Revisions a feed may hand out are below this (None: every committed one)."""
    if dialect == "postgresql":
        return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
    return None


def etag(version: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[str]:
    """The strong entity tag of a row in SQL, ``"<version>"`` (a task's revision, a list's or label's version)."""
    quote = literal_column("'\"'", String)
    return (quote + cast(version, String) + quote).label("etag")
