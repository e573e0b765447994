"""Bodies of the ``/admin`` routes."""

from datetime import datetime
from uuid import UUID

import msgspec

from todo_service.core.schema import RequestBody
from todo_service.db.models import Role

__all__ = ("AuditEventRead", "UserStatusUpdate")


class UserStatusUpdate(RequestBody, kw_only=True):
    """What an admin may change about an account; omitted fields stay."""

    role: Role | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class AuditEventRead(msgspec.Struct, frozen=True):
    """A security event. ``email_hash`` is a keyed hash: filter by ``email`` to find an address's events."""

    id: UUID
    created_at: datetime
    event: str
    outcome: str
    user_id: UUID | None
    email_hash: str | None
    ip: str | None
    request_id: str | None
    detail: str | None
