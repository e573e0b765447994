"""Who may do what, decided inside the query that does it.

A request's statement carries :func:`caller_may` (or :func:`caller_is_admin`) as one more
condition, so checking the token's session (logout, deactivation) and the caller's role costs no
extra round trip and takes effect at once on every worker. When such a statement finds nothing,
:func:`explain_refusal` (one more query, on that rare path only) tells a dead session (401) or a
forbidden act (403) from a plain miss (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, NoReturn
from uuid import UUID

from sqlalchemy import ColumnElement, Select, bindparam, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from todo_service.core.errors import Forbidden, InvalidToken, TokenRevoked
from todo_service.db.models import AuthSession, Role, User
from todo_service.db.statements import SessionStatements

if TYPE_CHECKING:
    from todo_service.core.errors import AppError
    from todo_service.db.statements import Statements

__all__ = (
    "CALLER_ID",
    "CALLER_SESSION",
    "Caller",
    "admin_guard",
    "caller_is_admin",
    "caller_may",
    "caller_params",
    "explain_refusal",
    "guard",
    "refuse",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the access token says is calling; nothing here has been checked against the database."""

    user_id: UUID
    session_id: UUID


# The caller's identity as statement parameters: guards are built once, with these placeholders.
CALLER_ID = "caller_id"
CALLER_SESSION = "caller_session"


def caller_params(caller: Caller) -> dict[str, UUID]:
    """The values of a guard's placeholders for ``caller``."""
    return {CALLER_ID: caller.user_id, CALLER_SESSION: caller.session_id}


def _live_session() -> Select[tuple[UUID]]:
    """The caller's session, if it is unrevoked and its account active."""
    return (
        select(AuthSession.id)
        .join(User, User.id == AuthSession.user_id)
        .where(
            AuthSession.id == bindparam(CALLER_SESSION),
            AuthSession.user_id == bindparam(CALLER_ID),
            AuthSession.revoked_at.is_(None),
            User.is_active,
        )
    )


@cache
def guard(*, own: bool, write: bool) -> ColumnElement[bool]:
    """SQL condition (built once per kind): the caller's session is live and may read or change the data.

    ``own``: the data is the caller's own. Users reach their own data; admins may also read anyone's;
    guests may not write. The statement's parameters must include :func:`caller_params`.
    """
    role_rule: ColumnElement[bool] = true()
    if not own:
        role_rule = false() if write else User.role == Role.ADMIN
    elif write:
        role_rule = User.role != Role.GUEST
    return _live_session().where(role_rule).exists()


@cache
def admin_guard() -> ColumnElement[bool]:
    """SQL condition (built once): the caller's session is live and its user is an admin."""
    return _live_session().where(User.role == Role.ADMIN).exists()


def caller_may(caller: Caller, *, owner_id: UUID, write: bool) -> ColumnElement[bool]:
    """:func:`guard` with ``caller``'s values filled in, for statements built per request."""
    return guard(own=owner_id == caller.user_id, write=write).params(caller_params(caller))


def caller_is_admin(caller: Caller) -> ColumnElement[bool]:
    """:func:`admin_guard` with ``caller``'s values filled in, for statements built per request."""
    return admin_guard().params(caller_params(caller))


_SESSION_STATE = (
    select(AuthSession.revoked_at, User.is_active, User.role)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam(CALLER_SESSION), AuthSession.user_id == bindparam(CALLER_ID))
)


async def explain_refusal(
    db: AsyncSession | Statements,
    caller: Caller,
    *,
    owner_id: UUID | None = None,
    write: bool = False,
    admin: bool = False,
) -> None:
    """Raise why a guarded statement found nothing; return if it was a plain miss.

    Args:
        db: The request's session, or the statements the guarded one ran on.
        caller: Who asked.
        owner_id: Whose data the statement touched (guarded by :func:`caller_may`).
        write: Whether it changed data.
        admin: Whether it was guarded by :func:`caller_is_admin`.

    Raises:
        TokenRevoked: the session was logged out or revoked (or no longer exists).
        InvalidToken: the account was deactivated.
        Forbidden: the caller's role does not allow this.
    """
    statements = SessionStatements(db) if isinstance(db, AsyncSession) else db
    row = await statements.one(_SESSION_STATE, caller_params(caller))
    if row is None:
        raise TokenRevoked
    revoked_at, is_active, role = row
    # A deactivated account says so, whatever became of its sessions (deactivation revokes them).
    if not is_active:
        raise InvalidToken("The account is deactivated")
    if revoked_at is not None:
        raise TokenRevoked
    if admin and role != Role.ADMIN:
        raise Forbidden("Administrators only")
    if write and role == Role.GUEST:
        raise Forbidden("Guests can read but not change anything")
    if owner_id is not None and owner_id != caller.user_id and (write or role != Role.ADMIN):
        raise Forbidden("You can only access your own data")


async def refuse(  # noqa: PLR0913  (the arguments of explain_refusal, plus what to raise)
    db: AsyncSession | Statements,
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
