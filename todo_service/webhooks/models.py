"""The webhooks' tables: endpoints, the outbox (one row per event and endpoint) and every attempt.

Migration 0005 creates them, with the triggers on ``tasks`` that fill the outbox in the writing
statement's own transaction.
"""

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase, UUIDBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("Webhook", "WebhookAttempt", "WebhookDelivery")


class Webhook(UUIDAuditBase):
    """An endpoint of one user, subscribed to task events, with its signing secret (encrypted)."""

    __tablename__ = "webhooks"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    # One column per event: the outbox triggers test them without parsing a list.
    on_task_upserted: Mapped[bool] = mapped_column(Boolean)
    on_task_deleted: Mapped[bool] = mapped_column(Boolean)
    # AES-GCM (nonce + ciphertext) of the signing secret, under a key derived from SECRET_KEY.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set by the first failed attempt after a success; a webhook failing for long is disabled.
    failing_since: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(255))


class WebhookDelivery(UUIDBase):
    """One event for one webhook: the outbox row. Its id is the ``webhook-id`` of every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The worker's claim: due, pending deliveries in time order.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # A webhook's listing, newest first.
        Index("ix_webhook_deliveries_webhook_id_created_at", "webhook_id", "created_at"),
    )

    webhook_id: Mapped[UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[UUID | None]
    revision: Mapped[int | None] = mapped_column(BigInteger)
    # The JSON body, captured by the trigger at the time of the change.
    payload: Mapped[str] = mapped_column(Text)
    # W3C traceparent of the writer, when it set one for its transaction (see docs/webhooks.md).
    traceparent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # pending | delivered | failed (retries exhausted)
    status: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Who holds the delivery while an attempt runs (its lease ends at next_attempt_at).
    claim: Mapped[UUID | None]
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class WebhookAttempt(UUIDBase):
    """One POST of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_bytes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(255))
