"""The worker's statements on the outbox: claim due deliveries under a lease, record each attempt.

**Claim** (one statement, its own short transaction): due, pending deliveries of enabled webhooks
get ``next_attempt_at`` pushed to the end of a lease and the claimer's token. On PostgreSQL the rows
are picked ``FOR UPDATE SKIP LOCKED``, so workers of several processes and replicas take disjoint
sets without waiting on each other; on SQLite the one writer at a time makes the statement atomic.
A delivery is attempted by one holder at a time: another claim can take it only once its lease has
passed, and the lease outlasts an attempt (the attempt's own timeout, plus a margin).

**Finish** (one transaction): the attempt row, the delivery's new state (delivered, due again
after a backoff, or failed after the retry window) and the webhook's failure clock (disabled once it
has failed continuously for too long). The update is conditional on the claim token, so a holder
whose lease ran out cannot overwrite the state a later holder wrote.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from sqlalchemy import bindparam, func, insert, select, update

from todo_service.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from todo_service.webhooks.schemas import DeliveryStatus

if TYPE_CHECKING:
    from sqlalchemy.sql import Insert, Select, Update

    from todo_service.db.statements import Statements

__all__ = ("Attempt", "Claimed", "Outbox", "Settled")

_PENDING = DeliveryStatus.PENDING.value


Settled = Literal["settled", "lease lost", "gone"]  # what became of an attempted delivery: Outbox.finish


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker holds, with what it needs to send it."""

    id: UUID
    webhook_id: UUID
    event: str
    payload: str
    attempts: int
    created_at: datetime
    traceparent: str | None
    url: str
    sealed_secret: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST got: a status (None: no response), its latency, how much body was read, an error."""

    status_code: int | None
    latency_ms: int
    response_bytes: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx acknowledges the event; anything else (a redirect included) is retried."""
        return self.status_code is not None and 200 <= self.status_code < 300  # noqa: PLR2004


@cache
def _claim() -> Update:
    due = (
        select(WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.next_attempt_at <= bindparam("now", type_=WebhookDelivery.next_attempt_at.type),
            Webhook.enabled,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    return (
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(due.scalar_subquery()))
        .values(
            next_attempt_at=bindparam("lease_until", type_=WebhookDelivery.next_attempt_at.type),
            claim=bindparam("token"),
        )
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.webhook_id,
            WebhookDelivery.event,
            WebhookDelivery.payload,
            WebhookDelivery.attempts,
            WebhookDelivery.created_at,
            WebhookDelivery.traceparent,
        )
    )


@cache
def _targets() -> Select[Any]:
    return select(Webhook.url, Webhook.secret_encrypted).where(Webhook.id == bindparam("webhook_id"))


@cache
def _record() -> Insert:
    """The attempt, if its delivery is still there (a key-share lock holds it until the commit).

    A delivery is deleted with its webhook or its owner, maybe while its attempt was on the wire:
    then nothing is recorded, instead of a foreign-key error failing the worker's round.
    """
    columns = WebhookAttempt.__table__.c
    names = ("id", "delivery_id", "attempted_at", "status_code", "latency_ms", "response_bytes", "error")
    values = {"id": "attempt_id", "attempted_at": "now"}
    source = (
        select(*(bindparam(values.get(name, name), type_=columns[name].type) for name in names))
        .where(WebhookDelivery.id == bindparam("delivery_id", type_=columns["delivery_id"].type))
        .with_for_update(read=True, key_share=True)
    )
    return insert(WebhookAttempt).from_select(list(names), source)


@cache
def _settle() -> Update:
    return (
        update(WebhookDelivery)
        .where(WebhookDelivery.id == bindparam("delivery_id"), WebhookDelivery.claim == bindparam("token"))
        .values(
            status=bindparam("status"),
            next_attempt_at=bindparam("next_attempt_at", type_=WebhookDelivery.next_attempt_at.type),
            delivered_at=bindparam("delivered_at", type_=WebhookDelivery.delivered_at.type),
            attempts=WebhookDelivery.attempts + 1,
            claim=None,
        )
    )


