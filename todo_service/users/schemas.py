"""Bodies of the ``/users`` routes."""

from datetime import datetime
from uuid import UUID

import msgspec

from todo_service.core.schema import Email, Password, PersonName, RequestBody
from todo_service.db.models import Role

__all__ = ("PasswordChange", "UserRead", "UserUpdate")


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


class UserUpdate(RequestBody, kw_only=True):
    """Fields to change; omitted ones stay as they are."""

    first_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    last_name: PersonName | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET


class PasswordChange(RequestBody, kw_only=True):
    """The current password, and the one to replace it."""

    current_password: Password
    new_password: Password
