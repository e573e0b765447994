"""Who may do what, decided inside the query that does it.

A request's statement carries :func:`caller_may` as one more condition, so checking the token's
session (logout, deactivation) and the caller's role costs no extra round trip and takes effect at
once on every worker. When such a statement finds nothing, :func:`explain_refusal` (one more query,
on that rare path only) tells a dead session (401) or a forbidden act (403) from a plain miss (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from uuid import UUID

from sqlalchemy import ColumnElement, and_, false, select, true

from todo_service.db.models import AuthSession, Role, User
from todo_service.lib.errors import Forbidden, InvalidToken, TokenRevoked

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.lib.errors import AppError

__all__ = ("Caller", "caller_may", "explain_refusal", "refuse")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the access token says is calling; nothing here has been checked against the database."""

    user_id: UUID
    session_id: UUID
    token_id: str


def caller_may(caller: Caller, *, owner_id: UUID, write: bool) -> ColumnElement[bool]:
    """SQL condition: the caller's session is live and its user may read (or change) ``owner_id``'s data.

    Users reach their own data; admins may also read anyone's; guests may not write.
    """
    role_rule: ColumnElement[bool] = true()
    if owner_id != caller.user_id:
        role_rule = false() if write else User.role == Role.ADMIN
    elif write:
        role_rule = User.role != Role.GUEST
    return (
        select(AuthSession.id)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.id == caller.session_id,
            AuthSession.user_id == caller.user_id,
            AuthSession.revoked_at.is_(None),
            and_(User.is_active, role_rule),
        )
        .exists()
    )


async def explain_refusal(db: AsyncSession, caller: Caller, *, owner_id: UUID, write: bool) -> None:
    """Raise why a statement guarded by :func:`caller_may` found nothing; return if it was a plain miss.

    Raises:
        TokenRevoked: the session was logged out or revoked (or no longer exists).
        InvalidToken: the account was deactivated.
        Forbidden: the caller's role does not allow this on ``owner_id``'s data.
    """
    row = (
        await db.execute(
            select(AuthSession.revoked_at, User.is_active, User.role)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == caller.session_id, AuthSession.user_id == caller.user_id)
        )
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        raise TokenRevoked
    if not row.is_active:
        raise InvalidToken("The account is deactivated")
    if write and row.role == Role.GUEST:
        raise Forbidden("Guests can read but not change anything")
    if owner_id != caller.user_id and (write or row.role != Role.ADMIN):
        raise Forbidden("You can only access your own data")


async def refuse(db: AsyncSession, caller: Caller, *, owner_id: UUID, write: bool, otherwise: AppError) -> NoReturn:
    """Raise why a guarded statement found nothing: the refusal, or else ``otherwise`` (a plain miss).

    Raises:
        TokenRevoked, InvalidToken, Forbidden: see :func:`explain_refusal`.
        AppError: ``otherwise``, when the caller was allowed and the row simply is not there.
    """
    await explain_refusal(db, caller, owner_id=owner_id, write=write)
    raise otherwise
