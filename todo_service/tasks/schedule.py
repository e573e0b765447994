"""A task's schedule: its due instant or all-day due date, its time zone, its recurrence; when it is overdue.

The rules (docs/api.md, "Due dates, time zones and recurrence"):

- ``due_date`` is an instant (as before); ``due_on`` a calendar date, for an all-day task. A task
  has one or the other, never both.
- A task's time zone is its ``timezone``, else its owner's (``/users/me``), else UTC. Tasks without
  their own zone follow the owner's when it changes.
- ``overdue_at``: ``due_date``, or for an all-day task the end of ``due_on`` in the task's zone (the
  next midnight there). The ``overdue`` filter compares it with the time of the request.
- ``rrule`` needs a due (``due_date`` or ``due_on``); it is validated (tasks/recurrence.py) and
  stored normalised. Completing a recurring task records the completion (``task_completions``)
  and moves the due to the next occurrence after both the current due and now (occurrences missed
  while overdue are skipped, once); ``completed`` stays false. When the rule has no next
  occurrence, the completion is an ordinary one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Insert, Select, bindparam, insert, select

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.db.models import TaskCompletion, User
from todo_service.tasks.recurrence import (
    RecurrenceError,
    check_series,
    next_date,
    next_occurrence,
    parse_rule,
    parse_zone,
)

if TYPE_CHECKING:
    from uuid import UUID
    from zoneinfo import ZoneInfo

    from todo_service.db.statements import Statements

__all__ = ("SCHEDULE_FIELDS", "Schedule", "owner_zone", "record_completion", "zone_of")

SCHEDULE_FIELDS = frozenset({"due_date", "due_on", "rrule", "timezone"})


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid {field}: {message}", errors=[FieldError(field=field, message=message, source="body")]
    )


@cache
def _owner_zone() -> Select[Any]:
    return select(User.timezone).where(User.id == bindparam("owner_id", type_=User.id.type))


async def owner_zone(db: Statements, owner_id: UUID) -> str | None:
    """The owner's time zone setting (None: UTC)."""
    row = await db.one(_owner_zone(), {"owner_id": owner_id})
    return None if row is None else row[0]


@cache
def _insert_completion() -> Insert:
    names = ("id", "task_id", "user_id", "completed_at", "due_date", "due_on")
    columns = TaskCompletion.__table__.c
    return insert(TaskCompletion).values({name: bindparam(name, type_=columns[name].type) for name in names})


async def record_completion(  # noqa: PLR0913  (the occurrence completed)
    db: Statements, owner_id: UUID, task_id: UUID, now: datetime, *, due_date: datetime | None, due_on: date | None
) -> None:
    """Record that the occurrence due at ``due_date`` (or on ``due_on``) of a recurring task was completed."""
    values = {
        "id": uuid.uuid4(),
        "task_id": task_id,
        "user_id": owner_id,
        "completed_at": now,
        "due_date": due_date,
        "due_on": due_on,
    }
    await db.affected(_insert_completion(), values)


def zone_of(task_zone: str | None, owner: str | None) -> ZoneInfo:
    """The zone a task's dates are in: its own, else its owner's, else UTC."""
    return parse_zone(task_zone or owner or "UTC")


@dataclass(frozen=True, slots=True)
class Schedule:
    """The schedule fields of a task."""

    due_date: datetime | None = None
    due_on: date | None = None
    rrule: str | None = None
    timezone: str | None = None

    @classmethod
    def of(cls, values: dict[str, Any], stored: Schedule | None = None) -> Schedule:
        """The schedule after ``values`` (the fields sent) over ``stored`` (None: a new task)."""
        base = stored or cls()
        return replace(base, **{name: value for name, value in values.items() if name in SCHEDULE_FIELDS})

    def checked(self, owner: str | None) -> dict[str, Any]:
        """The columns to store for this schedule (``rrule`` normalised, ``overdue_at``); a 422 if it is invalid."""
        if self.due_date is not None and self.due_on is not None:
            message = "a task has a due time (due_date) or an all-day due date (due_on), not both"
            raise _invalid("due_on", message)
        if self.timezone is not None:
            try:
                parse_zone(self.timezone)
            except RecurrenceError as exc:
                raise _invalid("timezone", str(exc)) from exc
        zone = zone_of(self.timezone, owner)
        rrule = self.rrule
        if rrule is not None:
            start: datetime | date | None = self.due_date if self.due_date is not None else self.due_on
            if start is None:
                raise _invalid("rrule", "a recurring task needs a due_date or a due_on")
            try:
                rule = parse_rule(rrule, all_day=self.due_on is not None)
                check_series(rule, start, zone)
            except RecurrenceError as exc:
                raise _invalid("rrule", str(exc)) from exc
            rrule = rule.text()
        return {**self.columns(), "rrule": rrule, "overdue_at": self.overdue_at(zone)}

    def columns(self) -> dict[str, Any]:
        """The schedule as column values."""
        return {"due_date": self.due_date, "due_on": self.due_on, "rrule": self.rrule, "timezone": self.timezone}

    def overdue_at(self, zone: ZoneInfo) -> datetime | None:
        """When the task becomes overdue: its due instant, or the next midnight after its due date in ``zone``."""
        if self.due_date is not None:
            return self.due_date
        if self.due_on is None:
            return None
        return datetime.combine(self.due_on + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)

    def advanced(self, owner: str | None, now: datetime) -> dict[str, Any] | None:
        """The columns of the next occurrence after the current due and ``now`` (None: the series ended)."""
        if self.rrule is None:
            return None
        zone = zone_of(self.timezone, owner)
        rule = parse_rule(self.rrule, all_day=self.due_on is not None)
        if self.due_date is not None:
            instant = next_occurrence(rule, zone, self.due_date, max(self.due_date, now))
            if instant is None:
                return None
            following = replace(self, due_date=instant.at, rrule=rule.text(instant.count))
        elif self.due_on is not None:
            day = next_date(rule, self.due_on, max(self.due_on, now.astimezone(zone).date()))
            if day is None:
                return None
            following = replace(self, due_on=day.at, rrule=rule.text(day.count))
        else:  # pragma: no cover  (checked() refuses a rule without a due)
            return None
        return {**following.columns(), "overdue_at": following.overdue_at(zone)}
