"""Access tokens: HS256 JWTs issued and checked through Litestar's JWT auth.

A token names its user (``sub``), its login session (``sid``) and itself (``jti``). Checking one
costs no database round trip: whether its session is still live is asked inside the query that
serves the request (see :mod:`todo_service.auth.access`). A verified token's verdict is kept until
it expires (:class:`VerifiedTokens`), so a client's next requests skip the signature check.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from todo_service.auth.access import Caller
from todo_service.core.errors import NotAuthenticated

if TYPE_CHECKING:
    from datetime import timedelta

    from litestar.connection import ASGIConnection
    from litestar.middleware.authentication import AuthenticationResult

__all__ = (
    "AccessToken",
    "BearerTokenMiddleware",
    "IssuedToken",
    "TokenIssuer",
    "VerifiedTokens",
    "build_jwt_auth",
    "caller_from_token",
)

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


class VerifiedTokens:
    """Tokens whose signature and claims were checked, until they expire (at most ``size``, oldest out).

    Checking an HS256 token (base64, JSON, HMAC, claims) costs more than the rest of a cached read:
    a client sends the same token with every request, so its verdict is kept. Only a token that
    passed every check is kept, keyed by its exact text (the signature included), and only until
    its ``exp``: then it goes through the full check again and fails as expired. Whether its session
    is still live is never cached: every statement checks that (see ``access.py``).
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[str, tuple[float, AuthenticationResult]] = {}

    def get(self, encoded: str) -> AuthenticationResult | None:
        """The kept result for ``encoded``, or None (unknown, or expired: then it is dropped)."""
        entry = self._entries.get(encoded)
        if entry is None:
            return None
        if time.time() >= entry[0]:
            del self._entries[encoded]
            return None
        return entry[1]

    def put(self, encoded: str, result: AuthenticationResult) -> None:
        """Keep a verified token's result until its ``exp``."""
        token = cast("Token", result.auth)  # what JWTAuthenticationMiddleware.authenticate_token returns
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[encoded] = (token.exp.timestamp(), result)


class BearerTokenMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, refusing tokens sent under any scheme but ``Bearer``; verdicts kept.

    Litestar takes whatever follows the first space (``Basic <jwt>`` would pass). Litestar makes one
    middleware per route, so the kept verdicts live on the class that :func:`build_jwt_auth` makes
    for its app (one store per app and key).
    """

    verified: ClassVar[VerifiedTokens] = VerifiedTokens()

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Authenticate ``Authorization: Bearer <token>`` (scheme case-insensitive, RFC 7235)."""
        scheme, _, token = connection.headers.get(self.auth_header, "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated
        if (known := self.verified.get(token)) is not None:
            return known
        result = await self.authenticate_token(encoded_token=token, connection=connection)
        self.verified.put(token, result)
        return result


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
        # A class per app: its verified tokens are this app's (and this key's) alone.
        authentication_middleware_class=type(
            "BearerTokenMiddleware", (BearerTokenMiddleware,), {"verified": VerifiedTokens()}
        ),
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
