"""Tasks: each operation is one SQL statement that also carries the caller's permission.

Ownership lives in the ``WHERE`` clause (``user_id`` and :func:`caller_may`), so another user's task
and a missing one are the same empty result, answered with the same 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, bindparam, case, delete, func, insert, or_, select, update

from todo_service.auth.access import caller_may, explain_refusal, refuse
from todo_service.db.models import Priority, Task
from todo_service.lib.errors import Forbidden, TaskNotFound
from todo_service.lib.pagination import Page, fetch_page
from todo_service.lib.service import Service
from todo_service.tasks.schemas import TaskRead

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql.elements import UnaryExpression

    from todo_service.auth.access import Caller
    from todo_service.tasks.schemas import TaskCreate, TaskFilters

__all__ = ("TASK_COLUMNS", "TaskService")

# The columns of TaskRead, in its field order.
TASK_COLUMNS = (
    Task.id,
    Task.user_id,
    Task.title,
    Task.description,
    Task.completed,
    Task.priority,
    Task.due_date,
    Task.completed_at,
    Task.created_at,
    Task.updated_at,
)
_PRIORITY_RANK = case({p.value: rank for rank, p in enumerate(Priority)}, value=Task.priority)
_SORTABLE: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "due_date": Task.due_date,
    "priority": _PRIORITY_RANK,
    "title": Task.title,
    "completed": Task.completed,
}


def _order_by(sort: tuple[str, ...]) -> list[UnaryExpression[Any]]:
    """``("-due_date", "priority")`` → ORDER BY clauses; tasks without a due date come last; id breaks ties."""
    clauses: list[UnaryExpression[Any]] = []
    for key in sort:
        descending = key.startswith("-")
        column = _SORTABLE[key.lstrip("-")]
        clause = column.desc() if descending else column.asc()
        clauses.append(clause.nulls_last() if key.lstrip("-") == "due_date" else clause)
    clauses.append(Task.id.desc() if sort[0].startswith("-") else Task.id.asc())
    return clauses


def _filters(owner_id: UUID, filters: TaskFilters, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a listing (always scoped to the owner)."""
    conditions: list[ColumnElement[bool]] = [Task.user_id == owner_id]
    if filters.completed is not None:
        conditions.append(Task.completed == filters.completed)
    if filters.priority is not None:
        conditions.append(Task.priority == filters.priority)
    if filters.search:
        # autoescape: a '%' or '_' in the search text matches itself, not any character.
        conditions.append(
            or_(
                Task.title.icontains(filters.search, autoescape=True),
                Task.description.icontains(filters.search, autoescape=True),
            )
        )
    if filters.due_before is not None:
        conditions.append(Task.due_date < filters.due_before)
    if filters.due_after is not None:
        conditions.append(Task.due_date > filters.due_after)
    if filters.overdue is True:
        conditions.extend([Task.due_date < now, Task.completed.is_(False)])
    elif filters.overdue is False:
        conditions.append(or_(Task.due_date.is_(None), Task.due_date >= now, Task.completed.is_(True)))
    return conditions


class TaskService(Service[Task]):
    """A user's tasks."""

    class Repo(SQLAlchemyAsyncRepository[Task]):
        """Tasks."""

        model_type = Task

    repository_type = Repo

    async def list_page(self, caller: Caller, owner_id: UUID, filters: TaskFilters) -> Page[TaskRead]:
        """One page of ``owner_id``'s tasks and the total, in one round trip (two past the last page)."""
        rows, total = await fetch_page(
            self.db,
            source=Task.__table__,
            columns=TASK_COLUMNS,
            where=_filters(owner_id, filters, datetime.now(UTC)),
            guard=caller_may(caller, owner_id=owner_id, write=False),
            order_by=_order_by(filters.sort),
            page=filters.page,
            limit=filters.limit,
            on_empty=lambda: explain_refusal(self.db, caller, owner_id=owner_id),
        )
        return Page.of([TaskRead(*row) for row in rows], total=total, page=filters.page, limit=filters.limit)

    async def get_task(self, caller: Caller, owner_id: UUID, task_id: UUID) -> TaskRead:
        """One task of ``owner_id``.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        statement = select(*TASK_COLUMNS).where(
            Task.id == task_id, Task.user_id == owner_id, caller_may(caller, owner_id=owner_id, write=False)
        )
        row = (await self.db.execute(statement)).one_or_none()
        if row is None:
            await refuse(self.db, caller, owner_id=owner_id, write=False, otherwise=TaskNotFound())
        return TaskRead(*row)

    async def create_task(self, caller: Caller, owner_id: UUID, data: TaskCreate) -> TaskRead:
        """Add a task to ``owner_id``'s list (INSERT … SELECT guarded by the caller's permission)."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "user_id": owner_id,
            "title": data.title,
            "description": data.description,
            "completed": data.completed,
            "priority": data.priority,
            "due_date": _as_utc(data.due_date),
            "completed_at": now if data.completed else None,
            "created_at": now,
            "updated_at": now,
        }
        columns = Task.__table__.c
        row_source = select(*(bindparam(name, value, type_=columns[name].type) for name, value in values.items()))
        statement = (
            insert(Task)
            .from_select(list(values), row_source.where(caller_may(caller, owner_id=owner_id, write=True)))
            .returning(*TASK_COLUMNS)
        )
        row = (await self.db.execute(statement)).one_or_none()
        if row is None:
            # Allowed now but refused a moment ago means the caller's role changed in between.
            await refuse(self.db, caller, owner_id=owner_id, write=True, otherwise=Forbidden())
        return TaskRead(*row)

    async def update_task(self, caller: Caller, owner_id: UUID, task_id: UUID, changes: dict[str, Any]) -> TaskRead:
        """Change the given fields (``None`` clears an optional one); completion stamps ``completed_at``.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        now = datetime.now(UTC)
        values = dict(changes)
        if "due_date" in values:
            values["due_date"] = _as_utc(values["due_date"])
        if "completed" in values:
            values["completed_at"] = func.coalesce(Task.completed_at, now) if values["completed"] else None
        # With nothing to change the statement still runs: it checks the caller may write.
        values["updated_at"] = now if changes else Task.updated_at
        statement = (
            update(Task)
            .where(Task.id == task_id, Task.user_id == owner_id, caller_may(caller, owner_id=owner_id, write=True))
            .values(values)
            .returning(*TASK_COLUMNS)
        )
        row = (await self.db.execute(statement)).one_or_none()
        if row is None:
            await refuse(self.db, caller, owner_id=owner_id, write=True, otherwise=TaskNotFound())
        return TaskRead(*row)

    async def complete(self, caller: Caller, owner_id: UUID, task_id: UUID, *, completed: bool) -> TaskRead:
        """Mark a task done (stamping ``completed_at``) or not done (clearing it)."""
        return await self.update_task(caller, owner_id, task_id, {"completed": completed})

    async def delete_task(self, caller: Caller, owner_id: UUID, task_id: UUID) -> None:
        """Delete a task for good.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        statement = delete(Task).where(
            Task.id == task_id, Task.user_id == owner_id, caller_may(caller, owner_id=owner_id, write=True)
        )
        result = await self.db.execute(statement)
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await refuse(self.db, caller, owner_id=owner_id, write=True, otherwise=TaskNotFound())


def _as_utc(value: datetime | None) -> datetime | None:
    """Datetimes without an offset are taken as UTC (the API documents this)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
