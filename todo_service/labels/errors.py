"""The labels feature's errors."""

from __future__ import annotations

from todo_service.core.errors import AppError, NotFound

__all__ = ("LabelNameTaken", "LabelNotFound")


class LabelNotFound(NotFound):
    """No such label among this user's labels."""

    error_code = "LABEL_NOT_FOUND"
    default_detail = "Label not found"


class LabelNameTaken(AppError):
    """The user has a label of that name already (names compare case-insensitively)."""

    status_code = 409
    error_code = "LABEL_NAME_TAKEN"
    default_detail = "A label of that name exists already (names compare case-insensitively)"
