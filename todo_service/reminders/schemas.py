"""Bodies of the ``/users/{user_id}/tasks/{task_id}/reminders`` routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from todo_service.core.schema import RequestBody

__all__ = ("MAX_BEFORE_DUE", "MAX_REMINDERS", "ReminderIn", "ReminderList", "ReminderRead", "ReminderSet")

MAX_REMINDERS = 10
MAX_BEFORE_DUE = 366 * 24 * 3600  # a year, in seconds


class ReminderIn(RequestBody, kw_only=True):
    """One reminder: exactly one of ``at`` (an instant) and ``before_due`` (seconds before the task is due)."""

    at: Annotated[datetime, msgspec.Meta(tz=True, examples=["2030-01-31T08:00:00Z"])] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    before_due: (
        Annotated[
            int,
            msgspec.Meta(
                ge=0,
                le=MAX_BEFORE_DUE,
                description="Seconds before the due (due_date, or the end of an all-day task's date: overdue_at).",
                examples=[3600],
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class ReminderSet(RequestBody):
    """The task's reminders, all of them (they replace the ones it had)."""

    reminders: Annotated[list[ReminderIn], msgspec.Meta(max_length=MAX_REMINDERS)]


class ReminderRead(msgspec.Struct, frozen=True):
    """A reminder: when it fires (``fire_at``; null while a ``before_due`` one has no due) and when it did."""

    id: UUID
    at: datetime | None
    before_due: int | None
    fire_at: datetime | None
    fired_at: datetime | None


class ReminderList(msgspec.Struct, frozen=True):
    """A task's reminders, the next to fire first."""

    reminders: list[ReminderRead]
