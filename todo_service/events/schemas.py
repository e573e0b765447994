"""What the live-event routes answer, and how one change is written on the stream."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from todo_service.tasks.schemas import TaskDeleted, TaskUpserted

__all__ = ("KEEP_ALIVE", "EventMessage", "StreamTicket", "encode_event", "event_name")

KEEP_ALIVE = b": keep-alive\n\n"
_encode = msgspec.json.Encoder().encode


class StreamTicket(msgspec.Struct, frozen=True):
    """A short-lived ticket for one user's event stream: ``GET .../tasks/events?ticket=...``."""

    ticket: Annotated[str, msgspec.Meta(description="Opaque; valid only for this user's events route")]
    expires_in: Annotated[int, msgspec.Meta(description="Seconds until it expires")]


class EventMessage(msgspec.Struct, frozen=True):
    """One event of the stream, as its fields (OpenAPI's description of ``text/event-stream``)."""

    id: Annotated[str, msgspec.Meta(description="The change-feed cursor after this change")]
    event: Annotated[
        Literal["task.upserted", "task.deleted", "task.reminder"],
        msgspec.Meta(
            description=(
                "task.reminder: a reminder of the task fired (the change's reminder.fire_at says when it was due); "
                "its data is an upsert like task.upserted's, so a client that only syncs can treat both alike"
            )
        ),
    ]
    data: Annotated[str, msgspec.Meta(description="The change as in the feed's changes list, as JSON")]


def event_name(change: TaskUpserted | TaskDeleted) -> bytes:
    """``task.deleted``, ``task.reminder`` (an upsert that is a reminder firing) or ``task.upserted``."""
    if isinstance(change, TaskDeleted):
        return b"task.deleted"
    return b"task.upserted" if change.reminder is None else b"task.reminder"


def encode_event(cursor: str, change: TaskUpserted | TaskDeleted) -> bytes:
    """One SSE event: ``id`` the feed cursor after ``change``, its name, the change as in the feed (one line)."""
    # msgspec's JSON has no raw newlines, so the data is one ``data:`` line.
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (cursor.encode(), event_name(change), _encode(change))
