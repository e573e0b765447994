"""Access tokens: HS256 JWTs issued and checked through Litestar's JWT auth.

A token names its user (``sub``), its login session (``sid``) and itself (``jti``). Checking one
costs no database round trip: whether its session is still live is asked inside the query that
serves the request (see :mod:`todo_service.security.access`). A verified token's verdict is kept until
it expires (:class:`VerifiedTokens`), so a client's next requests skip the signature check.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import jwt
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPlugin
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from todo_service.core.errors import InvalidToken, NotAuthenticated, TokenExpired
from todo_service.security.access import Caller

if TYPE_CHECKING:
    from datetime import timedelta

    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.middleware.authentication import AuthenticationResult

__all__ = (
    "AccessToken",
    "BearerJWTAuth",
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
    middleware per route, so the kept verdicts are one store per app (and key), handed to each of
    them by :class:`BearerJWTAuth`.
    """

    def __init__(self, *, verified: VerifiedTokens, **options: Any) -> None:  # noqa: ANN401
        super().__init__(**options)
        self.verified = verified

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Authenticate ``Authorization: Bearer <token>`` (scheme case-insensitive, RFC 7235)."""
        scheme, _, token = connection.headers.get(self.auth_header, "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated
        if (known := self.verified.get(token)) is not None:
            return known
        try:
            result = await self.authenticate_token(encoded_token=token, connection=connection)
        except NotAuthorizedException as exc:  # Litestar says "Invalid token" either way; the cause tells
            raise TokenExpired if isinstance(exc.__cause__, jwt.ExpiredSignatureError) else InvalidToken from exc
        self.verified.put(token, result)
        return result


async def caller_from_token(token: AccessToken, _: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """Turn verified claims into the caller, without touching the database."""
    try:
        return Caller(user_id=uuid.UUID(token.sub), session_id=uuid.UUID(str(token.sid)))
    except ValueError:
        raise InvalidToken from None


@dataclass
class BearerJWTAuth(JWTAuth[Caller, AccessToken], InitPlugin):
    """Litestar's JWT auth with :class:`BearerTokenMiddleware`, which shares one store of verified tokens.

    A plugin: ``on_app_init`` adds the OpenAPI security scheme; the middleware is listed by ``create_app``.
    """

    authentication_middleware_class: type[JWTAuthenticationMiddleware] = BearerTokenMiddleware
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    # Litestar keeps its plugins in a set: hashable by identity (equal configs still hold distinct stores).
    __hash__ = object.__hash__

    @property
    def middleware(self) -> DefineMiddleware:
        """Litestar's middleware definition, plus this app's store of verified tokens."""
        base = super().middleware
        return DefineMiddleware(base.middleware, *base.args, verified=self.verified_tokens, **base.kwargs)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Litestar's own (the OpenAPI security scheme) without its middleware: the app's list places that."""
        middleware = list(app_config.middleware)
        app_config = super().on_app_init(app_config)
        app_config.middleware = middleware
        return app_config


def build_jwt_auth(secret: str, ttl: timedelta) -> BearerJWTAuth:
    """The JWT middleware config: every route needs a bearer token unless it opts out."""
    return BearerJWTAuth(
        retrieve_user_handler=caller_from_token,
        token_secret=secret,
        token_cls=AccessToken,
        algorithm=ALGORITHM,
        default_token_expiration=ttl,
        # exp and sub are always required; without jti and sid a token cannot be revoked.
        require_claims=["iat", "jti", "sid"],
        exclude=PUBLIC_PATH_PATTERNS,
        exclude_opt_key=EXCLUDE_FROM_AUTH_KEY,
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