@cache
def _recovered() -> Update:
    return (
        update(Webhook)
        .where(Webhook.id == bindparam("webhook_id"), Webhook.failing_since.is_not(None))
        .values(failing_since=None, updated_at=Webhook.updated_at)  # the failure clock is not an edit
    )


@cache
def _failing() -> Update:
    now = bindparam("now", type_=Webhook.failing_since.type)
    return (
        update(Webhook)
        .where(Webhook.id == bindparam("webhook_id"))
        .values(failing_since=func.coalesce(Webhook.failing_since, now), updated_at=Webhook.updated_at)
    )


@cache
def _disable() -> Update:
    return (
        update(Webhook)
        .where(
            Webhook.id == bindparam("webhook_id"),
            Webhook.enabled,
            Webhook.failing_since <= bindparam("failing_before", type_=Webhook.failing_since.type),
        )
        .values(
            enabled=False,
            disabled_at=bindparam("now", type_=Webhook.disabled_at.type),
            updated_at=bindparam("now", type_=Webhook.updated_at.type),
            disabled_reason=bindparam("reason"),
        )
    )


class Outbox:
    """The outbox, as the delivery worker sees it."""

    def __init__(self, statements: Statements) -> None:
        self.statements = statements

    async def claim(self, *, now: datetime, lease_until: datetime, batch: int) -> tuple[UUID, list[Claimed]]:
        """Take up to ``batch`` due deliveries until ``lease_until``: the claim token and the deliveries."""
        token = uuid.uuid4()
        rows = await self.statements.all(
            _claim(), {"now": now, "lease_until": lease_until, "batch": batch, "token": token}
        )
        if not rows:
            return token, []
        # One read per webhook (a batch is mostly a few webhooks' events); a deleted one has none.
        targets = {}
        for webhook_id in {row[1] for row in rows}:
            if (found := await self.statements.one(_targets(), {"webhook_id": webhook_id})) is not None:
                targets[webhook_id] = found
        claimed = [
            Claimed(
                id=row[0],
                webhook_id=row[1],
                event=row[2],
                payload=row[3],
                attempts=row[4],
                created_at=row[5],
                traceparent=row[6],
                url=targets[row[1]][0],
                sealed_secret=targets[row[1]][1],
            )
            for row in rows
            if row[1] in targets
        ]
        return token, claimed

    async def finish(  # noqa: PLR0913  (the delivery, its attempt, and what comes next)
        self,
        delivery: Claimed,
        token: UUID,
        attempt: Attempt,
        *,
        now: datetime,
        retry_at: datetime | None,
        failing_before: datetime,
        disable_reason: str,
    ) -> Settled:
        """Record ``attempt`` and settle the delivery; ``retry_at`` None after a failure: give up.

        Returns ``settled`` (its state was written), ``lease lost`` (another worker holds it now: the
        attempt is recorded, the state is theirs to write), or ``gone`` (deleted meanwhile: nothing).
        """
        if attempt.ok:
            status, next_at, delivered_at = DeliveryStatus.DELIVERED.value, now, now
        elif retry_at is None:
            status, next_at, delivered_at = DeliveryStatus.FAILED.value, now, None
        else:
            status, next_at, delivered_at = _PENDING, retry_at, None
        async with self.statements.transaction() as db:
            recorded = await db.affected(
                _record(),
                {
                    "attempt_id": uuid.uuid4(),
                    "delivery_id": delivery.id,
                    "now": now,
                    "status_code": attempt.status_code,
                    "latency_ms": attempt.latency_ms,
                    "response_bytes": attempt.response_bytes,
                    "error": attempt.error,
                },
            )
            if not recorded:
                return "gone"  # with its webhook or its owner, during the attempt
            held = await db.affected(
                _settle(),
                {
                    "delivery_id": delivery.id,
                    "token": token,
                    "status": status,
                    "next_attempt_at": next_at,
                    "delivered_at": delivered_at,
                },
            )
            webhook = {"webhook_id": delivery.webhook_id}
            if attempt.ok:
                await db.affected(_recovered(), webhook)
            else:
                await db.affected(_failing(), {**webhook, "now": now})
                await db.affected(
                    _disable(),
                    {**webhook, "now": now, "failing_before": failing_before, "reason": disable_reason[:255]},
                )
        return "settled" if held else "lease lost"
