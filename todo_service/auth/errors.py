"""The auth feature's errors (login)."""

from __future__ import annotations

from todo_service.core.errors import AppError, Unauthorized

__all__ = ("AccountLocked", "InvalidCredentials")


class InvalidCredentials(Unauthorized):
    """Unknown email or wrong password (never says which)."""

    error_code = "INVALID_CREDENTIALS"
    default_detail = "Incorrect email or password"
    challenge = "Bearer"


class AccountLocked(AppError):
    """Too many failed logins for this account: wait for the cool-down."""

    status_code = 423
    error_code = "ACCOUNT_LOCKED"
    default_detail = "Too many failed logins: the account is locked for a while"
