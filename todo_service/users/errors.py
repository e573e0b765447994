"""The users feature's errors."""

from __future__ import annotations

from todo_service.core.errors import AppError, NotFound

__all__ = ("EmailAlreadyRegistered", "UserNotFound")


class EmailAlreadyRegistered(AppError):
    """Another account already uses this email."""

    status_code = 409
    error_code = "EMAIL_ALREADY_REGISTERED"
    default_detail = "An account with this email already exists"


class UserNotFound(NotFound):
    """No such user."""

    error_code = "USER_NOT_FOUND"
    default_detail = "User not found"
