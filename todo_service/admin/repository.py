"""The admin feature's repository: the statements admins run on accounts and the audit trail, each a named method.

:class:`AdminRepository` is the users' repository (admins manage accounts) with the admin's own
statements. Those that read or change someone's data take the caller first and carry the admin
check (:func:`~todo_service.security.access.admin_guard`) in their ``WHERE``: a caller who is not a
live admin gets nothing, and an empty listing raises why
(:func:`~todo_service.security.access.explain_refusal`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from todo_service.core.pagination import PageQuery, fetch_page
from todo_service.db.models import AuditEvent, User
from todo_service.security.access import admin_guard, caller_is_admin, caller_params, explain_refusal
from todo_service.users.repository import USER_COLUMNS, UserRepository

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy import ColumnElement, Row

    from todo_service.audit.log import Event
    from todo_service.db.models import Role
    from todo_service.security.access import Caller

__all__ = ("AUDIT_COLUMNS", "AdminRepository")

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


class AdminRepository(UserRepository):
    """Accounts as admins see and change them, and the audit trail, in the request's transaction."""

    async def page_users(
        self, caller: Caller, *, page: int, limit: int, role: Role | None, is_active: bool | None
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One page of accounts (``USER_COLUMNS``), oldest first, and the total."""
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
        return await self._page(caller, query, page=page, limit=limit)

    async def role_and_status(self, user_id: UUID) -> Row[Any] | None:
        """The account's ``role`` and ``is_active``, read before :meth:`set_role_and_status` to tell what changed."""
        # Unguarded: the service returns nothing of it unless the guarded update that follows is allowed.
        return (await self.session.execute(select(User.role, User.is_active).where(User.id == user_id))).one_or_none()

    async def set_role_and_status(self, caller: Caller, user_id: UUID, changes: dict[str, Any]) -> Row[Any] | None:
        """Set ``changes`` on the account (its ``USER_COLUMNS``); None: no such account, or the caller is no admin."""
        # With nothing to change the statement still runs: it checks the caller is an admin.
        values = {**changes, "updated_at": datetime.now(UTC) if changes else User.updated_at}
        statement = (
            update(User).where(User.id == user_id, caller_is_admin(caller)).values(values).returning(*USER_COLUMNS)
        )
        return (await self.session.execute(statement)).one_or_none()

    async def page_audit_events(  # noqa: PLR0913  (one argument per filter)
        self,
        caller: Caller,
        *,
        page: int,
        limit: int,
        event: Event | None,
        user_id: UUID | None,
        email_hash: str | None,
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One page of security events (``AUDIT_COLUMNS``), newest first, and the total."""
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
        return await self._page(caller, query, page=page, limit=limit)

    async def _page(
        self, caller: Caller, query: PageQuery, *, page: int, limit: int
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Run a listing guarded by :func:`admin_guard`; an empty page raises if the caller was refused."""
        return await fetch_page(
            self.statements,
            query,
            caller_params(caller),
            page=page,
            limit=limit,
            on_empty=lambda: explain_refusal(self.statements, caller, admin=True),
        )
