"""Reminders: the rules of the routes, over todo_service/reminders/store.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.reminders.schemas import ReminderList, ReminderRead
from todo_service.reminders.store import reminders_of, set_reminders
from todo_service.security.access import refuse
from todo_service.tasks.errors import TaskNotFound

if TYPE_CHECKING:
    from uuid import UUID

    from todo_service.db.statements import Row, Statements
    from todo_service.reminders.schemas import ReminderIn
    from todo_service.security.access import Caller

__all__ = ("ReminderService",)


class ReminderService:
    """A task's reminders. One per app."""

    def __init__(self, statements: Statements) -> None:
        self.statements = statements

    async def replace(self, caller: Caller, owner_id: UUID, task_id: UUID, reminders: list[ReminderIn]) -> ReminderList:
        """Set the task's reminders (all of them).

        Raises:
            ValidationFailed: a reminder without exactly one of ``at`` and ``before_due``.
            TaskNotFound: no such task among the owner's (or someone else's).
        """
        for index, reminder in enumerate(reminders):
            if (reminder.at is msgspec.UNSET) == (reminder.before_due is msgspec.UNSET):
                message = "give exactly one of at and before_due"
                field = f"reminders[{index}]"
                raise ValidationFailed(
                    f"Invalid {field}: {message}", errors=[FieldError(field=field, message=message, source="body")]
                )
        rows = await set_reminders(self.statements, caller, owner_id, task_id, reminders)
        return await self._answer(caller, owner_id, rows, write=True)

    async def read(self, caller: Caller, owner_id: UUID, task_id: UUID) -> ReminderList:
        """The task's reminders, the next to fire first.

        Raises:
            TaskNotFound: no such task among the owner's (or someone else's).
        """
        rows = await reminders_of(self.statements, caller, owner_id, task_id)
        return await self._answer(caller, owner_id, rows, write=False)

    async def _answer(self, caller: Caller, owner_id: UUID, rows: list[Row] | None, *, write: bool) -> ReminderList:
        if rows is None:
            await refuse(self.statements, caller, owner_id=owner_id, write=write, otherwise=TaskNotFound())
        return ReminderList(reminders=[ReminderRead(*row) for row in rows])
