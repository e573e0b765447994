"""The webhook payloads in the OpenAPI schema, as OpenAPI 3.1 ``webhooks`` (``OpenAPIConfig.webhooks``).

The bodies' JSON Schema comes from msgspec (the same structs the docs and tests use); it is turned
into Litestar's public spec objects here, inline (Litestar keeps only the components its routes
use), except the task itself, which refers to the routes' own ``TaskRead``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)

from todo_service.webhooks.schemas import EventType, PingEvent, TaskDeletedEvent, TaskUpsertedEvent

__all__ = ("TaskReminderEvent", "webhook_paths")


class TaskReminderData(msgspec.Struct, frozen=True):
    """The reminder that fired, and its task."""

    task_id: UUID
    reminder_id: UUID
    title: Annotated[str, msgspec.Meta(description="The task's title when the reminder fired")]
    fire_at: Annotated[datetime, msgspec.Meta(description="When the reminder was due (the task's reminded_at)")]


class TaskReminderEvent(msgspec.Struct, frozen=True):
    """A reminder of a task fired (``timestamp``: when the worker fired it, at or shortly after ``fire_at``)."""

    type: Annotated[str, msgspec.Meta(examples=["task.reminder"])]
    timestamp: datetime
    data: TaskReminderData


_REF = "#/components/schemas/{name}"
# Components the routes' schema already has under these names (the task as GET returns it).
_SHARED = {"TaskRead", "Priority"}
_ALIASES = {field.metadata.get("alias", field.name): field.name for field in dataclasses.fields(Schema)}
_EVENTS: dict[str, tuple[type[msgspec.Struct], str]] = {
    EventType.TASK_UPSERTED.value: (
        TaskUpsertedEvent,
        "A task was created or changed: the task as that change left it.",
    ),
    EventType.TASK_DELETED.value: (TaskDeletedEvent, "A task was deleted."),
    "task.reminder": (
        TaskReminderEvent,
        (
            "A reminder of a task fired, once (todo_service/reminders): sent to the webhooks subscribed to "
            "task.upserted, beside the task.upserted of the same change (the task with its new reminded_at)."
        ),
    ),
    "webhook.ping": (PingEvent, "Sent by POST /api/v1/users/{user_id}/webhooks/{webhook_id}/test, to every webhook."),
}
_HEADERS = {
    "webhook-id": "The event's id: the same on every retry of it (deduplicate on it).",
    "webhook-timestamp": "When this attempt was signed, in seconds since the epoch (refuse old ones).",
    "webhook-signature": 'v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">, keyed with the '
    "base64-decoded part of the secret after whsec_ (Standard Webhooks).",
}


def _spec(node: dict[str, Any], components: dict[str, Any]) -> Schema | Reference:
    """A JSON Schema (as msgspec makes it) as Litestar's spec object, its own components inlined."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return Reference(ref=node["$ref"]) if name in _SHARED else _spec(components[name], components)
    values: dict[str, Any] = {}
    for key, value in node.items():
        name = _ALIASES.get(key)
        if name is None:
            continue
        if key == "properties":
            value = {prop: _spec(each, components) for prop, each in value.items()}  # noqa: PLW2901
        elif key in {"anyOf", "oneOf", "allOf"}:
            value = [_spec(each, components) for each in value]  # noqa: PLW2901
        elif key in {"items", "additionalProperties"} and isinstance(value, dict):
            value = _spec(value, components)  # noqa: PLW2901
        elif key == "type":
            value = [OpenAPIType(each) for each in value] if isinstance(value, list) else OpenAPIType(value)  # noqa: PLW2901
        values[name] = value
    return Schema(**values)


def _body(struct: type[msgspec.Struct]) -> Schema | Reference:
    (schema,), components = msgspec.json.schema_components([struct], ref_template=_REF)
    return _spec(schema, components)


def webhook_paths() -> dict[str, PathItem | Reference]:
    """One ``webhooks`` entry per event: the signed POST a subscribed URL receives."""
    headers = [
        Parameter(name=name, param_in="header", required=True, description=text, schema=Schema(type=OpenAPIType.STRING))
        for name, text in _HEADERS.items()
    ]
    return {
        event: PathItem(
            post=Operation(
                summary=event,
                description=f"{text} Answer any 2xx within the timeout; anything else is retried with backoff.",
                operation_id=f"webhook_{event.replace('.', '_')}",
                tags=["webhooks"],
                parameters=list(headers),
                request_body=RequestBody(
                    content={"application/json": OpenAPIMediaType(schema=_body(struct))},
                    required=True,
                ),
                responses={"200": OpenAPIResponse(description="Received (any 2xx will do)")},
            )
        )
        for event, (struct, text) in _EVENTS.items()
    }
