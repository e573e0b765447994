"""Tasks: the rules of the task routes, over :class:`~todo_service.tasks.repository.TaskRepository`.

The repository answers None when a statement found nothing it may touch; the service tells the
caller why (:func:`~todo_service.security.access.refuse`: a 404 for a task that is not there or not
theirs, a 403 or 401 when their own permission is the reason). (Over 300 lines on purpose: one
service per route family, and a task's writes share their rules: lists, labels, the trash, subtasks,
order and recurrence each touch the same create and update paths.)
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from todo_service.core.errors import AppError, FieldError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from todo_service.core.pagination import Page
from todo_service.db.driver_errors import foreign_key_violated
from todo_service.http.conditional import items_etag, page_etag
from todo_service.security.access import refuse
from todo_service.tasks.cursors import FIRST, START
from todo_service.tasks.errors import CursorExpired, TaskNotFound
from todo_service.tasks.ordering import duplicate_position, move_task, reposition_trashed
from todo_service.tasks.placement import changed_columns, moved_subtree, needs_transaction, new_task_columns
from todo_service.tasks.queries import as_utc, keys_of
from todo_service.tasks.schedule import Schedule, owner_zone, record_completion
from todo_service.tasks.schemas import (
    READ_ONLY_FIELDS,
    ChangePage,
    FiredReminder,
    TaskDeleted,
    TaskRead,
    TaskScroll,
    TaskUpserted,
    TrashedTask,
)
from todo_service.tasks.tree import delete_subtree, lineage, reattach, restore_subtree

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from uuid import UUID

    from todo_service.db.statements import Row, Statements
    from todo_service.idempotency.store import Idempotency
    from todo_service.security.access import Caller
    from todo_service.tasks.cursors import Cursors
    from todo_service.tasks.repository import TaskRepository
    from todo_service.tasks.schemas import TaskCreate, TaskFilters

__all__ = ("TaskService",)

LIST, LABELS = "list_id", "label_ids"


def _upserted(task: TaskRead, *, reminded: bool) -> TaskUpserted:
    """The feed's upsert; a fired reminder's carries when it was due (``reminded_at``, its ``fire_at``)."""
    if reminded and task.reminded_at is not None:
        return TaskUpserted(task=task, reminder=FiredReminder(fire_at=task.reminded_at))
    return TaskUpserted(task=task)


def _not_your(field: str) -> ValidationFailed:
    """A 422 for a list or label that is not one of the owner's (missing and someone else's alike)."""
    what = "one of the user's lists" if field == LIST else "ids of the user's labels"
    error = FieldError(field=field, message=f"must be {what}", source="body")
    return ValidationFailed(f"Invalid {field}: must be {what}", errors=[error])


class TaskService:
    """A user's tasks. One per app, shared by every request.

    Writes take ``if_match`` (the revisions an ``If-Match`` header names; None: no precondition)
    and ``db`` (a transaction to run in, for batches and idempotent requests).
    """

    # Told the owner's id after each write (SQLite only: the live events' in-process hub; on PostgreSQL
    # a trigger's NOTIFY does this). Inside ``db`` the write is not committed yet: the hub reads again shortly.
    on_change: Callable[[UUID], None] | None = None
    # Told, inside the write's transaction, when a task's due moved (its owner, the task): the
    # reminders counted from the due follow it (todo_service/reminders; app.py sets it).
    on_due_change: Callable[[Statements, UUID, TaskRead], Awaitable[None]] | None = None

    def __init__(
        self,
        repository: TaskRepository,
        cursors: Cursors,
        idempotency: Idempotency,
        *,
        trash_retention: timedelta = timedelta(days=30),
    ) -> None:
        self.repository = repository
        self.trash_retention = trash_retention
        self.cursors = cursors
        # The routes' Idempotency-Key store, here so that a route needs one dependency, not two:
        # Litestar resolves two dependencies of one level in an anyio task group (a third of a create's CPU).
        self.idempotency = idempotency

    async def list_page(self, caller: Caller, owner_id: UUID, filters: TaskFilters) -> tuple[Page[TaskRead], str]:
        """One page of ``owner_id``'s tasks with the total (one round trip), and the page's ETag.

        The ETag is made from what the page shows (each task's revision, the total, the page): it
        changes exactly when the page's body would.
        """
        rows, total = await self.repository.page(caller, owner_id, filters)
        page = Page.of([TaskRead(*row) for row in rows], total=total, page=filters.page, limit=filters.limit)
        return page, page_etag(page)

    async def scroll(self, caller: Caller, owner_id: UUID, filters: TaskFilters, cursor: str) -> tuple[TaskScroll, str]:
        """The tasks after ``cursor`` (``start``: the first ones) in the listing's order, and their ETag.

        Keyset pagination: no total, and no OFFSET, so every stretch costs what the first does.

        Raises:
            ValidationFailed: ``cursor`` is not one of this listing's (another user's, other filters or sort).
        """
        after = None if cursor == FIRST else self.cursors.listing.read(owner_id, filters, cursor)
        rows = await self.repository.scroll(caller, owner_id, filters, after)
        items = [TaskRead(*row) for row in rows[: filters.limit]]
        has_more = len(rows) > filters.limit
        next_cursor = None
        if has_more:
            next_cursor = self.cursors.listing.make(owner_id, filters, keys_of(items[-1], filters.sort))
        found = TaskScroll(items=items, limit=filters.limit, next_cursor=next_cursor, has_more=has_more)
        return found, items_etag(f"{cursor}/{filters.limit}/{next_cursor}", items)

    async def get_task(
        self, caller: Caller, owner_id: UUID, task_id: UUID, *, db: Statements | None = None
    ) -> TaskRead:
        """One task of ``owner_id``.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        row = await self.repository.one(caller, owner_id, task_id, db=db)
        if row is None:
            await self._refuse(caller, owner_id, write=False, otherwise=TaskNotFound())
        return TaskRead(*row)

    async def create_task(
        self, caller: Caller, owner_id: UUID, data: TaskCreate, *, db: Statements | None = None
    ) -> TaskRead:
        """Add a task to ``owner_id``'s list (one INSERT … SELECT, guarded by the caller's permission)."""
        now = datetime.now(UTC)
        values = {
            "id": uuid.uuid4(),
            "title": data.title,
            "description": data.description,
            "completed": data.completed,
            "priority": data.priority,
            "due_date": as_utc(data.due_date),
            "completed_at": now if data.completed else None,
            "created_at": now,
            "updated_at": now,
            "list_id": data.list_id,
        }
        # Its parent (and so its list), its place at the end of its siblings, its schedule (a 422 if invalid).
        values.update(await new_task_columns(db or self.repository.statements, owner_id, data, now))
        labels = list(dict.fromkeys(data.label_ids))
        async with self._in_transaction(db, needed=bool(labels)) as tx:
            if labels:
                await self._check_labels(caller, owner_id, labels, tx)
            try:
                row = await self.repository.insert(caller, owner_id, values, db=tx)
            except Exception as exc:
                if data.list_id is not None and foreign_key_violated(exc):
                    raise _not_your(LIST) from exc  # the list was deleted while the task went in
                raise
            if row is None:
                # A list that is not the owner's inserts nothing; otherwise, allowed now but refused a
                # moment ago means the caller's role changed in between.
                refused = _not_your(LIST) if data.list_id is not None else Forbidden()
                await self._refuse(caller, owner_id, write=True, otherwise=refused)
            if labels and tx is not None:
                await self.repository.set_labels(caller, owner_id, row[0], labels, db=tx)
                # Re-read by a write that changes nothing: on SQLite it gives the labels to the pending
                # webhook deliveries of the insert's revision (trigger tasks_webhooks_refresh, migration 0009).
                row = await self.repository.update_fields(caller, owner_id, row[0], {}, now, db=tx)
                assert row is not None  # inserted in this transaction  # noqa: S101
        self._changed(owner_id)
        return TaskRead(*row)

    @contextlib.asynccontextmanager
    async def _in_transaction(self, db: Statements | None, *, needed: bool) -> AsyncIterator[Statements | None]:
        """``db``; else a new transaction when ``needed`` (several statements), else None (one statement)."""
        if db is not None or not needed:
            yield db
            return
        async with self.repository.statements.transaction() as tx:
            yield tx

    async def _check_labels(self, caller: Caller, owner_id: UUID, labels: list[UUID], db: Statements | None) -> None:
        if labels and await self.repository.owned_labels(caller, owner_id, labels, db=db) != len(labels):
            raise _not_your(LABELS)

    async def _apply_organisation(  # noqa: PLR0913  (the task, its changes, and how to run)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        changes: dict[str, Any],
        *,
        labels: list[UUID] | None,
        db: Statements | None,
    ) -> None:
        """Check a new ``list_id`` and set ``labels`` (None: unchanged); a change of labels moves ``updated_at``."""
        if "list_id" in changes and not await self.repository.owns_list(caller, owner_id, changes["list_id"], db=db):
            raise _not_your(LIST)
        if labels is None or db is None:
            return
        await self._check_labels(caller, owner_id, labels, db)
        if await self.repository.set_labels(caller, owner_id, task_id, labels, db=db):
            changes["updated_at"] = datetime.now(UTC)  # differs from the stored one: a new revision

    async def update_task(  # noqa: PLR0913  (the task, its changes, and how to run)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        changes: dict[str, Any],
        *,
        if_match: tuple[int, ...] | None = None,
        db: Statements | None = None,
    ) -> TaskRead:
        """Change the given fields (``None`` clears an optional one); completion stamps ``completed_at``.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
            PreconditionFailed: the task is no longer at a revision ``if_match`` names.
        """
        changes = dict(changes)
        if "due_date" in changes:
            changes["due_date"] = as_utc(changes["due_date"])
        labels = list(dict.fromkeys(changes.pop("label_ids"))) if "label_ids" in changes else None
        async with self._in_transaction(db, needed=labels is not None or needs_transaction(changes)) as tx:
            now = datetime.now(UTC)
            on = tx or self.repository.statements
            # The parent's list, a new position, the schedule's columns (a 422 if invalid).
            changes = await changed_columns(on, self.repository, caller, owner_id, task_id, changes=changes, now=now)
            await self._apply_organisation(caller, owner_id, task_id, changes, labels=labels, db=tx)
            row = await self.repository.update_fields(
                caller, owner_id, task_id, changes, now, if_match=if_match or (), db=tx
            )
            if row is None:
                await self._refuse_write(caller, owner_id, task_id, if_match, tx)
            await moved_subtree(on, caller, owner_id, TaskRead(*row), changes=changes, now=now)
            if "overdue_at" in changes and self.on_due_change is not None:
                await self.on_due_change(on, owner_id, TaskRead(*row))
        self._changed(owner_id)
        return TaskRead(*row)

    async def edit(  # noqa: PLR0913  (the task, its fields, and how to run)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        fields: dict[str, Any],
        *,
        if_match: tuple[int, ...] | None = None,
        db: Statements | None = None,
    ) -> TaskRead:
        """A PUT: :meth:`update_task` with ``fields`` as sent, read-only ones included.

        A read-only field (``id``, ``etag``, ...) equal to the stored value is ignored (a PUT of what
        a GET returned); a different one is refused, naming it.

        Raises:
            ValidationFailed: a read-only field differs from the task.
        """
        changes = dict(fields)
        if stated := {name: changes.pop(name) for name in READ_ONLY_FIELDS if name in changes}:
            stored = await self.get_task(caller, owner_id, task_id, db=db)
            if differ := [name for name, value in stated.items() if getattr(stored, name) != value]:
                errors = [
                    FieldError(field=name, message="is read-only and differs from the task", source="body")
                    for name in differ
                ]
                raise ValidationFailed(f"Invalid {differ[0]}: is read-only and differs from the task", errors=errors)
        if changes.get("completed") is True:
            # Completing a recurring task moves it to its next occurrence, however it is completed.
            return await self._edit_and_complete(caller, owner_id, task_id, changes=changes, if_match=if_match, db=db)
        return await self.update_task(caller, owner_id, task_id, changes, if_match=if_match, db=db)

    async def _edit_and_complete(  # noqa: PLR0913  (the task, its fields, and how to run)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        *,
        changes: dict[str, Any],
        if_match: tuple[int, ...] | None,
        db: Statements | None,
    ) -> TaskRead:
        """A PUT with ``completed: true``: the other fields, then :meth:`complete`, in one transaction."""
        rest = {name: value for name, value in changes.items() if name != "completed"}
        async with self._in_transaction(db, needed=True) as tx:
            if rest:
                await self.update_task(caller, owner_id, task_id, rest, if_match=if_match, db=tx)
                if_match = None  # checked by that write, in this transaction
            return await self.complete(caller, owner_id, task_id, completed=True, if_match=if_match, db=tx)

    async def complete(  # noqa: PLR0913  (the task, the flag, and how to run)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        *,
        completed: bool,
        if_match: tuple[int, ...] | None = None,
        db: Statements | None = None,
    ) -> TaskRead:
        """Mark a task done (stamping ``completed_at``) or not done (clearing it).

        A recurring task is not marked done: its completion is recorded and it moves to its next
        occurrence (tasks/schedule.py), unless its rule has none left.
        """
        if completed:
            # Most tasks do not recur: one UPDATE completes them. Otherwise (None) the task is
            # recurring, or missing, refused or at another revision: the slower path tells which.
            now = datetime.now(UTC)
            changes = {"completed": True}
            row = await self.repository.update_fields(
                caller, owner_id, task_id, changes, now, if_match=if_match or (), one_off=True, db=db
            )
            if row is not None:
                self._changed(owner_id)
                return TaskRead(*row)
            if advanced := await self._complete_occurrence(caller, owner_id, task_id, if_match, db):
                return advanced
        return await self.update_task(caller, owner_id, task_id, {"completed": completed}, if_match=if_match, db=db)

    async def move(  # noqa: PLR0913  (the task, where it goes, the precondition)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        *,
        anchor_id: UUID | None,
        after: bool,
        if_match: tuple[int, ...] | None = None,
    ) -> TaskRead:
        """Move a task right after (or before) a sibling, or first (last): one row changes (tasks/ordering.py).

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
            PreconditionFailed: the task is no longer at a revision ``if_match`` names.
            ValidationFailed: the anchor is not a sibling of the task.
        """
        row = await move_task(
            self.repository, caller, owner_id, task_id, anchor_id=anchor_id, after=after, if_match=if_match or ()
        )
        if row is None:
            await self._refuse_write(caller, owner_id, task_id, if_match, None)
        self._changed(owner_id)
        return TaskRead(*row)

    async def _complete_occurrence(
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        if_match: tuple[int, ...] | None,
        db: Statements | None,
    ) -> TaskRead | None:
        """Complete the current occurrence of a recurring task; None when it is not one (or has no next)."""
        async with self._in_transaction(db, needed=True) as tx:
            assert tx is not None  # noqa: S101  (needed=True)
            row = await self.repository.one(caller, owner_id, task_id, db=tx)
            if row is None or (stored := TaskRead(*row)).rrule is None or stored.completed:
                return None
            revision = int(stored.etag.strip('"'))
            if if_match is not None and revision not in if_match:
                raise PreconditionFailed(headers={"ETag": stored.etag})
            now = datetime.now(UTC)
            schedule = Schedule(stored.due_date, stored.due_on, stored.rrule, stored.timezone)
            columns = schedule.advanced(await owner_zone(tx, owner_id), now)
            if columns is None:
                return None
            await record_completion(tx, owner_id, stored.id, now, due_date=stored.due_date, due_on=stored.due_on)
            row = await self.repository.update_fields(
                caller, owner_id, task_id, columns, now, if_match=(revision,), db=tx
            )
            if row is None:  # changed since it was read
                await self._refuse_write(caller, owner_id, task_id, (revision,), tx)
            if self.on_due_change is not None:
                await self.on_due_change(tx, owner_id, TaskRead(*row))
        self._changed(owner_id)
        return TaskRead(*row)

    async def delete_task(  # noqa: PLR0913  (the task, the precondition, and how to run)
        self,
        caller: Caller,
        owner_id: UUID,
        task_id: UUID,
        *,
        if_match: tuple[int, ...] | None = None,
        permanent: bool = False,
        db: Statements | None = None,
    ) -> None:
        """Delete a task: every route answers 404 for it from now on; the change feed reports it.

        It goes to the trash, restorable for ``trash_retention``; ``permanent`` deletes it for good,
        a task in the trash too.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
            PreconditionFailed: the task is no longer at a revision ``if_match`` names.
        """
        now = datetime.now(UTC)
        until = None if permanent else now + self.trash_retention
        async with self._in_transaction(db, needed=True) as tx:
            if not await self.repository.remove(
                caller, owner_id, task_id, now, if_match=if_match or (), trash_until=until, db=tx
            ):
                await self._refuse_write(caller, owner_id, task_id, if_match, tx)
            # Its subtasks go with it (tasks/tree.py).
            assert tx is not None  # noqa: S101  (needed=True)
            await delete_subtree(tx, caller, owner_id, task_id, now, trash_expires_at=until)
        self._changed(owner_id)

    async def restore_task(self, caller: Caller, owner_id: UUID, task_id: UUID) -> TaskRead:
        """Take a task out of the trash, as it was (in its list, or the Inbox if its list was deleted).

        Its ancestors in the trash come back with it, and a subtask hangs from its live ancestor's
        list (tasks/tree.py, :func:`~todo_service.tasks.tree.lineage`).

        Raises:
            TaskNotFound: the task is not in the owner's trash (never was, expired, or someone else's).
        """
        now = datetime.now(UTC)
        try:
            row = await self._restore(caller, owner_id, task_id, now)
        except Exception as exc:
            if not duplicate_position(exc):
                raise
            # A place among siblings was taken while they were in the trash: the tasks coming back go last.
            statements = self.repository.statements
            found = await lineage(statements, owner_id, task_id, now=now)
            for trashed in (task_id, *(found.ancestors if found else ())):
                await reposition_trashed(statements, owner_id, trashed, now)
            row = await self._restore(caller, owner_id, task_id, now)
        self._changed(owner_id)
        return TaskRead(*row)

    async def _restore(self, caller: Caller, owner_id: UUID, task_id: UUID, now: datetime) -> Row:
        async with self.repository.statements.transaction() as tx:
            found = await lineage(tx, owner_id, task_id, now=now)
            # The subtasks that went to the trash with it come back with it (tasks/tree.py).
            await restore_subtree(tx, caller, owner_id, task_id, now=now)
            row = await self.repository.restore(caller, owner_id, task_id, now, db=tx)
            if row is None or found is None:
                await self._refuse(caller, owner_id, write=True, otherwise=TaskNotFound())
            # Its ancestors in the trash, each alone (a concurrent restore may have brought one back already).
            for ancestor in found.ancestors:
                await self.repository.restore(caller, owner_id, ancestor, now, db=tx)
            if found.reattach:
                await reattach(tx, caller, owner_id, found, now=now)
                row = await self.repository.one(caller, owner_id, task_id, db=tx)
                assert row is not None  # restored above, in this transaction  # noqa: S101
        return row

    async def trash(self, caller: Caller, owner_id: UUID, *, page: int, limit: int) -> Page[TrashedTask]:
        """One page of the owner's trash, most recently deleted first."""
        rows, total = await self.repository.trash_page(caller, owner_id, datetime.now(UTC), page=page, limit=limit)
        return Page.of([TrashedTask(*row) for row in rows], total=total, page=page, limit=limit)

    async def changes(self, caller: Caller, owner_id: UUID, cursor: str | None, limit: int) -> ChangePage:
        """The changes to ``owner_id``'s tasks after ``cursor`` (None: from the beginning), in commit order.

        Raises:
            ValidationFailed: ``cursor`` is not one this service gave out for this user's feed.
            CursorExpired: tombstones after ``cursor`` were pruned: the client must start again.
        """
        after = START if cursor is None else self.cursors.read(owner_id, cursor)
        shown, has_more = await self.changes_after(caller, owner_id, after, limit)
        if shown:
            next_cursor = self.cursors.make(owner_id, shown[-1][0])
        else:  # nothing new: the same position (an up-to-date poll signs nothing)
            next_cursor = cursor or self.cursors.make(owner_id, after)
        return ChangePage(changes=[change for _, change in shown], next_cursor=next_cursor, has_more=has_more)

    async def changes_after(
        self, caller: Caller, owner_id: UUID, after: tuple[int, UUID], limit: int
    ) -> tuple[list[tuple[tuple[int, UUID], TaskUpserted | TaskDeleted]], bool]:
        """Up to ``limit`` changes after ``after`` (revision, task id), each with its position; more to come.

        The feed route pages with it; event streams give each event its own cursor from the position.

        Raises:
            TokenRevoked, InvalidToken, Forbidden, NotFound: the caller may not read the owner's tasks.
            CursorExpired: tombstones after ``after`` were pruned: the client must start again.
        """
        found = await self.repository.changes(caller, owner_id, after, limit + 1)
        if found is None:  # no such owner, or the caller may not read their tasks
            await self._refuse(caller, owner_id, write=False, otherwise=NotFound("No such user"))
        floor, rows = found
        if after != START and after[0] < floor:
            raise CursorExpired
        changes = [
            (
                (row.revision, row.task[0]),
                _upserted(TaskRead(*row.task), reminded=row.reminded)
                if row.deleted_at is None
                else TaskDeleted(task_id=row.task[0], deleted_at=row.deleted_at),
            )
            for row in rows[:limit]
        ]
        return changes, len(rows) > limit

    def _changed(self, owner_id: UUID) -> None:
        if self.on_change is not None:
            self.on_change(owner_id)

    async def _refuse_write(
        self, caller: Caller, owner_id: UUID, task_id: UUID, if_match: tuple[int, ...] | None, db: Statements | None
    ) -> NoReturn:
        """Why a guarded write found nothing: a stale ``If-Match`` (412), else :meth:`_refuse`."""
        if if_match is not None and (current := await self.repository.one(caller, owner_id, task_id, db=db)):
            etag = TaskRead(*current).etag
            raise PreconditionFailed(headers={"ETag": etag})
        await self._refuse(caller, owner_id, write=True, otherwise=TaskNotFound())

    async def _refuse(self, caller: Caller, owner_id: UUID, *, write: bool, otherwise: AppError) -> NoReturn:
        await refuse(self.repository.statements, caller, owner_id=owner_id, write=write, otherwise=otherwise)
