"""Errors of the password policy."""

from __future__ import annotations

from todo_service.core.errors import AppError

__all__ = ("WeakPassword",)


class WeakPassword(AppError):
    """The password breaks the password policy."""

    status_code = 422
    error_code = "WEAK_PASSWORD"
    default_detail = "The password is too weak"
