"""Bodies of the ``/auth`` routes."""

from typing import Literal

import msgspec

from todo_service.lib.schema import Email, Password, PersonName, RequestBody
from todo_service.users.schemas import UserRead

__all__ = ("LoginRequest", "RegisterRequest", "TokenResponse")


class RegisterRequest(RequestBody, kw_only=True):
    """A new account."""

    email: Email
    password: Password
    first_name: PersonName
    last_name: PersonName


class LoginRequest(RequestBody, kw_only=True):
    """Credentials to exchange for a token."""

    email: Email
    password: Password


class TokenResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A bearer token for the ``Authorization`` header, and the account it belongs to."""

    access_token: str
    expires_in: int
    user: UserRead
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the scheme, not a secret)
