"""``/api/v1/users/me``: the caller's own account."""

from litestar import Controller, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from todo_service.audit.log import AuditTrail
from todo_service.core.errors import Forbidden
from todo_service.core.schema import MessageResponse
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.security.access import Caller
from todo_service.security.config import AuthConfig
from todo_service.security.errors import WeakPassword
from todo_service.users.errors import EmailAlreadyRegistered
from todo_service.users.schemas import PasswordChange, UserRead, UserUpdate
from todo_service.users.services import UserService

__all__ = ("UserController", "provide_user_service")


def provide_user_service(
    db_session: NamedDependency[AsyncSession],
    auth_config: NamedDependency[AuthConfig],
    audit: NamedDependency[AuditTrail],
) -> UserService:
    """The user service for this request's database session."""
    return UserService(db_session, passwords=auth_config.passwords, audit=audit)


class UserController(Controller):
    """The caller's own account."""

    path = "/api/v1/users/me"
    tags = ["users"]
    dependencies = {"user_service": Provide(provide_user_service, sync_to_thread=False)}

    @get(summary="Read my account", responses=error_responses(*AUTHENTICATED))
    async def get_me(self, caller: NamedDependency[Caller], user_service: NamedDependency[UserService]) -> UserRead:
        """The account the bearer token belongs to."""
        return await user_service.get_me(caller)

    @put(
        summary="Change my account",
        responses=error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, EmailAlreadyRegistered),
    )
    async def update_me(
        self,
        data: JSONBody[UserUpdate],
        caller: NamedDependency[Caller],
        user_service: NamedDependency[UserService],
    ) -> UserRead:
        """Change first name, last name, email or time zone; omitted fields stay as they are.

        A new email logs out every other session of the account.
        """
        return await user_service.update_me(caller, data)

    @put(
        "/password",
        summary="Change my password",
        responses=error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, WeakPassword),
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        caller: NamedDependency[Caller],
        user_service: NamedDependency[UserService],
    ) -> MessageResponse:
        """Replace the password (the current one is required).

        Every other session of the account is logged out; this one stays.
        """
        await user_service.change_password(caller, data)
        return MessageResponse(message="Password changed; other sessions were logged out")
