"""The webhooks feature, assembled from the settings: its service, its worker and its schema additions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from todo_service.webhooks.delivery import DeliveryPolicy, DeliveryWorker
from todo_service.webhooks.openapi import webhook_paths
from todo_service.webhooks.outbox import Outbox
from todo_service.webhooks.repository import WebhookRepository
from todo_service.webhooks.services import WebhookService
from todo_service.webhooks.signing import SecretBox
from todo_service.webhooks.targets import TargetRules

if TYPE_CHECKING:
    from litestar.openapi import OpenAPIConfig
    from opentelemetry.trace import Tracer

    from todo_service.core.settings import Settings
    from todo_service.db.statements import Statements

__all__ = ("Webhooks", "build_webhooks")


@dataclass(frozen=True, slots=True)
class Webhooks:
    """What the app wires in: the routes' service and the delivery worker (a lifespan)."""

    service: WebhookService
    worker: DeliveryWorker

    @staticmethod
    def document(openapi: OpenAPIConfig | None) -> OpenAPIConfig | None:
        """``openapi`` with the webhook payloads under the schema's ``webhooks``."""
        if openapi is None:
            return None
        # Set on the config made for this app (dataclasses.replace would read its deprecated fields).
        openapi.webhooks = webhook_paths()
        return openapi


def build_webhooks(settings: Settings, statements: Statements, tracer: Tracer | None = None) -> Webhooks:
    """The feature for these settings, on the app's statements."""
    box = SecretBox(settings.signing_key)
    rules = TargetRules(allow_private=settings.webhook_allow_private_targets)
    policy = DeliveryPolicy(
        timeout=settings.webhook_timeout_seconds,
        poll_interval=settings.webhook_poll_interval_seconds,
        batch=settings.webhook_batch_size,
        backoff_base=settings.webhook_backoff_base_seconds,
        backoff_max=settings.webhook_backoff_max_seconds,
        retry_window=timedelta(hours=settings.webhook_retry_window_hours),
        disable_after=timedelta(hours=settings.webhook_disable_after_hours),
    )
    # One pool per process: the worker borrows the engine's connections like any request, one
    # statement at a time (a claim, then each result), never across a delivery's HTTP call.
    return Webhooks(
        service=WebhookService(WebhookRepository(statements), box, rules),
        worker=DeliveryWorker(Outbox(statements), box, rules, policy, tracer=tracer),
    )
