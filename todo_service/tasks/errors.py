"""The tasks feature's errors."""

from __future__ import annotations

from todo_service.core.errors import NotFound

__all__ = ("TaskNotFound",)


class TaskNotFound(NotFound):
    """No such task among this user's tasks."""

    error_code = "TASK_NOT_FOUND"
    default_detail = "Task not found"
