"""What a task write implies beyond its own columns: its place in the tree and the order, and its schedule.

:class:`~todo_service.tasks.services.TaskService` calls these around its statements: the rules of
subtasks (tasks/tree.py), manual order (tasks/ordering.py) and schedules (tasks/schedule.py) stay
in their modules, and the service says only when they apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.tasks.ordering import new_rank
from todo_service.tasks.queries import as_utc
from todo_service.tasks.schedule import SCHEDULE_FIELDS, Schedule, owner_zone
from todo_service.tasks.schemas import TaskRead
from todo_service.tasks.tree import move_subtree_to_list, place_under

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from todo_service.db.statements import Statements
    from todo_service.security.access import Caller
    from todo_service.tasks.repository import TaskRepository
    from todo_service.tasks.schemas import TaskCreate

__all__ = ("PLACED_FIELDS", "changed_columns", "moved_subtree", "needs_transaction", "new_task_columns")

# The fields whose change needs a read of the task (or its parent) before the write.
PLACED_FIELDS = frozenset({"parent_id", "list_id", *SCHEDULE_FIELDS})


def needs_transaction(changes: dict[str, Any]) -> bool:
    """Whether an update must run its statements in one transaction (a check, then the write)."""
    return bool(PLACED_FIELDS & changes.keys())


async def new_task_columns(db: Statements, owner_id: UUID, data: TaskCreate, now: datetime) -> dict[str, Any]:
    """The columns of a new task that its parent, its order and its schedule decide.

    Raises:
        ValidationFailed: an invalid parent, schedule or time zone.
    """
    columns: dict[str, Any] = {"parent_id": data.parent_id, "position": new_rank(now), "reminded_at": None}
    if data.parent_id is not None:
        placement = await place_under(db, owner_id, data.parent_id, list_id=data.list_id)
        columns["list_id"] = placement.list_id
    schedule = Schedule(due_date=as_utc(data.due_date), due_on=data.due_on, rrule=data.rrule, timezone=data.timezone)
    owner = await owner_zone(db, owner_id) if data.due_on is not None or data.rrule is not None else None
    return {**columns, **schedule.checked(owner)}


async def changed_columns(  # noqa: PLR0913  (the task, what changes, and where to read)
    db: Statements,
    repository: TaskRepository,
    caller: Caller,
    owner_id: UUID,
    task_id: UUID,
    *,
    changes: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """``changes`` with what follows from them: the parent's list, a new position, the schedule's columns.

    Reads the task only when a placed field changes. A task that changes list or parent goes to the
    end of its new siblings.

    Raises:
        ValidationFailed: an invalid parent, list, schedule or time zone.
    """
    if not PLACED_FIELDS & changes.keys():
        return changes
    row = await repository.one(caller, owner_id, task_id, db=db)
    if row is None:
        return changes  # the write finds nothing either, and says why
    stored = TaskRead(*row)
    changes = dict(changes)
    parent = changes.get("parent_id", stored.parent_id)
    if "parent_id" in changes and parent is not None:
        wanted = changes.get("list_id")
        changes["list_id"] = (await place_under(db, owner_id, parent, task_id=task_id, list_id=wanted)).list_id
    elif "list_id" in changes and parent is not None and changes["list_id"] != stored.list_id:
        message = "a subtask is in its parent's list: move the parent, or set parent_id to null"
        raise ValidationFailed(
            f"Invalid list_id: {message}", errors=[FieldError(field="list_id", message=message, source="body")]
        )
    if changes.get("list_id", stored.list_id) != stored.list_id or parent != stored.parent_id:
        changes["position"] = new_rank(now)
    if SCHEDULE_FIELDS & changes.keys():
        if "due_date" in changes:
            changes["due_date"] = as_utc(changes["due_date"])
        schedule = Schedule.of(
            changes,
            Schedule(due_date=stored.due_date, due_on=stored.due_on, rrule=stored.rrule, timezone=stored.timezone),
        )
        changes.update(schedule.checked(await owner_zone(db, owner_id)))
    return changes


async def moved_subtree(  # noqa: PLR0913  (the task, what changed, and where to write)
    db: Statements, caller: Caller, owner_id: UUID, task: TaskRead, *, changes: dict[str, Any], now: datetime
) -> None:
    """After a task's list changed, take its subtasks along (those not there yet)."""
    if "list_id" in changes:
        await move_subtree_to_list(db, caller, owner_id, task.id, list_id=task.list_id, now=now)
