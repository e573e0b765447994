"""The tasks' repository: every statement of the feature, each a named method with the owner in its ``WHERE``.

:class:`TaskRepository` is an Advanced Alchemy repository of :class:`~todo_service.db.models.Task`.
Its own methods take the owner and the caller first, so none can run without the owner's
``user_id`` and the caller's permission (:func:`~todo_service.security.access.guard`) in its
``WHERE``: another user's task and a missing one are the same empty result. A deleted task is a
tombstone (``deleted_at``) that only the change feed sees.

Every write stamps a revision (:mod:`todo_service.db.revisions`) inside the same statement: the
task's ETag and its place in the change feed. Each statement is built once per dialect with
placeholders (listings once per set of filters and sort order, in a bounded cache) and runs on the
app's :class:`~todo_service.db.statements.Statements` (or a transaction of them, given as ``db``):
one round trip, no ORM session (the figures behind this are in
docs/adr/0002-task-statements-on-a-borrowed-driver-connection.md). The repository's inherited
Advanced Alchemy methods run on its ``session``, scoped to the current asyncio task.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from opentelemetry import trace

from todo_service.core.pagination import fetch_page
from todo_service.db.models import Task
from todo_service.security.access import caller_params, explain_refusal
from todo_service.tasks.queries import (
    AFTER_ID,
    AFTER_REVISION,
    FEED_LIMIT,
    NOW,
    OWNER,
    TASK,
    TRACEPARENT,
    delete_task,
    delete_tombstones,
    insert_task,
    page_params,
    raise_feed_floors,
    select_changes,
    select_page,
    select_task,
    update_task,
)

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

    from todo_service.db.statements import Row, Statements
    from todo_service.security.access import Caller
    from todo_service.tasks.schemas import TaskFilters

__all__ = ("Change", "TaskRepository", "task_scope")


class Change(NamedTuple):
    """One row of the change feed: the task as it is now (a tombstone has ``deleted_at``)."""

    revision: int
    deleted_at: datetime | None
    task: tuple[Any, ...]  # in TASK_COLUMNS order


def _traceparent(params: dict[str, Any]) -> bool:
    """Put the current span's W3C traceparent in ``params`` when it is sampled; whether it did.

    Webhook deliveries of the change then link to this request's trace (see ``queries._traced``).
    """
    context = trace.get_current_span().get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return False
    params[TRACEPARENT] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    return True


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
        query = select_page(filters, own=owner_id == caller.user_id)
        params = {**caller_params(caller), OWNER: owner_id, **page_params(filters)}
        return await fetch_page(
            self.statements,
            query,
            params,
            page=filters.page,
            limit=filters.limit,
            on_empty=lambda: explain_refusal(self.statements, caller, owner_id=owner_id),
        )

    async def one(self, caller: Caller, owner_id: UUID, task_id: UUID, *, db: Statements | None = None) -> Row | None:
        """The task, or None (missing, deleted, someone else's, or the caller may not read it)."""
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id}
        return await (db or self.statements).one(select_task(own=owner_id == caller.user_id), params)

    async def insert(
        self, caller: Caller, owner_id: UUID, values: dict[str, Any], *, db: Statements | None = None
    ) -> Row | None:
        """Insert the task (every column of ``TASK_COLUMNS`` in ``values``), or None if the caller may not write."""
        db = db or self.statements
        params = {**caller_params(caller), **values, "user_id": owner_id}
        traced = _traceparent(params)
        return await db.one(insert_task(db.dialect_name, own=owner_id == caller.user_id, traced=traced), params)

    async def update_fields(  # noqa: PLR0913  (the task, its changes, the clock and the preconditions)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        changes: dict[str, Any],
        now: datetime,
        *,
        if_match: tuple[int, ...] = (),
        db: Statements | None = None,
    ) -> Row | None:
        """Set ``changes`` (``updated_at`` and the revision move only when a value differs), or None as :meth:`one`.

        With ``if_match`` (revisions), the task must be at one of them, or nothing changes and None comes back.
        """
        db = db or self.statements
        statement = update_task(
            db.dialect_name, frozenset(changes), own=owner_id == caller.user_id, expected=len(if_match)
        )
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id, NOW: now}
        params.update({f"set_{name}": value for name, value in changes.items()})
        params.update({f"was_{name}": value for name, value in changes.items()})
        params.update({f"if_match_{i}": revision for i, revision in enumerate(if_match)})
        return await db.one(statement, params)

    async def remove(  # noqa: PLR0913  (the task, the clock and the preconditions)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        now: datetime,
        *,
        if_match: tuple[int, ...] = (),
        db: Statements | None = None,
    ) -> bool:
        """Delete the task (it becomes a tombstone); False when there was none the caller may delete."""
        db = db or self.statements
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id, NOW: now}
        traced = _traceparent(params)
        statement = delete_task(db.dialect_name, own=owner_id == caller.user_id, expected=len(if_match), traced=traced)
        params.update({f"if_match_{i}": revision for i, revision in enumerate(if_match)})
        return await db.affected(statement, params) > 0

    async def changes(
        self, caller: Caller, owner_id: UUID, after: tuple[int, UUID], limit: int
    ) -> tuple[int, list[Change]] | None:
        """The owner's feed floor and up to ``limit`` changes after ``after`` (revision, id); None if refused."""
        db = self.statements
        params = {
            **caller_params(caller),
            OWNER: owner_id,
            AFTER_REVISION: after[0],
            AFTER_ID: after[1],
            FEED_LIMIT: limit,
        }
        rows = await db.all(select_changes(db.dialect_name, own=owner_id == caller.user_id), params)
        if not rows:
            return None
        floor = int(rows[0][0])
        return floor, [Change(int(row[1]), row[2], tuple(row[3:])) for row in rows if row[1] is not None]

    async def prune_tombstones(self, before: datetime) -> int:
        """Delete tombstones older than ``before``; their owners' feed floors rise past them first."""
        async with self.statements.transaction() as db:
            await db.affected(raise_feed_floors(), {"before": before})
            return await db.affected(delete_tombstones(), {"before": before})
