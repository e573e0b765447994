"""``/api/v1/auth``: register, log in, log out."""

from litestar import Controller, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from todo_service.audit.log import AuditTrail
from todo_service.auth.errors import AccountLocked, InvalidCredentials
from todo_service.auth.schemas import LoginRequest, RefreshRequest, RegisterRequest, TokenResponse
from todo_service.auth.services import AuthService
from todo_service.core.errors import Forbidden, InvalidToken, TokenExpired, TokenRevoked
from todo_service.core.request_context import RATE_LIMIT
from todo_service.core.schema import MessageResponse
from todo_service.http.openapi import AUTHENTICATED, PUBLIC, WITH_BODY, error_responses
from todo_service.security.access import Caller
from todo_service.security.config import AuthConfig
from todo_service.security.errors import WeakPassword
from todo_service.users.errors import EmailAlreadyRegistered

__all__ = ("AuthController", "provide_auth_service")


def provide_auth_service(
    db_session: NamedDependency[AsyncSession],
    auth_config: NamedDependency[AuthConfig],
    audit: NamedDependency[AuditTrail],
) -> AuthService:
    """The auth service for this request's database session."""
    return AuthService(db_session, config=auth_config, audit=audit)


class AuthController(Controller):
    """Accounts and tokens."""

    path = "/api/v1/auth"
    tags = ["auth"]
    dependencies = {"auth_service": Provide(provide_auth_service, sync_to_thread=False)}

    @post(
        "/register",
        opt={RATE_LIMIT: "register"},  # its own rule per client IP (RATE_LIMIT_REGISTER)
        status_code=201,
        exclude_from_auth=True,
        security=[{}],
        summary="Create an account",
        responses=error_responses(*PUBLIC, *WITH_BODY, WeakPassword, EmailAlreadyRegistered),
    )
    async def register(
        self, data: JSONBody[RegisterRequest], auth_service: NamedDependency[AuthService]
    ) -> TokenResponse:
        """Create an account and return a bearer token for it."""
        return await auth_service.register(data)

    @post(
        "/login",
        opt={RATE_LIMIT: "login"},  # its own rule per client IP (RATE_LIMIT_LOGIN)
        status_code=200,
        exclude_from_auth=True,
        security=[{}],
        summary="Log in",
        responses=error_responses(*PUBLIC, *WITH_BODY, InvalidCredentials, Forbidden, AccountLocked),
    )
    async def login(self, data: JSONBody[LoginRequest], auth_service: NamedDependency[AuthService]) -> TokenResponse:
        """Exchange email and password for tokens. Repeated failures lock the email for a while (423)."""
        return await auth_service.login(data)

    @post(
        "/refresh",
        opt={RATE_LIMIT: "refresh"},  # its own rule per client IP (RATE_LIMIT_REFRESH)
        status_code=200,
        exclude_from_auth=True,
        security=[{}],
        summary="Refresh the tokens",
        responses=error_responses(*PUBLIC, *WITH_BODY, InvalidToken, TokenRevoked, TokenExpired),
    )
    async def refresh(
        self, data: JSONBody[RefreshRequest], auth_service: NamedDependency[AuthService]
    ) -> TokenResponse:
        """Exchange a refresh token, once, for a new access and refresh token.

        Presenting a used refresh token again revokes its whole login session.
        """
        return await auth_service.refresh(data)

    @post("/logout", status_code=200, summary="Log out", responses=error_responses(*AUTHENTICATED))
    async def logout(
        self, caller: NamedDependency[Caller], auth_service: NamedDependency[AuthService]
    ) -> MessageResponse:
        """Revoke the token used for this request, with every access and refresh token of its login session."""
        await auth_service.logout(caller)
        return MessageResponse(message="Successfully logged out")
