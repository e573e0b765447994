"""Bodies of the ``/users`` routes."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from todo_service.core.schema import Email, Password, PersonName, RequestBody
from todo_service.db.models import Role

__all__ = ("PasswordChange", "TimeZone", "UserRead", "UserUpdate")

TimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$",
        description=(
            "The account's IANA time zone (null: UTC): the zone of its tasks that name none "
            "(all-day dates, recurrence, the overdue filter)."
        ),
        examples=["Europe/Berlin"],
    ),
]


class UserRead(msgspec.Struct, frozen=True):
    """An account as its owner (or an admin) sees it."""

    id: UUID
    email: str
    first_name: str
    last_name: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
    timezone: str | None


class UserUpdate(RequestBody, kw_only=True):
    """Fields to change; omitted ones stay as they are."""

    first_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    last_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType | None = msgspec.UNSET


class PasswordChange(RequestBody, kw_only=True):
    """The current password, and the one to replace it."""

    current_password: Password
    new_password: Password
