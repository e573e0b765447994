"""A task's labels in SQL: ``label_ids`` read with the task, and the statements that set them.

``label_ids`` is one more column of every statement that returns a task (a correlated subquery
on ``task_labels``, whose primary key ``(task_id, label_id)`` serves it), so a read stays one
round trip. On PostgreSQL it is a sorted ``uuid[]`` (``ARRAY(SELECT ... ORDER BY label_id)``, empty
when there is none), which the driver hands over as the list itself: no work per row in Python.
SQLite has no arrays: there it is the ``group_concat`` of the labels' hex, parsed and sorted.

A list of label ids travels as numbered placeholders (``label_0``, ``label_1``, ...; at most
:data:`MAX_LABELS`): the statements run as compiled once on asyncpg, which takes no expanding
``IN``, so each count of labels is a statement of its own (a bounded cache).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, bindparam, delete, false, func, insert, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import TypeDecorator

from todo_service.db.models import Label, Task, TaskLabel
from todo_service.security.access import guard

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Dialect
    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.sql.dml import Delete, Insert
    from sqlalchemy.sql.selectable import Select

__all__ = (
    "MAX_LABELS",
    "LabelIds",
    "add_labels",
    "among",
    "count_labels",
    "label_params",
    "remove_other_labels",
)

MAX_LABELS = 20  # labels on one task, and in one label filter


def label_params(label_ids: list[uuid.UUID] | tuple[uuid.UUID, ...]) -> dict[str, uuid.UUID]:
    """The values of :func:`among`'s placeholders."""
    return {f"label_{i}": label for i, label in enumerate(label_ids)}


def among(column: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID], count: int) -> ColumnElement[bool]:
    """``column IN (:label_0, ...)``, with ``count`` placeholders (none: false, not an expanding empty IN)."""
    if not count:
        return false()
    return column.in_([bindparam(f"label_{i}", type_=Label.id.type) for i in range(count)])


class LabelIdList(TypeDecorator[list[uuid.UUID]]):
    """A sorted list of UUIDs in Python: a ``uuid[]`` on PostgreSQL (as it is), comma-separated hex on SQLite."""

    impl = Text
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """None on PostgreSQL (the driver's list is the value); else :meth:`process_result_value`."""
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> list[uuid.UUID]:  # noqa: ANN401, ARG002  (the type's signature)
        if not value:
            return []
        return sorted(uuid.UUID(part) for part in str(value).split(","))


class LabelIds(ColumnElement[list[uuid.UUID]]):
    """``label_ids`` of the row of ``tasks`` in the statement (compiled per dialect below)."""

    type = LabelIdList()
    inherit_cache = True


@compiles(LabelIds, "postgresql")
def _label_ids_postgresql(element: LabelIds, compiler: SQLCompiler, **kw: Any) -> str:  # noqa: ANN401, ARG001
    return "ARRAY(SELECT tl.label_id FROM task_labels AS tl WHERE tl.task_id = tasks.id ORDER BY tl.label_id)"


@compiles(LabelIds)
def _label_ids_sqlite(element: LabelIds, compiler: SQLCompiler, **kw: Any) -> str:  # noqa: ANN401, ARG001
    return "(SELECT group_concat(hex(tl.label_id), ',') FROM task_labels AS tl WHERE tl.task_id = tasks.id)"


@cache
def count_labels(count: int, *, own: bool) -> Select[Any]:
    """How many of the ``count`` label ids are labels of ``:owner_id`` (the rest are missing or someone else's)."""
    owned = [Label.user_id == bindparam("owner_id"), among(Label.id, count), guard(own=own, write=False)]
    return select(func.count()).select_from(Label).where(*owned)


def _live_task() -> Select[Any]:
    return select(Task.id).where(
        Task.id == bindparam("task_id"), Task.user_id == bindparam("owner_id"), Task.deleted_at.is_(None)
    )


@cache
def add_labels(count: int, *, own: bool) -> Insert:
    """Put the owner's labels among the ``count`` ids on the owner's live task ``:task_id`` (those it lacks)."""
    task = _live_task().scalar_subquery()
    present = select(TaskLabel.label_id).where(TaskLabel.task_id == bindparam("task_id"))
    source = select(task, Label.id).where(
        Label.user_id == bindparam("owner_id"),
        among(Label.id, count),
        Label.id.not_in(present),
        task.is_not(None),
        guard(own=own, write=True),
    )
    return insert(TaskLabel).from_select(["task_id", "label_id"], source)


@cache
def remove_other_labels(count: int, *, own: bool) -> Delete:
    """Take every label not among the ``count`` ids off the owner's live task ``:task_id``."""
    where = [TaskLabel.task_id.in_(_live_task()), guard(own=own, write=True)]
    if count:
        where.append(~among(TaskLabel.label_id, count))
    return delete(TaskLabel).where(*where)
