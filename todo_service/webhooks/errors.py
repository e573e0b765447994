"""The webhooks feature's errors."""

from __future__ import annotations

from todo_service.core.errors import AppError, NotFound

__all__ = ("WebhookNotFound", "WebhookTargetRefused")


class WebhookNotFound(NotFound):
    """No such webhook among this user's webhooks."""

    error_code = "WEBHOOK_NOT_FOUND"
    default_detail = "Webhook not found"


class WebhookTargetRefused(AppError):
    """The URL may not be called: wrong scheme, or a private, loopback or link-local address."""

    status_code = 422
    error_code = "WEBHOOK_TARGET_REFUSED"
    default_detail = "The webhook URL is not allowed"
