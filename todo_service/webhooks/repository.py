"""The webhooks' statements: each a named method, each owner-scoped and guarded like the tasks'.

The routes' statements take the caller and the owner first and carry the caller's permission
(:func:`~todo_service.security.access.guard`) in their ``WHERE``; the worker's statements
(:mod:`todo_service.webhooks.outbox`) have no caller.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, select, update

from todo_service.security.access import caller_params, guard
from todo_service.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from todo_service.webhooks.schemas import DeliveryStatus

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.sql import Delete, Insert, Select, Update

    from todo_service.db.statements import Row, Statements
    from todo_service.security.access import Caller

__all__ = ("DELIVERY_COLUMNS", "WEBHOOK_COLUMNS", "WebhookRepository")

WEBHOOK_COLUMNS = (
    Webhook.id,
    Webhook.url,
    Webhook.on_task_upserted,
    Webhook.on_task_deleted,
    Webhook.enabled,
    Webhook.failing_since,
    Webhook.disabled_at,
    Webhook.disabled_reason,
    Webhook.created_at,
    Webhook.updated_at,
)
DELIVERY_COLUMNS = (
    WebhookDelivery.id,
    WebhookDelivery.event,
    WebhookDelivery.status,
    WebhookDelivery.created_at,
    WebhookDelivery.next_attempt_at,
    WebhookDelivery.delivered_at,
)
_ATTEMPT_COLUMNS = (
    WebhookAttempt.delivery_id,
    WebhookAttempt.attempted_at,
    WebhookAttempt.status_code,
    WebhookAttempt.latency_ms,
    WebhookAttempt.response_bytes,
    WebhookAttempt.error,
)
_OWNED = (Webhook.user_id == bindparam("owner_id"),)
_THIS = (*_OWNED, Webhook.id == bindparam("webhook_id"))
_CREATED = ("id", "user_id", "url", "on_task_upserted", "on_task_deleted", "secret_encrypted", "enabled")
_COLUMNS = Webhook.__table__.c


@cache
def _insert(*, own: bool) -> Insert:
    values = [bindparam(name, type_=_COLUMNS[name].type) for name in _CREATED]
    now = bindparam("now", type_=_COLUMNS["created_at"].type)
    source = select(*values, now, now).where(guard(own=own, write=True))
    return insert(Webhook).from_select([*_CREATED, "created_at", "updated_at"], source).returning(*WEBHOOK_COLUMNS)


@cache
def _select(*, own: bool, one: bool) -> Select[Any]:
    where = _THIS if one else _OWNED
    return select(*WEBHOOK_COLUMNS).where(*where, guard(own=own, write=False)).order_by(Webhook.created_at)


@cache
def _delete(*, own: bool) -> Delete:
    return delete(Webhook).where(*_THIS, guard(own=own, write=True))


@cache
def _set_secret(*, own: bool) -> Update:
    return (
        update(Webhook)
        .where(*_THIS, guard(own=own, write=True))
        .values(secret_encrypted=bindparam("sealed"), updated_at=bindparam("now"))
        .returning(Webhook.id)
    )


def _latest(*columns: Any, own: bool) -> Select[Any]:  # noqa: ANN401
    mine = select(Webhook.id).where(*_THIS, guard(own=own, write=False)).scalar_subquery()
    return (
        select(*columns)
        .where(WebhookDelivery.webhook_id == mine)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(bindparam("limit"))
    )


@cache
def _deliveries(*, own: bool) -> Select[Any]:
    return _latest(*DELIVERY_COLUMNS, own=own)


@cache
def _attempts(*, own: bool) -> Select[Any]:
    latest = _latest(WebhookDelivery.id, own=own).scalar_subquery()
    return select(*_ATTEMPT_COLUMNS).where(WebhookAttempt.delivery_id.in_(latest)).order_by(WebhookAttempt.attempted_at)


@cache
def _enqueue(*, own: bool) -> Insert:
    names = ("id", "event", "payload", "created_at", "status", "next_attempt_at", "attempts")
    values = [bindparam(name, type_=WebhookDelivery.__table__.c[name].type) for name in names]
    source = select(Webhook.id, *values).where(*_THIS, guard(own=own, write=True))
    return insert(WebhookDelivery).from_select(["webhook_id", *names], source).returning(WebhookDelivery.id)


class WebhookRepository:
    """A user's webhooks and their deliveries; None (or False) when the guarded statement found nothing."""

    def __init__(self, statements: Statements) -> None:
        self.statements = statements

    @staticmethod
    def _params(caller: Caller, owner_id: UUID, **values: Any) -> dict[str, Any]:  # noqa: ANN401
        return {**caller_params(caller), "owner_id": owner_id, **values}

    async def add(self, caller: Caller, owner_id: UUID, values: dict[str, Any]) -> Row | None:
        """Insert a webhook of ``owner_id`` (``values``: the columns of ``_CREATED``)."""
        params = self._params(caller, owner_id, user_id=owner_id, now=datetime.now(UTC), enabled=True, **values)
        return await self.statements.one(_insert(own=owner_id == caller.user_id), params)

    async def all(self, caller: Caller, owner_id: UUID) -> list[Row]:
        """Every webhook of ``owner_id``, oldest first (none either when there are none or when refused)."""
        statement = _select(own=owner_id == caller.user_id, one=False)
        return await self.statements.all(statement, self._params(caller, owner_id))

    async def one(self, caller: Caller, owner_id: UUID, webhook_id: UUID) -> Row | None:
        """One webhook of ``owner_id``."""
        statement = _select(own=owner_id == caller.user_id, one=True)
        return await self.statements.one(statement, self._params(caller, owner_id, webhook_id=webhook_id))

    async def remove(self, caller: Caller, owner_id: UUID, webhook_id: UUID) -> bool:
        """Delete one webhook of ``owner_id`` (its pending deliveries go with it)."""
        statement = _delete(own=owner_id == caller.user_id)
        return await self.statements.affected(statement, self._params(caller, owner_id, webhook_id=webhook_id)) > 0

    async def set_secret(self, caller: Caller, owner_id: UUID, webhook_id: UUID, sealed: bytes) -> bool:
        """Replace the webhook's sealed secret."""
        params = self._params(caller, owner_id, webhook_id=webhook_id, sealed=sealed, now=datetime.now(UTC))
        return await self.statements.one(_set_secret(own=owner_id == caller.user_id), params) is not None

    async def deliveries(
        self, caller: Caller, owner_id: UUID, webhook_id: UUID, limit: int
    ) -> tuple[list[Row], dict[UUID, list[Row]]]:
        """The webhook's latest deliveries, newest first, and each one's attempts, oldest first."""
        own, params = owner_id == caller.user_id, self._params(caller, owner_id, webhook_id=webhook_id, limit=limit)
        rows = await self.statements.all(_deliveries(own=own), params)
        attempts: dict[UUID, list[Row]] = {row[0]: [] for row in rows}
        if rows:
            # A delivery that settled between the two reads may show one attempt more than its status says.
            for attempt in await self.statements.all(_attempts(own=own), params):
                if attempt[0] in attempts:
                    attempts[attempt[0]].append(attempt[1:])
        return rows, attempts

    async def enqueue(self, caller: Caller, owner_id: UUID, webhook_id: UUID, event: str, payload: str) -> UUID | None:
        """Put one event for this webhook in the outbox, due now; its delivery id."""
        now = datetime.now(UTC)
        params = self._params(
            caller,
            owner_id,
            webhook_id=webhook_id,
            id=uuid.uuid4(),
            event=event,
            payload=payload,
            created_at=now,
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=now,
            attempts=0,
        )
        row = await self.statements.one(_enqueue(own=owner_id == caller.user_id), params)
        return None if row is None else row[0]
