"""Registration, login, logout: login sessions and the tokens issued for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, update

from todo_service.auth.access import caller_may, refuse
from todo_service.auth.passwords import check_password_policy
from todo_service.auth.schemas import TokenResponse
from todo_service.db.models import AuthSession
from todo_service.lib.errors import Forbidden, InvalidCredentials, TokenRevoked
from todo_service.lib.service import Service
from todo_service.users.schemas import UserRead
from todo_service.users.services import USER_COLUMNS, UserService, normalize_email

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.auth.access import Caller
    from todo_service.auth.passwords import Passwords
    from todo_service.auth.schemas import LoginRequest, RegisterRequest
    from todo_service.auth.tokens import TokenIssuer

__all__ = ("AuthService", "prune_expired_sessions")


class AuthService(Service[AuthSession]):
    """Login sessions: every access token belongs to one, and dies with it."""

    class Repo(SQLAlchemyAsyncRepository[AuthSession]):
        """Login sessions."""

        model_type = AuthSession

    repository_type = Repo

    def __init__(self, session: AsyncSession, *, passwords: Passwords, tokens: TokenIssuer) -> None:
        super().__init__(session=session)
        self.users = UserService(session=session)
        self.passwords = passwords
        self.tokens = tokens

    async def register(self, data: RegisterRequest) -> TokenResponse:
        """Create an account and log it in.

        Raises:
            WeakPassword: the password breaks the policy.
            EmailAlreadyRegistered: the email is taken (in any letter case).
        """
        check_password_policy(data.password, normalize_email(data.email))
        user = await self.users.create_account(
            email=data.email,
            password_hash=await self.passwords.hash(data.password),
            first_name=data.first_name,
            last_name=data.last_name,
        )
        return await self._start_session(user)

    async def login(self, data: LoginRequest) -> TokenResponse:
        """Exchange credentials for a token; an unknown email costs the time of a wrong password.

        Raises:
            InvalidCredentials: unknown email or wrong password (indistinguishable).
            Forbidden: right password, but the account is deactivated.
        """
        row = await self.users.find_for_login(data.email)
        if row is None:
            await self.passwords.verify_nothing(data.password)
            raise InvalidCredentials
        if not await self.passwords.verify(row.password_hash, data.password):
            raise InvalidCredentials
        if not row.is_active:
            raise Forbidden("This account is deactivated")
        if self.passwords.needs_rehash(row.password_hash):
            await self.users.set_password_hash(row.id, await self.passwords.hash(data.password))
        return await self._start_session(UserRead(*row[: len(USER_COLUMNS)]))

    async def logout(self, caller: Caller) -> None:
        """Revoke the caller's login session: its tokens are refused from now on.

        Raises:
            TokenRevoked: the session was already revoked.
        """
        result = await self.db.execute(
            update(AuthSession)
            .where(AuthSession.id == caller.session_id, caller_may(caller, owner_id=caller.user_id, write=False))
            .values(revoked_at=datetime.now(UTC))
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            # Allowed a moment later means the session was revoked in between: still revoked.
            await refuse(self.db, caller, owner_id=caller.user_id, write=False, otherwise=TokenRevoked())

    async def _start_session(self, user: UserRead) -> TokenResponse:
        """Record a login session and sign a token for it."""
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=self.tokens.ttl_seconds)
        auth_session = await self.repository.add(
            AuthSession(user_id=user.id, created_at=now, expires_at=expires_at), auto_refresh=False
        )
        issued = self.tokens.issue(user.id, auth_session.id)
        return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in, user=user)


async def prune_expired_sessions(db: AsyncSession, now: datetime | None = None) -> int:
    """Delete login sessions whose every token has expired; returns how many went."""
    result = await db.execute(delete(AuthSession).where(AuthSession.expires_at < (now or datetime.now(UTC))))
    return int(result.rowcount)  # type: ignore[attr-defined]
