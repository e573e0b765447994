"""The change feed read for a stream: the same statement as ``GET .../tasks/changes``, with a cursor per change.

The feed's page gives one cursor, after its last change; an event stream needs one per event (its
``id:``), so that a client that drops mid-page resumes after the last event it got, with no repeat.
So this reads :meth:`TaskService.changes_after` (the route's own reading, its checks included:
the caller's permission, an expired cursor) and makes a cursor for each change with the service's
:class:`~todo_service.tasks.cursors.Cursors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.tasks.cursors import START

if TYPE_CHECKING:
    from uuid import UUID

    from todo_service.security.access import Caller
    from todo_service.tasks.schemas import TaskDeleted, TaskUpserted
    from todo_service.tasks.services import TaskService

__all__ = ("LAST_EVENT_ID", "Event", "Feed", "Position")

LAST_EVENT_ID = "Last-Event-ID"

Position = tuple[int, "UUID"]  # (revision, task id): where a reader is in the feed


class Event(NamedTuple):
    """One change of the feed and the cursor after it."""

    position: Position
    cursor: str
    change: TaskUpserted | TaskDeleted


class Feed:
    """Reads of one owner's feed, for the event streams."""

    def __init__(self, tasks: TaskService) -> None:
        self.tasks = tasks

    def position(self, owner_id: UUID, cursor: str | None, *, source: str) -> Position:
        """Where ``cursor`` (a ``Last-Event-ID``, or the ``cursor`` parameter) points; None: the beginning.

        Raises:
            ValidationFailed: not a cursor of this owner's feed (``source`` names the header or parameter).
        """
        if cursor is None:
            return START
        try:
            return self.tasks.cursors.read(owner_id, cursor)
        except ValidationFailed:
            message = "is not an event id of this stream: open it again without one"
            where = "header" if source == LAST_EVENT_ID else "query"
            error = FieldError(field=source, message=message, source=where)
            raise ValidationFailed(f"Invalid {source}: {message}", errors=[error]) from None

    async def after(self, caller: Caller, owner_id: UUID, after: Position, limit: int) -> tuple[list[Event], bool]:
        """Up to ``limit`` changes after ``after`` in commit order, each with its cursor, and whether more follow.

        Raises:
            TokenRevoked, InvalidToken, Forbidden, NotFound: the caller may not read the owner's tasks (any more).
            CursorExpired: tombstones after ``after`` were pruned: the client must start again.
        """
        changes, has_more = await self.tasks.changes_after(caller, owner_id, after, limit)
        make = self.tasks.cursors.make
        return [Event(position, make(owner_id, position), change) for position, change in changes], has_more
