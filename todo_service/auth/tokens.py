"""Access tokens: HS256 JWTs issued and checked through Litestar's JWT auth.

A token names its user (``sub``), its login session (``sid``) and itself (``jti``). Checking one
costs no database round trip: whether its session is still live is asked inside the query that
serves the request (see :mod:`todo_service.auth.access`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from todo_service.auth.access import Caller
from todo_service.lib.errors import NotAuthenticated

if TYPE_CHECKING:
    from datetime import timedelta

    from litestar.connection import ASGIConnection
    from litestar.middleware.authentication import AuthenticationResult

__all__ = ("AccessToken", "BearerTokenMiddleware", "IssuedToken", "TokenIssuer", "build_jwt_auth", "caller_from_token")

ALGORITHM = "HS256"
# Routes under these prefixes never need a token (Litestar's own docs and metrics routers).
PUBLIC_PATH_PATTERNS = ["^/api/docs", "^/metrics"]
# Handlers opt out of authentication with ``exclude_from_auth=True``.
EXCLUDE_FROM_AUTH_KEY = "exclude_from_auth"


@dataclass
class AccessToken(Token):
    """Litestar's token with the login session it belongs to."""

    sid: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly signed access token and its lifetime in seconds."""

    access_token: str
    expires_in: int


class BearerTokenMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, refusing tokens sent under any scheme but ``Bearer``.

    Litestar takes whatever follows the first space (``Basic <jwt>`` would pass).
    """

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Authenticate ``Authorization: Bearer <token>`` (scheme case-insensitive, RFC 7235)."""
        scheme, _, token = connection.headers.get(self.auth_header, "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated
        return await self.authenticate_token(encoded_token=token.strip(), connection=connection)


async def caller_from_token(token: AccessToken, _: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """Turn verified claims into the caller, without touching the database."""
    try:
        return Caller(user_id=uuid.UUID(token.sub), session_id=uuid.UUID(str(token.sid)), token_id=str(token.jti))
    except ValueError:
        raise NotAuthorizedException("Invalid token") from None


def build_jwt_auth(secret: str, ttl: timedelta) -> JWTAuth[Caller, AccessToken]:
    """The JWT middleware config: every route needs a bearer token unless it opts out."""
    return JWTAuth[Caller, AccessToken](
        retrieve_user_handler=caller_from_token,
        token_secret=secret,
        token_cls=AccessToken,
        algorithm=ALGORITHM,
        default_token_expiration=ttl,
        # exp and sub are always required; without jti and sid a token cannot be revoked.
        require_claims=["iat", "jti", "sid"],
        exclude=PUBLIC_PATH_PATTERNS,
        exclude_opt_key=EXCLUDE_FROM_AUTH_KEY,
        authentication_middleware_class=BearerTokenMiddleware,
        openapi_security_scheme_name="BearerToken",
        description="An access token from `POST /api/v1/auth/login` or `/register`.",
    )


class TokenIssuer:
    """Signs access tokens for a user's login session."""

    def __init__(self, auth: JWTAuth[Caller, AccessToken]) -> None:
        self._auth = auth
        self.ttl_seconds = int(auth.default_token_expiration.total_seconds())

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID) -> IssuedToken:
        """A new token with a unique ``jti`` (Litestar's ``create_token`` adds none by itself)."""
        encoded = self._auth.create_token(
            identifier=str(user_id), token_unique_jwt_id=uuid.uuid4().hex, sid=str(session_id)
        )
        return IssuedToken(access_token=encoded, expires_in=self.ttl_seconds)
