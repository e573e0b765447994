"""Bodies of the ``/auth`` routes."""

from typing import Annotated, Literal

import msgspec

from todo_service.core.schema import Email, Password, PersonName, RequestBody
from todo_service.users.schemas import UserRead

__all__ = ("LoginRequest", "RefreshRequest", "RegisterRequest", "TokenResponse")


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


class RefreshRequest(RequestBody):
    """A refresh token to exchange (once) for a new token pair."""

    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class TokenResponse(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens for a login session, and the account they belong to.

    ``access_token`` goes in the ``Authorization: Bearer`` header for ``expires_in`` seconds;
    ``refresh_token`` buys a new pair once (``POST /api/v1/auth/refresh``) within ``refresh_expires_in``.
    """

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: UserRead
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the scheme, not a secret)
