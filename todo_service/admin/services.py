"""Managing accounts and reading the audit trail: the rules, over :class:`AdminRepository`.

Every statement checks the caller is an admin (see :mod:`todo_service.admin.repository`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from todo_service.admin.repository import AdminRepository
from todo_service.admin.schemas import AuditEventRead
from todo_service.audit.log import Event, Outcome
from todo_service.core.errors import Forbidden
from todo_service.core.pagination import Page
from todo_service.db.models import User
from todo_service.security.access import refuse
from todo_service.users.errors import UserNotFound
from todo_service.users.schemas import UserRead

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.admin.schemas import UserStatusUpdate
    from todo_service.audit.log import AuditTrail
    from todo_service.db.models import Role
    from todo_service.security.access import Caller

__all__ = ("AdminService",)


class AdminService(SQLAlchemyAsyncRepositoryService[User, AdminRepository]):
    """What admins do to accounts, and what they read about them."""

    repository_type = AdminRepository

    def __init__(self, session: AsyncSession, *, audit: AuditTrail) -> None:
        super().__init__(session=session)
        self.audit = audit

    async def list_users(
        self, caller: Caller, *, page: int, limit: int, role: Role | None = None, is_active: bool | None = None
    ) -> Page[UserRead]:
        """Accounts, oldest first."""
        rows, total = await self.repository.page_users(caller, page=page, limit=limit, role=role, is_active=is_active)
        return Page.of([UserRead(*row) for row in rows], total=total, page=page, limit=limit)

    async def update_user(self, caller: Caller, user_id: UUID, data: UserStatusUpdate) -> UserRead:
        """Change an account's role or status. Deactivating logs it out everywhere at once.

        Raises:
            Forbidden: the caller is not an admin, or targets their own account.
            UserNotFound: no such account.
        """
        if user_id == caller.user_id:
            # An admin demoting or deactivating themselves could leave nobody to undo it.
            raise Forbidden("Admins cannot change their own role or status")
        before = await self.repository.role_and_status(user_id)
        row = await self.repository.set_role_and_status(caller, user_id, data.sent_fields())
        if row is None or before is None:
            await refuse(self.repository.statements, caller, admin=True, otherwise=UserNotFound())
        user = UserRead(*row)
        if user.role != before.role:
            detail = f"{before.role} -> {user.role}"
            self.audit.record(Event.ROLE_CHANGED, Outcome.SUCCESS, user_id=user.id, detail=detail)
        if user.is_active != before.is_active:
            if not user.is_active:
                await self.repository.revoke_sessions(user.id)
            event = Event.USER_REACTIVATED if user.is_active else Event.USER_DEACTIVATED
            self.audit.record(event, Outcome.SUCCESS, user_id=user.id, detail=f"by {caller.user_id}")
        return user

    async def list_audit_events(  # noqa: PLR0913  (one argument per filter)
        self,
        caller: Caller,
        *,
        page: int,
        limit: int,
        event: Event | None = None,
        user_id: UUID | None = None,
        email_hash: str | None = None,
    ) -> Page[AuditEventRead]:
        """Security events, newest first."""
        rows, total = await self.repository.page_audit_events(
            caller, page=page, limit=limit, event=event, user_id=user_id, email_hash=email_hash
        )
        return Page.of([AuditEventRead(*row) for row in rows], total=total, page=page, limit=limit)
