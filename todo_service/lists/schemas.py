"""Bodies and queries of the ``/users/{user_id}/lists`` routes."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from todo_service.core.schema import NON_BLANK, RequestBody

__all__ = ("ListCreate", "ListRead", "ListTasks", "ListUpdate")

ListName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NON_BLANK, examples=["Groceries"])]


class ListRead(msgspec.Struct, frozen=True):
    """A list of tasks. ``is_default``: the Inbox, where a task goes when it names no list.

    ``etag`` is the list's ``ETag`` header value (quotes included): send it back in ``If-Match``.
    """

    id: UUID
    user_id: UUID
    name: str
    is_default: bool
    created_at: datetime
    updated_at: datetime
    etag: str


class ListCreate(RequestBody):
    """A new list."""

    name: ListName


class ListUpdate(RequestBody):
    """Rename a list (the Inbox too)."""

    name: ListName


class ListTasks(StrEnum):
    """What deleting a list does with its tasks."""

    MOVE = "move"  # to ``to``, or the Inbox
    DELETE = "delete"  # to the trash, restorable (into the Inbox)
