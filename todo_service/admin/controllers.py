"""``/api/v1/admin``: accounts and the audit trail, for admins only."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, patch
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from todo_service.admin.schemas import AuditEventRead, UserStatusUpdate
from todo_service.admin.services import AdminService
from todo_service.audit.log import AuditTrail, Event
from todo_service.core.errors import Forbidden, NotFound
from todo_service.core.pagination import Page, PageNumber, PageSize
from todo_service.core.schema import Email
from todo_service.db.models import Role
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.security.access import Caller
from todo_service.users.errors import UserNotFound
from todo_service.users.schemas import UserRead

__all__ = ("AdminController", "provide_admin_service")


def provide_admin_service(
    db_session: NamedDependency[AsyncSession], audit: NamedDependency[AuditTrail]
) -> AdminService:
    """The admin service for this request's database session."""
    return AdminService(db_session, audit=audit)


class AdminController(Controller):
    """Administration. Every route answers 403 FORBIDDEN to anyone but an admin."""

    path = "/api/v1/admin"
    tags = ["admin"]
    dependencies = {"admin_service": Provide(provide_admin_service, sync_to_thread=False)}

    @get("/users", summary="List accounts", responses=error_responses(*AUTHENTICATED, Forbidden))
    async def list_users(  # noqa: PLR0913  (one argument per documented query parameter)
        self,
        *,
        caller: NamedDependency[Caller],
        admin_service: NamedDependency[AdminService],
        role: Annotated[Role | None, QueryParameter(description="Only accounts with this role")] = None,
        is_active: Annotated[bool | None, QueryParameter(description="Only active (true) or deactivated")] = None,
        page: PageNumber = 1,
        limit: PageSize = 20,
    ) -> Page[UserRead]:
        """Every account, oldest first."""
        return await admin_service.list_users(caller, page=page, limit=limit, role=role, is_active=is_active)

    @patch(
        "/users/{user_id:uuid}",
        summary="Change an account's role or status",
        responses=error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, UserNotFound),
    )
    async def update_user(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[UserStatusUpdate],
        caller: NamedDependency[Caller],
        admin_service: NamedDependency[AdminService],
    ) -> UserRead:
        """Set ``role`` (admin, user, guest) or ``is_active``.

        Deactivation ends the account's sessions at once. Admins cannot change their own account here.
        """
        return await admin_service.update_user(caller, user_id, data)

    @get("/audit-events", summary="Read the audit trail", responses=error_responses(*AUTHENTICATED, Forbidden))
    async def list_audit_events(  # noqa: PLR0913  (one argument per documented query parameter)
        self,
        *,
        caller: NamedDependency[Caller],
        admin_service: NamedDependency[AdminService],
        audit: NamedDependency[AuditTrail],
        event: Annotated[Event | None, QueryParameter(description="Only events of this kind")] = None,
        user_id: Annotated[UUID | None, QueryParameter(description="Only events about this account")] = None,
        email: Annotated[
            Email | None,
            QueryParameter(min_length=3, max_length=255, description="Only events about this email address"),
        ] = None,
        page: PageNumber = 1,
        limit: PageSize = 50,
    ) -> Page[AuditEventRead]:
        """Security events, newest first.

        Registrations, logins and failures, lockouts, logouts, refresh-token reuse, password and email
        changes, role and status changes, rate-limit hits. Never a password or a token.
        """
        email_hash = audit.log.email_hash(email) if email else None
        return await admin_service.list_audit_events(
            caller, page=page, limit=limit, event=event, user_id=user_id, email_hash=email_hash
        )
