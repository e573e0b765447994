"""The webhooks' bodies: what a client registers and reads back, and what a delivery POSTs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from todo_service.core.schema import NO_NUL, RequestBody
from todo_service.tasks.schemas import TaskRead
from todo_service.webhooks.targets import MAX_URL_LENGTH

__all__ = (
    "AttemptRead",
    "DeliveryRead",
    "DeliveryStatus",
    "EventType",
    "PingData",
    "PingEvent",
    "TaskDeletedData",
    "TaskDeletedEvent",
    "TaskUpsertedData",
    "TaskUpsertedEvent",
    "TestQueued",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookRead",
    "WebhookSecret",
)


class EventType(enum.StrEnum):
    """What a webhook can subscribe to."""

    TASK_UPSERTED = "task.upserted"
    TASK_DELETED = "task.deleted"


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands: still being tried, acknowledged (2xx), or given up after the retry window."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        pattern=NO_NUL,
        description="An http or https URL whose host resolves to public addresses only.",
        examples=["https://hooks.example.com/todo"],
    ),
]
Events = Annotated[
    list[EventType],
    msgspec.Meta(min_length=1, max_length=2, description="The events to receive (at least one)."),
]


class WebhookCreate(RequestBody):
    """A new webhook: where to POST, and which events."""

    url: Url
    events: Events


class WebhookRead(msgspec.Struct, frozen=True):
    """A webhook. ``enabled`` is false once it failed for too long (``disabled_at``, ``disabled_reason``)."""

    id: UUID
    url: str
    events: list[EventType]
    enabled: bool
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(msgspec.Struct, frozen=True):
    """A webhook just made, with its signing secret: shown this once, never again."""

    id: UUID
    url: str
    events: list[EventType]
    enabled: bool
    created_at: datetime
    secret: str


class WebhookSecret(msgspec.Struct, frozen=True):
    """A new signing secret, shown this once: the old one no longer signs anything."""

    id: UUID
    secret: str


class AttemptRead(msgspec.Struct, frozen=True):
    """One POST of a delivery. ``status_code`` is null when no response came (``error`` says why)."""

    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_bytes: int
    error: str | None


class DeliveryRead(msgspec.Struct, frozen=True):
    """One event for this webhook. ``id`` is the ``webhook-id`` header of every attempt."""

    id: UUID
    event: str
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[AttemptRead]


class TestQueued(msgspec.Struct, frozen=True):
    """A ``webhook.ping`` queued for delivery; its attempts appear in the listing under ``delivery_id``."""

    delivery_id: UUID


# -- what a delivery POSTs (documented under the schema's `webhooks`) -----------------------------


class TaskUpsertedData(msgspec.Struct, frozen=True):
    """The task as that change left it."""

    task: TaskRead


class TaskDeletedData(msgspec.Struct, frozen=True):
    """The deleted task."""

    task_id: UUID
    deleted_at: datetime


class PingData(msgspec.Struct, frozen=True):
    """Which webhook is being tested."""

    webhook_id: UUID


class TaskUpsertedEvent(msgspec.Struct, frozen=True):
    """A task was created or changed (``timestamp``: its ``updated_at``)."""

    type: Annotated[str, msgspec.Meta(examples=["task.upserted"])]
    timestamp: datetime
    data: TaskUpsertedData


class TaskDeletedEvent(msgspec.Struct, frozen=True):
    """A task was deleted (``timestamp``: its ``deleted_at``)."""

    type: Annotated[str, msgspec.Meta(examples=["task.deleted"])]
    timestamp: datetime
    data: TaskDeletedData


class PingEvent(msgspec.Struct, frozen=True):
    """``POST .../webhooks/{id}/test``: nothing happened, the endpoint is being tried."""

    type: Annotated[str, msgspec.Meta(examples=["webhook.ping"])]
    timestamp: datetime
    data: PingData
