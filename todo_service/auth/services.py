"""Registration, login, refresh and logout: the rules of login sessions and their tokens, over :class:`AuthRepository`.

The statements are the repositories' (sessions and refresh tokens: :class:`AuthRepository`; accounts:
the users feature's); the login counters are :class:`~todo_service.security.lockout.Lockout`'s. All
run in the request's transaction, which this service commits early where a refusal must last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from todo_service.audit.log import Event, Outcome
from todo_service.auth.errors import AccountLocked, InvalidCredentials
from todo_service.auth.repository import AuthRepository
from todo_service.auth.schemas import TokenResponse
from todo_service.core.errors import Forbidden, InvalidToken, TokenExpired, TokenRevoked
from todo_service.db.models import AuthSession
from todo_service.security.access import refuse
from todo_service.security.lockout import Attempt, Lockout
from todo_service.security.passwords import check_password_policy
from todo_service.security.sessions import hash_refresh_token, new_refresh_token
from todo_service.users.repository import USER_COLUMNS, normalize_email
from todo_service.users.schemas import UserRead
from todo_service.users.services import UserService

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.audit.log import AuditTrail
    from todo_service.auth.schemas import LoginRequest, RefreshRequest, RegisterRequest
    from todo_service.security.access import Caller
    from todo_service.security.config import AuthConfig

__all__ = ("AuthService",)


class AuthService(SQLAlchemyAsyncRepositoryService[AuthSession, AuthRepository]):
    """Login sessions: every access token belongs to one, and dies with it."""

    repository_type = AuthRepository

    def __init__(self, session: AsyncSession, *, config: AuthConfig, audit: AuditTrail) -> None:
        super().__init__(session=session)
        self.config = config
        self.audit = audit
        self.users = UserService(session=session, passwords=config.passwords, audit=audit)
        self.lockout = Lockout(session, config.lockout)

    async def register(self, data: RegisterRequest) -> TokenResponse:
        """Create an account and log it in.

        Raises:
            WeakPassword: the password breaks the policy.
            EmailAlreadyRegistered: the email is taken (in any letter case).
        """
        check_password_policy(data.password, normalize_email(data.email))
        user = await self.users.create_account(
            email=data.email,
            password_hash=await self.config.passwords.hash(data.password),
            first_name=data.first_name,
            last_name=data.last_name,
        )
        self.audit.record(Event.REGISTER, Outcome.SUCCESS, user_id=user.id, email=user.email)
        return await self._start_session(user)

    async def login(self, data: LoginRequest) -> TokenResponse:
        """Exchange credentials for tokens; an unknown email costs the time of a wrong password.

        Raises:
            AccountLocked: too many recent failures for this email (known or not).
            InvalidCredentials: unknown email or wrong password (indistinguishable).
            Forbidden: right password, but the account is deactivated.
        """
        passwords = self.config.passwords
        email_hash = self.audit.log.email_hash(data.email)
        if seconds := await self.lockout.seconds_locked(email_hash):
            self._refuse_locked(seconds, data.email)
        row = await self.users.repository.find_for_login(data.email)
        # Reserved and committed before the hash is verified: every worker sees it at once.
        attempt = await self.lockout.reserve(email_hash)
        await self.repository.session.commit()
        if attempt.refused:
            self._refuse_locked(attempt.seconds_locked, data.email)
        if row is None:
            await passwords.verify_nothing(data.password)
        if row is None or not await passwords.verify(row.password_hash, data.password):
            await self._count_failure(email_hash, attempt, data.email, row.id if row else None)
        if not row.is_active:
            raise Forbidden("This account is deactivated")
        await self.lockout.clear(email_hash, attempt)
        if passwords.needs_rehash(row.password_hash):
            await self.users.repository.set_password_hash(row.id, await passwords.hash(data.password))
        user = UserRead(*row[: len(USER_COLUMNS)])
        self.audit.record(Event.LOGIN_SUCCEEDED, Outcome.SUCCESS, user_id=user.id, email=user.email)
        return await self._start_session(user)

    async def refresh(self, data: RefreshRequest) -> TokenResponse:
        """Exchange a refresh token for a new pair in the same login session.

        A token is exchanged once. Presented again within the reuse grace of its first exchange
        (two tabs refreshing at once, a retried request), it gets another pair for the same
        session and nothing is revoked. Presented again later, it revokes its whole session (it
        was stolen, or the client lost track): both the thief and the owner must log in again.

        Raises:
            InvalidToken: unknown token, or the account was deactivated.
            TokenRevoked: the session was logged out or revoked, or the token was reused.
            TokenExpired: the session outlived its lifetime.
        """
        now = datetime.now(UTC)
        token_hash = hash_refresh_token(data.refresh_token)
        session_id = await self.repository.exchange_refresh_token(
            token_hash, now=now, grace=self.config.refresh_reuse_grace
        )
        if session_id is None:
            await self._refuse_refresh(token_hash, now)
        user_row = await self.repository.session_user(session_id)
        user = UserRead(*user_row[: len(USER_COLUMNS)])
        return await self._issue(user, session_id, now=now, expires_at=user_row.expires_at)

    async def logout(self, caller: Caller) -> None:
        """Revoke the caller's login session: its access and refresh tokens are refused from now on.

        Raises:
            TokenRevoked: the session was already revoked.
        """
        if not await self.repository.log_out(caller):
            # Allowed a moment later means the session was revoked in between: still revoked.
            await refuse(
                self.repository.statements, caller, owner_id=caller.user_id, write=False, otherwise=TokenRevoked()
            )
        self.audit.record(Event.LOGOUT, Outcome.SUCCESS, user_id=caller.user_id)

    async def _count_failure(self, email_hash: str, attempt: Attempt, email: str, user_id: UUID | None) -> NoReturn:
        """Settle a failed attempt (and maybe lock), keep it despite the error response, and refuse.

        Raises:
            InvalidCredentials: always.
        """
        locked = await self.lockout.record_failure(email_hash, attempt)
        # The response is an error, whose transaction is rolled back: the count must survive it.
        await self.repository.session.commit()
        self.audit.record(Event.LOGIN_FAILED, Outcome.FAILURE, user_id=user_id, email=email)
        if locked:
            self.audit.record(Event.ACCOUNT_LOCKED, Outcome.BLOCKED, user_id=user_id, email=email)
        raise InvalidCredentials

    def _refuse_locked(self, seconds: int, email: str) -> NoReturn:
        """Refuse an attempt without evaluating it.

        Raises:
            AccountLocked: always, with ``Retry-After``.
        """
        self.audit.record(Event.LOGIN_BLOCKED, Outcome.BLOCKED, email=email)
        raise AccountLocked(headers={"Retry-After": str(seconds)})

    async def _refuse_refresh(self, token_hash: str, now: datetime) -> NoReturn:
        """Say why a refresh token was refused; a reused one revokes its session first."""
        found = await self.repository.find_refused_token(token_hash)
        if found is None:
            raise InvalidToken("The refresh token is invalid")
        if not found.is_active:
            raise InvalidToken("The account is deactivated")
        if found.revoked_at is not None:
            raise TokenRevoked("The refresh token has been revoked")
        if found.used_at is not None:
            await self.repository.revoke_session(found.id, now=now)
            await self.repository.session.commit()  # kept despite the error response
            self.audit.record(Event.REFRESH_REUSED, Outcome.BLOCKED, user_id=found.user_id, detail=str(found.id))
            raise TokenRevoked("The refresh token was already used: its login session is revoked")
        raise TokenExpired("The login session has expired: log in again")

    async def _start_session(self, user: UserRead) -> TokenResponse:
        """Record a new login session and issue its first token pair."""
        now = datetime.now(UTC)
        expires_at = now + self.config.session_ttl
        session_id = await self.repository.start_session(user.id, now=now, expires_at=expires_at)
        return await self._issue(user, session_id, now=now, expires_at=expires_at)

    async def _issue(self, user: UserRead, session_id: UUID, *, now: datetime, expires_at: datetime) -> TokenResponse:
        """A new access token and a new refresh token for the session.

        ``now`` is the moment the caller measured ``expires_at`` from: a new session's refresh
        token lives its whole lifetime (1209600 s for 14 days, not a microsecond less rounded down).
        """
        refresh = new_refresh_token()
        await self.repository.add_refresh_token(session_id, refresh.token_hash, now=now)
        access = self.config.tokens.issue(user.id, session_id)
        return TokenResponse(
            access_token=access.access_token,
            expires_in=access.expires_in,
            refresh_token=refresh.token,
            refresh_expires_in=max(0, int((expires_at - now).total_seconds())),
            user=user,
        )
