"""Managing accounts and reading the audit trail; every statement checks the caller is an admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from todo_service.admin.schemas import AuditEventRead
from todo_service.audit.log import Event, Outcome
from todo_service.core.errors import Forbidden
from todo_service.core.pagination import Page, PageQuery, fetch_page
from todo_service.db.models import AuditEvent, Role, User
from todo_service.db.statements import SessionStatements
from todo_service.security.access import admin_guard, caller_is_admin, caller_params, explain_refusal, refuse
from todo_service.security.sessions import revoke_sessions
from todo_service.users.errors import UserNotFound
from todo_service.users.schemas import UserRead
from todo_service.users.services import USER_COLUMNS

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.admin.schemas import UserStatusUpdate
    from todo_service.audit.log import AuditTrail
    from todo_service.security.access import Caller

__all__ = ("AUDIT_COLUMNS", "AdminService")

# The columns of AuditEventRead, in its field order.
AUDIT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.created_at,
    AuditEvent.event,
    AuditEvent.outcome,
    AuditEvent.user_id,
    AuditEvent.email_hash,
    AuditEvent.ip,
    AuditEvent.request_id,
    AuditEvent.detail,
)


class AdminService:
    """What admins do to accounts, and what they read about them.

    A plain class over the request's session: every operation is a guarded Core statement or two
    in the request's transaction, none loads a model through a repository.
    """

    def __init__(self, session: AsyncSession, *, audit: AuditTrail) -> None:
        self.db = session
        self.audit = audit

    async def list_users(
        self, caller: Caller, *, page: int, limit: int, role: Role | None = None, is_active: bool | None = None
    ) -> Page[UserRead]:
        """Accounts, oldest first."""
        where: list[ColumnElement[bool]] = []
        if role is not None:
            where.append(User.role == role)
        if is_active is not None:
            where.append(User.is_active == is_active)
        query = PageQuery.build(
            source=User.__table__,
            columns=USER_COLUMNS,
            where=where,
            guard=admin_guard(),
            order_by=[User.created_at.asc(), User.id.asc()],
        )
        rows, total = await fetch_page(
            SessionStatements(self.db),
            query,
            caller_params(caller),
            page=page,
            limit=limit,
            on_empty=lambda: explain_refusal(self.db, caller, admin=True),
        )
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
        changes = data.sent_fields()
        before = (await self.db.execute(select(User.role, User.is_active).where(User.id == user_id))).one_or_none()
        values = {**changes, "updated_at": datetime.now(UTC) if changes else User.updated_at}
        row = (
            await self.db.execute(
                update(User).where(User.id == user_id, caller_is_admin(caller)).values(values).returning(*USER_COLUMNS)
            )
        ).one_or_none()
        if row is None or before is None:
            await refuse(self.db, caller, admin=True, otherwise=UserNotFound())
        user = UserRead(*row)
        if user.role != before.role:
            detail = f"{before.role} -> {user.role}"
            self.audit.record(Event.ROLE_CHANGED, Outcome.SUCCESS, user_id=user.id, detail=detail)
        if user.is_active != before.is_active:
            if not user.is_active:
                await revoke_sessions(self.db, user.id)
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
        where: list[ColumnElement[bool]] = []
        if event is not None:
            where.append(AuditEvent.event == event.value)
        if user_id is not None:
            where.append(AuditEvent.user_id == user_id)
        if email_hash is not None:
            where.append(AuditEvent.email_hash == email_hash)
        query = PageQuery.build(
            source=AuditEvent.__table__,
            columns=AUDIT_COLUMNS,
            where=where,
            guard=admin_guard(),
            order_by=[AuditEvent.created_at.desc(), AuditEvent.id.desc()],
        )
        rows, total = await fetch_page(
            SessionStatements(self.db),
            query,
            caller_params(caller),
            page=page,
            limit=limit,
            on_empty=lambda: explain_refusal(self.db, caller, admin=True),
        )
        return Page.of([AuditEventRead(*row) for row in rows], total=total, page=page, limit=limit)
