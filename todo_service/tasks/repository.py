"""The tasks' repository: every statement of the feature, each a named method with the owner in its ``WHERE``.

:class:`TaskRepository` is an Advanced Alchemy repository of :class:`~todo_service.db.models.Task`.
Its own methods (``page``, ``one``, ``insert``, ``update_fields``, ``remove``) take the owner and
the caller first, so none can run without the owner's ``user_id`` and the caller's permission
(:func:`~todo_service.security.access.guard`) in its ``WHERE``: another user's task and a missing one
are the same empty result.

Each statement is built once with placeholders (listings once per set of filters and sort order,
in a bounded cache) and runs on the app's :class:`~todo_service.db.statements.Statements`: one
round trip, no ORM session, no transaction around a single statement (the figures behind this are
in docs/adr/0002-task-statements-on-a-borrowed-driver-connection.md). The repository's inherited
Advanced Alchemy methods run on its ``session``, scoped to the current asyncio task.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from todo_service.core.pagination import PageQuery, fetch_page
from todo_service.db.models import Priority, Task
from todo_service.security.access import caller_params, explain_refusal, guard

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session
    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql import Delete, Insert, Update
    from sqlalchemy.sql.elements import BindParameter, UnaryExpression

    from todo_service.db.statements import Row, Statements
    from todo_service.security.access import Caller
    from todo_service.tasks.schemas import TaskFilters

__all__ = ("TASK_COLUMNS", "TaskRepository", "as_utc", "task_scope")

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
_COLUMNS = Task.__table__.c
_PRIORITY_RANK = case({p.value: rank for rank, p in enumerate(Priority)}, value=Task.priority)
_SORTABLE: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "due_date": Task.due_date,
    "priority": _PRIORITY_RANK,
    "title": Task.title,
    "completed": Task.completed,
}
# Placeholders of the statements below.
OWNER, TASK, NOW = "owner_id", "task_id", "now"
_LIKE_ESCAPE = "/"  # as SQLAlchemy's autoescape: a backslash would need escaping in PostgreSQL's literal


def _now() -> BindParameter[datetime]:
    """The request's clock, as a placeholder (one value per statement)."""
    return bindparam(NOW, type_=_COLUMNS["updated_at"].type)


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


class _Shape(NamedTuple):
    """Which filters a listing uses (their values are parameters): the key of its statements."""

    completed: bool
    priority: bool
    search: bool
    due_before: bool
    due_after: bool
    overdue: bool | None

    @classmethod
    def of(cls, filters: TaskFilters) -> _Shape:
        return cls(
            completed=filters.completed is not None,
            priority=filters.priority is not None,
            search=bool(filters.search),
            due_before=filters.due_before is not None,
            due_after=filters.due_after is not None,
            overdue=filters.overdue,
        )


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a listing (always scoped to the owner), with placeholders."""
    conditions: list[ColumnElement[bool]] = [Task.user_id == bindparam(OWNER)]
    if shape.completed:
        conditions.append(Task.completed == bindparam("completed"))
    if shape.priority:
        conditions.append(Task.priority == bindparam("priority"))
    if shape.search:
        # The pattern is escaped in Python (see _like_pattern): '%' and '_' match themselves.
        pattern = func.lower(bindparam("search", type_=String))
        conditions.append(
            or_(
                func.lower(Task.title).like(pattern, escape=_LIKE_ESCAPE),
                func.lower(Task.description).like(pattern, escape=_LIKE_ESCAPE),
            )
        )
    if shape.due_before:
        conditions.append(Task.due_date < bindparam("due_before"))
    if shape.due_after:
        conditions.append(Task.due_date > bindparam("due_after"))
    if shape.overdue is True:
        conditions.extend([Task.due_date < _now(), Task.completed.is_(False)])
    elif shape.overdue is False:
        conditions.append(or_(Task.due_date.is_(None), Task.due_date >= _now(), Task.completed.is_(True)))
    return conditions


@lru_cache(maxsize=256)
def _listing(shape: _Shape, sort: tuple[str, ...], *, own: bool) -> PageQuery:
    return PageQuery.build(
        source=Task.__table__,
        columns=TASK_COLUMNS,
        where=_conditions(shape),
        guard=guard(own=own, write=False),
        order_by=_order_by(sort),
    )


def _listing_params(filters: TaskFilters) -> dict[str, Any]:
    params: dict[str, Any] = {"now": datetime.now(UTC)} if filters.overdue is not None else {}
    if filters.completed is not None:
        params["completed"] = filters.completed
    if filters.priority is not None:
        params["priority"] = filters.priority
    if filters.search:
        params["search"] = _like_pattern(filters.search)
    if filters.due_before is not None:
        params["due_before"] = as_utc(filters.due_before)
    if filters.due_after is not None:
        params["due_after"] = as_utc(filters.due_after)
    return params


def _like_pattern(text: str) -> str:
    """``50%_off`` → ``%50/%/_off%``: a substring match (lower-cased in SQL), wildcards taken literally."""
    escaped = (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


@cache
def _get(*, own: bool) -> Select[Any]:
    return select(*TASK_COLUMNS).where(
        Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), guard(own=own, write=False)
    )


_CREATED = tuple(column.key for column in TASK_COLUMNS)  # an INSERT gives every column


@cache
def _create(*, own: bool) -> Insert:
    """INSERT … SELECT guarded by the caller's permission: no row is inserted when it is refused."""
    values = [bindparam(name, type_=_COLUMNS[name].type) for name in _CREATED]
    source = select(*values).where(guard(own=own, write=True))
    return insert(Task).from_select(list(_CREATED), source).returning(*TASK_COLUMNS)


