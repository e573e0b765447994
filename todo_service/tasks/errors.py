"""The tasks feature's errors."""

from __future__ import annotations

from todo_service.core.errors import AppError, NotFound

__all__ = ("CursorExpired", "TaskNotFound")


class TaskNotFound(NotFound):
    """No such task among this user's tasks."""

    error_code = "TASK_NOT_FOUND"
    default_detail = "Task not found"


class CursorExpired(AppError):
    """The change-feed cursor is older than the tombstones kept: start again without a cursor."""

    status_code = 410
    error_code = "CURSOR_EXPIRED"
    default_detail = "The cursor is older than the changes kept: read the feed again from the beginning"
