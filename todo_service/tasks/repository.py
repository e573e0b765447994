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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from opentelemetry import trace

from todo_service.core.pagination import fetch_page
from todo_service.db.models import Task
from todo_service.security.access import caller_params, explain_refusal
from todo_service.tasks.labelling import add_labels, count_labels, label_params, remove_other_labels
from todo_service.tasks.ordering import new_rank
from todo_service.tasks.queries import (
    AFTER_ID,
    AFTER_REVISION,
    FEED_LIMIT,
    NOW,
    OWNER,
    TASK,
    TRACEPARENT,
    TRASH_EXPIRES,
    delete_task,
    delete_tombstones,
    insert_task,
    list_of_owner,
    page_params,
    raise_feed_floors,
    restore_task,
    scroll_params,
    select_changes,
    select_page,
    select_scroll,
    select_task,
    select_trash,
    update_task,
)
from todo_service.tasks.schedule import owner_zone, zone_of

if TYPE_CHECKING:
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
    reminded: bool = False  # the change is a reminder firing (the worker's revision, still the task's)


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
        return await fetch_page(
            self.statements,
            select_page(filters, own=owner_id == caller.user_id),
            await self._listing_params(caller, owner_id, filters),
            page=filters.page,
            limit=filters.limit,
            on_empty=lambda: explain_refusal(self.statements, caller, owner_id=owner_id),
        )

    async def scroll(
        self, caller: Caller, owner_id: UUID, filters: TaskFilters, after: list[Any] | None
    ) -> list[tuple[Any, ...]]:
        """Up to ``filters.limit + 1`` of ``owner_id``'s tasks after the sort keys ``after`` (None: the first)."""
        query = select_scroll(filters, own=owner_id == caller.user_id, after=after)
        params = {**await self._listing_params(caller, owner_id, filters), **scroll_params(after, filters.limit)}
        rows = await self.statements.all(query, params)
        if not rows:
            await explain_refusal(self.statements, caller, owner_id=owner_id)
        return [tuple(row) for row in rows]

    async def _listing_params(self, caller: Caller, owner_id: UUID, filters: TaskFilters) -> dict[str, Any]:
        # overdue: all-day tasks without a zone of their own follow their owner's (one more read).
        zone = zone_of(None, await owner_zone(self.statements, owner_id)) if filters.overdue is not None else UTC
        return {**caller_params(caller), OWNER: owner_id, **page_params(filters, zone)}

    async def one(self, caller: Caller, owner_id: UUID, task_id: UUID, *, db: Statements | None = None) -> Row | None:
        """The task, or None (missing, deleted, someone else's, or the caller may not read it)."""
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id}
        return await (db or self.statements).one(select_task(own=owner_id == caller.user_id), params)

    async def insert(
        self, caller: Caller, owner_id: UUID, values: dict[str, Any], *, db: Statements | None = None
    ) -> Row | None:
        """Insert the task (every column of ``TASK_COLUMNS`` in ``values``), or None if the caller may not write.

        Without them, it is a top-level task without a schedule of its own, last among its siblings.
        """
        db = db or self.statements
        placed = {"parent_id": None, "due_on": None, "timezone": None, "rrule": None, "overdue_at": values["due_date"]}
        placed["reminded_at"] = None
        if "position" not in values:
            placed["position"] = new_rank(values["created_at"])
        params = {**caller_params(caller), **placed, **values, "user_id": owner_id}
        traced = _traceparent(params)
        in_list = params.get("list_id") is not None
        statement = insert_task(db.dialect_name, own=owner_id == caller.user_id, traced=traced, in_list=in_list)
        return await db.one(statement, params)

    async def update_fields(  # noqa: PLR0913  (the task, its changes, the clock and the preconditions)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        changes: dict[str, Any],
        now: datetime,
        *,
        if_match: tuple[int, ...] = (),
        one_off: bool = False,
        db: Statements | None = None,
    ) -> Row | None:
        """Set ``changes`` (``updated_at`` and the revision move only when a value differs), or None as :meth:`one`.

        With ``if_match`` (revisions), the task must be at one of them, or nothing changes and None comes back;
        with ``one_off``, it must have no recurrence rule.
        """
        db = db or self.statements
        own = owner_id == caller.user_id
        statement = update_task(db.dialect_name, frozenset(changes), own=own, expected=len(if_match), one_off=one_off)
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
        trash_until: datetime | None = None,
        db: Statements | None = None,
    ) -> bool:
        """Delete the task (it becomes a tombstone); False when there was none the caller may delete.

        With ``trash_until`` it goes to the trash (restorable until then); without, for good (a task
        already in the trash too).
        """
        db = db or self.statements
        params: dict[str, Any] = {
            **caller_params(caller),
            OWNER: owner_id,
            TASK: task_id,
            NOW: now,
            TRASH_EXPIRES: trash_until,
        }
        traced = _traceparent(params)
        own = owner_id == caller.user_id
        permanent = trash_until is None
        statement = delete_task(db.dialect_name, own=own, expected=len(if_match), traced=traced, permanent=permanent)
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
        return floor, [
            Change(int(row[1]), row[2], tuple(row[4:]), reminded=row[3] == row[1]) for row in rows if row[1] is not None
        ]

    async def restore(
        self, caller: Caller, owner_id: UUID, task_id: UUID, now: datetime, *, db: Statements | None = None
    ) -> Row | None:
        """Take the task out of the trash; None when it is not in the owner's trash (or the caller may not write)."""
        db = db or self.statements
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id, NOW: now}
        traced = _traceparent(params)
        return await db.one(restore_task(db.dialect_name, own=owner_id == caller.user_id, traced=traced), params)

    async def trash_page(
        self, caller: Caller, owner_id: UUID, now: datetime, *, page: int, limit: int
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One page of the owner's trash (rows: ``TASK_COLUMNS``, deleted_at, trash_expires_at) and its total."""
        return await fetch_page(
            self.statements,
            select_trash(own=owner_id == caller.user_id),
            {**caller_params(caller), OWNER: owner_id, NOW: now},
            page=page,
            limit=limit,
            on_empty=lambda: explain_refusal(self.statements, caller, owner_id=owner_id),
        )

    async def owned_labels(
        self, caller: Caller, owner_id: UUID, label_ids: list[UUID], *, db: Statements | None = None
    ) -> int:
        """How many of ``label_ids`` (distinct) are the owner's labels (0 if the caller may not read them)."""
        params = {**caller_params(caller), OWNER: owner_id, **label_params(label_ids)}
        row = await (db or self.statements).one(count_labels(len(label_ids), own=owner_id == caller.user_id), params)
        return int(row[0]) if row else 0

    async def owns_list(self, caller: Caller, owner_id: UUID, list_id: UUID, *, db: Statements | None = None) -> bool:
        """Whether ``list_id`` is one of the owner's lists (and the caller may read it)."""
        params = {**caller_params(caller), OWNER: owner_id, "list_id": list_id}
        return await (db or self.statements).one(list_of_owner(own=owner_id == caller.user_id), params) is not None

    async def set_labels(
        self, caller: Caller, owner_id: UUID, task_id: UUID, label_ids: list[UUID], *, db: Statements
    ) -> bool:
        """Make the owner's live task carry exactly ``label_ids`` (the owner's, checked before); whether it changed."""
        params = {**caller_params(caller), OWNER: owner_id, TASK: task_id, **label_params(label_ids)}
        own = owner_id == caller.user_id
        removed = await db.affected(remove_other_labels(len(label_ids), own=own), params)
        added = await db.affected(add_labels(len(label_ids), own=own), params) if label_ids else 0
        return removed + added > 0

    async def prune_tombstones(self, before: datetime) -> int:
        """Delete tombstones older than ``before``, out of the trash; their owners' feed floors rise past them first."""
        params = {"before": before, NOW: datetime.now(UTC)}
        async with self.statements.transaction() as db:
            await db.affected(raise_feed_floors(), params)
            return await db.affected(delete_tombstones(), params)
