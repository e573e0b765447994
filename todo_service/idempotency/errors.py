"""The idempotency keys' errors."""

from __future__ import annotations

from todo_service.core.errors import AppError

__all__ = ("IdempotencyKeyInUse", "IdempotencyKeyReused")


class IdempotencyKeyReused(AppError):
    """The key was already used with another request (method, path or body)."""

    status_code = 422
    error_code = "IDEMPOTENCY_KEY_REUSED"
    default_detail = "This Idempotency-Key was used with a different request: use a new key for a new request"


class IdempotencyKeyInUse(AppError):
    """A request with the same key is still running."""

    status_code = 409
    error_code = "IDEMPOTENCY_KEY_IN_USE"
    default_detail = "A request with this Idempotency-Key is still being processed: retry in a moment"
