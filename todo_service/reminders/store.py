"""The reminders' statements: a task's set of reminders, and their firing times following its due.

A reminder fires at ``at``, or ``before_due`` seconds before the task's ``overdue_at`` (its due
instant, or the end of an all-day task's date in its zone). ``fire_at`` holds that instant; when
the task's due moves (an edit, or a recurring task's next occurrence) the ``before_due`` reminders
move with it and may fire again (todo_service/reminders/worker.py fires them).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Delete, Insert, Select, Update, bindparam, delete, insert, select, update

from todo_service.db.models import Task, TaskReminder
from todo_service.security.access import caller_params, guard

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from todo_service.db.statements import Row, Statements
    from todo_service.reminders.schemas import ReminderIn
    from todo_service.security.access import Caller
    from todo_service.tasks.schemas import TaskRead

__all__ = ("READ_COLUMNS", "follow_due", "reminders_of", "set_reminders")

_COLUMNS = TaskReminder.__table__.c
READ_COLUMNS = (TaskReminder.id, TaskReminder.at, TaskReminder.before_due, TaskReminder.fire_at, TaskReminder.fired_at)


@cache
def _task(*, own: bool, write: bool) -> Select[Any]:
    """The live task ``:task_id`` of ``:owner_id`` and when it is due, if the caller may read (write) it."""
    return select(Task.id, Task.overdue_at).where(
        Task.id == bindparam("task_id", type_=Task.id.type),
        Task.user_id == bindparam("owner_id", type_=Task.user_id.type),
        Task.deleted_at.is_(None),
        guard(own=own, write=write),
    )


@cache
def _list() -> Select[Any]:
    return (
        select(*READ_COLUMNS)
        .where(TaskReminder.task_id == bindparam("task_id", type_=TaskReminder.task_id.type))
        .order_by(TaskReminder.fire_at.is_(None), TaskReminder.fire_at, TaskReminder.id)
    )


@cache
def _clear() -> Delete:
    return delete(TaskReminder).where(TaskReminder.task_id == bindparam("task_id", type_=TaskReminder.task_id.type))


@cache
def _insert() -> Insert:
    names = ("id", "task_id", "user_id", "at", "before_due", "fire_at", "fired_at")
    return insert(TaskReminder).values({name: bindparam(name, type_=_COLUMNS[name].type) for name in names})


def _fire_at(before_due: int | None, at: datetime | None, due: datetime | None) -> datetime | None:
    if at is not None:
        return at
    return None if due is None or before_due is None else due - timedelta(seconds=before_due)


async def set_reminders(
    statements: Statements, caller: Caller, owner_id: UUID, task_id: UUID, reminders: list[ReminderIn]
) -> list[Row] | None:
    """Replace the task's reminders (one transaction): its reminders now, or None if it is not there to write."""
    params = {**caller_params(caller), "owner_id": owner_id, "task_id": task_id}
    async with statements.transaction() as tx:
        task = await tx.one(_task(own=owner_id == caller.user_id, write=True), params)
        if task is None:
            return None
        await tx.affected(_clear(), {"task_id": task_id})
        for reminder in reminders:
            at = None if reminder.at is msgspec.UNSET else reminder.at
            before = None if reminder.before_due is msgspec.UNSET else reminder.before_due
            values = {
                "id": uuid.uuid4(),
                "task_id": task_id,
                "user_id": owner_id,
                "at": at,
                "before_due": before,
                "fire_at": _fire_at(before, at, task[1]),
                "fired_at": None,
            }
            await tx.affected(_insert(), values)
        return await tx.all(_list(), {"task_id": task_id})


async def reminders_of(statements: Statements, caller: Caller, owner_id: UUID, task_id: UUID) -> list[Row] | None:
    """The task's reminders, or None when the caller may not read the task (or it is not there)."""
    params = {**caller_params(caller), "owner_id": owner_id, "task_id": task_id}
    if await statements.one(_task(own=owner_id == caller.user_id, write=False), params) is None:
        return None
    return await statements.all(_list(), {"task_id": task_id})


@cache
def _relative() -> Select[Any]:
    return select(TaskReminder.id, TaskReminder.before_due).where(
        TaskReminder.task_id == bindparam("task_id", type_=TaskReminder.task_id.type),
        TaskReminder.before_due.is_not(None),
    )


@cache
def _move() -> Update:
    return (
        update(TaskReminder)
        .where(TaskReminder.id == bindparam("reminder_id", type_=TaskReminder.id.type))
        .values(fire_at=bindparam("fire_at", type_=_COLUMNS["fire_at"].type), fired_at=None)
    )


async def follow_due(db: Statements, owner_id: UUID, task: TaskRead) -> None:  # noqa: ARG001  (TaskService's hook)
    """The task's due moved: its ``before_due`` reminders move with it, to fire (again) before the new due."""
    for reminder_id, before in await db.all(_relative(), {"task_id": task.id}):
        await db.affected(_move(), {"reminder_id": reminder_id, "fire_at": _fire_at(before, None, task.overdue_at)})
