"""The lists feature's errors."""

from __future__ import annotations

from todo_service.core.errors import AppError, NotFound

__all__ = ("DefaultListUndeletable", "ListNotFound")


class ListNotFound(NotFound):
    """No such list among this user's lists."""

    error_code = "LIST_NOT_FOUND"
    default_detail = "List not found"


class DefaultListUndeletable(AppError):
    """The Inbox is where tasks go by default: it cannot be deleted (rename it instead)."""

    status_code = 409
    error_code = "DEFAULT_LIST"
    default_detail = "The default list (Inbox) cannot be deleted"
