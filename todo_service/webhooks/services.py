"""Webhooks: the rules of the webhook routes, over :class:`~todo_service.webhooks.repository.WebhookRepository`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

import msgspec

from todo_service.security.access import explain_refusal, refuse
from todo_service.webhooks.errors import WebhookNotFound, WebhookTargetRefused
from todo_service.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    DeliveryStatus,
    EventType,
    PingData,
    PingEvent,
    WebhookCreated,
    WebhookRead,
    WebhookSecret,
)
from todo_service.webhooks.signing import new_secret
from todo_service.webhooks.targets import TargetRefused

if TYPE_CHECKING:
    import builtins
    from uuid import UUID

    from todo_service.db.statements import Row
    from todo_service.security.access import Caller
    from todo_service.webhooks.repository import WebhookRepository
    from todo_service.webhooks.schemas import WebhookCreate
    from todo_service.webhooks.signing import SecretBox
    from todo_service.webhooks.targets import TargetRules

__all__ = ("WebhookService",)

PING = "webhook.ping"


def _read(row: Row) -> WebhookRead:
    webhook_id, url, upserted, deleted, enabled, failing_since, disabled_at, reason, created, updated = row
    events = [event for event, on in ((EventType.TASK_UPSERTED, upserted), (EventType.TASK_DELETED, deleted)) if on]
    return WebhookRead(webhook_id, url, events, enabled, failing_since, disabled_at, reason, created, updated)


class WebhookService:
    """A user's webhooks. One per app, shared by every request."""

    def __init__(self, repository: WebhookRepository, box: SecretBox, rules: TargetRules) -> None:
        self.repository = repository
        self.box = box
        self.rules = rules

    async def _refuse(self, caller: Caller, owner_id: UUID, *, write: bool) -> NoReturn:
        await refuse(self.repository.statements, caller, owner_id=owner_id, write=write, otherwise=WebhookNotFound())

    async def create(self, caller: Caller, owner_id: UUID, data: WebhookCreate) -> WebhookCreated:
        """Register a webhook; its secret is in the answer, and nowhere else ever again.

        Raises:
            WebhookTargetRefused: the URL's scheme or one of its host's addresses is not allowed.
        """
        try:
            await self.rules.resolve(data.url)
        except TargetRefused as exc:
            raise WebhookTargetRefused(f"The webhook URL {exc}") from exc
        webhook_id, secret = uuid.uuid4(), new_secret()
        values = {
            "id": webhook_id,
            "url": data.url,
            "on_task_upserted": EventType.TASK_UPSERTED in data.events,
            "on_task_deleted": EventType.TASK_DELETED in data.events,
            "secret_encrypted": self.box.seal(webhook_id, secret),
        }
        row = await self.repository.add(caller, owner_id, values)
        if row is None:
            await self._refuse(caller, owner_id, write=True)
        webhook = _read(row)
        return WebhookCreated(webhook.id, webhook.url, webhook.events, webhook.enabled, webhook.created_at, secret)

    async def list(self, caller: Caller, owner_id: UUID) -> list[WebhookRead]:
        """Every webhook of ``owner_id``, oldest first."""
        rows = await self.repository.all(caller, owner_id)
        if not rows:
            await explain_refusal(self.repository.statements, caller, owner_id=owner_id)
        return [_read(row) for row in rows]

    async def get(self, caller: Caller, owner_id: UUID, webhook_id: UUID) -> WebhookRead:
        """One webhook of ``owner_id``.

        Raises:
            WebhookNotFound: no such webhook, or it belongs to someone else.
        """
        row = await self.repository.one(caller, owner_id, webhook_id)
        if row is None:
            await self._refuse(caller, owner_id, write=False)
        return _read(row)

    async def delete(self, caller: Caller, owner_id: UUID, webhook_id: UUID) -> None:
        """Delete a webhook; its undelivered events are dropped with it."""
        if not await self.repository.remove(caller, owner_id, webhook_id):
            await self._refuse(caller, owner_id, write=True)

    async def rotate_secret(self, caller: Caller, owner_id: UUID, webhook_id: UUID) -> WebhookSecret:
        """A new secret signs every attempt from now on (retries of older events included)."""
        secret = new_secret()
        if not await self.repository.set_secret(caller, owner_id, webhook_id, self.box.seal(webhook_id, secret)):
            await self._refuse(caller, owner_id, write=True)
        return WebhookSecret(webhook_id, secret)

    async def ping(self, caller: Caller, owner_id: UUID, webhook_id: UUID) -> UUID:
        """Queue a ``webhook.ping`` for this webhook (whatever its subscriptions); the delivery's id."""
        now = datetime.now(UTC)
        payload = msgspec.json.encode(PingEvent(type=PING, timestamp=now, data=PingData(webhook_id))).decode()
        delivery_id = await self.repository.enqueue(caller, owner_id, webhook_id, PING, payload)
        if delivery_id is None:
            await self._refuse(caller, owner_id, write=True)
        return delivery_id

    async def deliveries(
        self, caller: Caller, owner_id: UUID, webhook_id: UUID, limit: int
    ) -> builtins.list[DeliveryRead]:
        """The webhook's latest ``limit`` deliveries, newest first, each with its attempts."""
        rows, attempts = await self.repository.deliveries(caller, owner_id, webhook_id, limit)
        if not rows:
            await self.get(caller, owner_id, webhook_id)  # raises unless the webhook is there and readable
        return [
            DeliveryRead(
                id=delivery_id,
                event=event,
                status=DeliveryStatus(status),
                created_at=created_at,
                next_attempt_at=next_attempt_at if status == DeliveryStatus.PENDING else None,
                delivered_at=delivered_at,
                attempts=[AttemptRead(*attempt) for attempt in attempts[delivery_id]],
            )
            for delivery_id, event, status, created_at, next_attempt_at, delivered_at in rows
        ]
