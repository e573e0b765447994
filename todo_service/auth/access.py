"""Who may do what, decided inside the query that does it.

A request's statement carries :func:`caller_may` (or :func:`caller_is_admin`) as one more
condition, so checking the token's session (logout, deactivation) and the caller's role costs no
extra round trip and takes effect at once on every worker. When such a statement finds nothing,
:func:`explain_refusal` (one more query, on that rare path only) tells a dead session (401) or a
forbidden act (403) from a plain miss (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from uuid import UUID

from sqlalchemy import ColumnElement, Select, false, select, true

from todo_service.db.models import AuthSession, Role, User
from todo_service.lib.errors import Forbidden, InvalidToken, TokenRevoked

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.lib.errors import AppError

__all__ = ("Caller", "caller_is_admin", "caller_may", "explain_refusal", "refuse")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the access token says is calling; nothing here has been checked against the database."""

    user_id: UUID
    session_id: UUID
    token_id: str


def _live_session(caller: Caller) -> Select[tuple[UUID]]:
    """The caller's session, if it is unrevoked and its account active."""
    return (
        select(AuthSession.id)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.id == caller.session_id,
            AuthSession.user_id == caller.user_id,
            AuthSession.revoked_at.is_(None),
            User.is_active,
        )
    )


def caller_may(caller: Caller, *, owner_id: UUID, write: bool) -> ColumnElement[bool]:
    """SQL condition: the caller's session is live and its user may read (or change) ``owner_id``'s data.

    Users reach their own data; admins may also read anyone's; guests may not write.
    """
    role_rule: ColumnElement[bool] = true()
    if owner_id != caller.user_id:
        role_rule = false() if write else User.role == Role.ADMIN
    elif write:
        role_rule = User.role != Role.GUEST
    return _live_session(caller).where(role_rule).exists()


def caller_is_admin(caller: Caller) -> ColumnElement[bool]:
    """SQL condition: the caller's session is live and its user is an admin."""
    return _live_session(caller).where(User.role == Role.ADMIN).exists()


async def explain_refusal(
    db: AsyncSession, caller: Caller, *, owner_id: UUID | None = None, write: bool = False, admin: bool = False
) -> None:
    """Raise why a guarded statement found nothing; return if it was a plain miss.

    Args:
        db: The request's session.
        caller: Who asked.
        owner_id: Whose data the statement touched (guarded by :func:`caller_may`).
        write: Whether it changed data.
        admin: Whether it was guarded by :func:`caller_is_admin`.

    Raises:
        TokenRevoked: the session was logged out or revoked (or no longer exists).
        InvalidToken: the account was deactivated.
        Forbidden: the caller's role does not allow this.
    """
    row = (
        await db.execute(
            select(AuthSession.revoked_at, User.is_active, User.role)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == caller.session_id, AuthSession.user_id == caller.user_id)
        )
    ).one_or_none()
    if row is None:
        raise TokenRevoked
    # A deactivated account says so, whatever became of its sessions (deactivation revokes them).
    if not row.is_active:
        raise InvalidToken("The account is deactivated")
    if row.revoked_at is not None:
        raise TokenRevoked
    if admin and row.role != Role.ADMIN:
        raise Forbidden("Administrators only")
    if write and row.role == Role.GUEST:
        raise Forbidden("Guests can read but not change anything")
    if owner_id is not None and owner_id != caller.user_id and (write or row.role != Role.ADMIN):
        raise Forbidden("You can only access your own data")


async def refuse(  # noqa: PLR0913  (the arguments of explain_refusal, plus what to raise)
    db: AsyncSession,
    caller: Caller,
    *,
    otherwise: AppError,
    owner_id: UUID | None = None,
    write: bool = False,
    admin: bool = False,
) -> NoReturn:
    """Raise why a guarded statement found nothing: the refusal, or else ``otherwise`` (a plain miss).

    Raises:
        TokenRevoked, InvalidToken, Forbidden: see :func:`explain_refusal`.
        AppError: ``otherwise``, when the caller was allowed and the row simply is not there.
    """
    await explain_refusal(db, caller, owner_id=owner_id, write=write, admin=admin)
    raise otherwise