@lru_cache(maxsize=128)
def _update(fields: frozenset[str], *, own: bool) -> Update:
    """An UPDATE … RETURNING of ``fields``; completion stamps ``completed_at`` (first completion wins)."""
    values: dict[str, Any] = {name: bindparam(f"set_{name}", type_=_COLUMNS[name].type) for name in fields}
    if "completed" in fields:
        done = bindparam("set_completed", type_=Boolean)
        values["completed_at"] = case((done, func.coalesce(Task.completed_at, _now())), else_=None)
    # A write that changes nothing (completing a completed task, a PUT of what a GET returned) leaves
    # updated_at alone; with nothing to change the statement still runs: it checks the caller may write.
    # (Own parameters: PostgreSQL deduces one type per parameter, and SET and IS DISTINCT FROM differ.)
    values["updated_at"] = Task.updated_at
    if fields:
        changes = [
            _COLUMNS[name].is_distinct_from(bindparam(f"was_{name}", type_=_COLUMNS[name].type)) for name in fields
        ]
        values["updated_at"] = case((or_(*changes), _now()), else_=Task.updated_at)
    return (
        update(Task)
        .where(Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), guard(own=own, write=True))
        .values(values)
        .returning(*TASK_COLUMNS)
    )


@cache
def _delete(*, own: bool) -> Delete:
    return delete(Task).where(Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), guard(own=own, write=True))


def task_scope() -> object:
    """The scope of the repository's session: the current asyncio task (the thread while the app is assembled)."""
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop runs: create_app, where Advanced Alchemy reads the session's dialect
        return threading.current_thread()


class TaskRepository(SQLAlchemyAsyncRepository[Task]):
    """A user's tasks. One per app, shared by every request (its own methods keep no request state).

    The inherited methods run on ``session``, an ``async_scoped_session`` with :func:`task_scope`:
    each asyncio task gets its own session, which whoever used it closes with ``session.remove()``.
    """

    model_type = Task

    def __init__(self, *, statements: Statements, session: async_scoped_session[AsyncSession]) -> None:
        super().__init__(session=session)
        self.statements = statements
        self.scoped_session = session

    async def page(self, caller: Caller, owner_id: UUID, filters: TaskFilters) -> tuple[list[tuple[Any, ...]], int]:
        """One page of ``owner_id``'s tasks (rows in ``TASK_COLUMNS`` order) and the total, in one round trip."""
        query = _listing(_Shape.of(filters), filters.sort, own=owner_id == caller.user_id)
        params = {**caller_params(caller), OWNER: owner_id, **_listing_params(filters)}
        return await fetch_page(
            self.statements,
            query,
            params,
            page=filters.page,
            limit=filters.limit,
            on_empty=lambda: explain_refusal(self.statements, caller, owner_id=owner_id),
        )

    async def one(self, caller: Caller, owner_id: UUID, task_id: UUID) -> Row | None:
        """The task, or None (missing, someone else's, or the caller may not read it)."""
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id}
        return await self.statements.one(_get(own=owner_id == caller.user_id), params)

    async def insert(self, caller: Caller, owner_id: UUID, values: dict[str, Any]) -> Row | None:
        """Insert the task (every column of ``TASK_COLUMNS`` in ``values``), or None if the caller may not write."""
        params = {**caller_params(caller), **values, "user_id": owner_id}
        return await self.statements.one(_create(own=owner_id == caller.user_id), params)

    async def update_fields(
        self, caller: Caller, owner_id: UUID, task_id: UUID, changes: dict[str, Any], now: datetime
    ) -> Row | None:
        """Set ``changes`` (``updated_at`` moves only when a value differs), or None as :meth:`one`."""
        statement = _update(frozenset(changes), own=owner_id == caller.user_id)
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id, NOW: now}
        params.update({f"set_{name}": value for name, value in changes.items()})
        params.update({f"was_{name}": value for name, value in changes.items()})
        return await self.statements.one(statement, params)

    async def remove(self, caller: Caller, owner_id: UUID, task_id: UUID) -> bool:
        """Delete the task for good; False when there was none the caller may delete."""
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id}
        return await self.statements.affected(_delete(own=owner_id == caller.user_id), params) > 0


def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes without an offset are taken as UTC (the API documents this)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
