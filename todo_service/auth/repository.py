"""The auth feature's repository: every statement on login sessions and their refresh tokens, each a named method.

:class:`AuthRepository` is an Advanced Alchemy repository of
:class:`~todo_service.db.models.AuthSession`; a session's refresh tokens
(:class:`~todo_service.db.models.RefreshToken`) live and die with it, so their statements are here
too. Logout takes the caller first and carries their permission
(:func:`~todo_service.security.access.caller_may`) in its ``WHERE``; the others come before there
is a caller, keyed by a refresh token's hash or a session the service has just found. Every
statement runs on the repository's ``session``: the request's transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, or_, select, update

from todo_service.db.models import AuthSession, RefreshToken, User
from todo_service.db.statements import SessionStatements
from todo_service.security.access import caller_may
from todo_service.users.repository import USER_COLUMNS

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql.elements import ColumnElement

    from todo_service.security.access import Caller

__all__ = ("AuthRepository",)


class AuthRepository(SQLAlchemyAsyncRepository[AuthSession]):
    """Login sessions and their refresh tokens, in the request's transaction."""

    model_type = AuthSession
    session: AsyncSession  # always a request's own session, never a scoped one

    def __init__(self, *, session: AsyncSession, **kwargs: Any) -> None:  # noqa: ANN401  (Advanced Alchemy's options)
        super().__init__(session=session, **kwargs)
        self.statements = SessionStatements(session)  # for refuse(), in the same transaction

    async def start_session(self, user_id: UUID, *, now: datetime, expires_at: datetime) -> UUID:
        """Record a new login session of the account (the inherited ``add``); its id."""
        auth_session = await self.add(
            AuthSession(user_id=user_id, created_at=now, expires_at=expires_at), auto_refresh=False
        )
        return auth_session.id

    async def add_refresh_token(self, session_id: UUID, token_hash: str, *, now: datetime) -> None:
        """Record a refresh token (its hash) of the session."""
        self.session.add(RefreshToken(session_id=session_id, token_hash=token_hash, created_at=now))
        await self.session.flush()

    async def exchange_refresh_token(self, token_hash: str, *, now: datetime, grace: timedelta) -> UUID | None:
        """Mark the token used and return its session's id; None when it may not be exchanged.

        It may be when its session is live (unrevoked, unexpired, its account active) and it is
        unused, or was first used less than ``grace`` ago.
        """
        live_session = (
            select(AuthSession.id)
            .join(User, User.id == AuthSession.user_id)
            .where(
                AuthSession.id == RefreshToken.session_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
                User.is_active,
            )
            .exists()
        )
        exchangeable: ColumnElement[bool] = RefreshToken.used_at.is_(None)
        if grace > timedelta(0):
            exchangeable = or_(exchangeable, RefreshToken.used_at > now - grace)
        statement = (
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, exchangeable, live_session)
            # The first exchange's time stays: the grace runs from it, not from each reuse.
            .values(used_at=func.coalesce(RefreshToken.used_at, now))
            .returning(RefreshToken.session_id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def session_user(self, session_id: UUID) -> Row[Any]:
        """The session's account (``USER_COLUMNS``) and the session's ``expires_at``."""
        statement = (
            select(*USER_COLUMNS, AuthSession.expires_at)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(AuthSession.id == session_id)
        )
        return (await self.session.execute(statement)).one()

    async def find_refused_token(self, token_hash: str) -> Row[Any] | None:
        """What became of a refresh token that could not be exchanged: its use, its session, its account."""
        statement = (
            select(
                RefreshToken.used_at,
                AuthSession.id,
                AuthSession.user_id,
                AuthSession.revoked_at,
                AuthSession.expires_at,
                User.is_active,
            )
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .join(User, User.id == AuthSession.user_id)
            .where(RefreshToken.token_hash == token_hash)
        )
        return (await self.session.execute(statement)).one_or_none()

    async def revoke_session(self, session_id: UUID, *, now: datetime) -> None:
        """Revoke the session, unless it already is (its first revocation time stays)."""
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def log_out(self, caller: Caller) -> bool:
        """Revoke the caller's own session; False when it is no longer theirs to revoke (already revoked)."""
        result = await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == caller.session_id, caller_may(caller, owner_id=caller.user_id, write=False))
            .values(revoked_at=datetime.now(UTC))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
