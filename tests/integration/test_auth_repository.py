"""AuthRepository: login sessions and refresh tokens; logout is guarded by the caller's own session."""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from todo_service.auth.repository import AuthRepository
from todo_service.db.models import AuthSession, User
from todo_service.security.access import Caller
from todo_service.security.sessions import new_refresh_token

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client

METHODS = (
    "start_session",
    "add_refresh_token",
    "exchange_refresh_token",
    "session_user",
    "find_refused_token",
    "revoke_session",
    "log_out",
)
NO_GRACE = timedelta(0)


def test_every_statement_is_a_named_method_and_logout_takes_the_caller_first() -> None:
    own = [name for name, member in vars(AuthRepository).items() if inspect.iscoroutinefunction(member)]
    assert sorted(own) == sorted(METHODS)
    assert list(inspect.signature(AuthRepository.log_out).parameters)[1] == "caller"
    assert issubclass(AuthRepository, SQLAlchemyAsyncRepository)
    assert AuthRepository.model_type is AuthSession


async def test_a_refresh_token_is_exchanged_once_then_refused(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    user_id, now = uuid.UUID(account.id), datetime.now(UTC)
    refresh = new_refresh_token()
    async with AsyncSession(db_engine) as db, db.begin():
        repo = AuthRepository(session=db)
        session_id = await repo.start_session(user_id, now=now, expires_at=now + timedelta(days=1))
        await repo.add_refresh_token(session_id, refresh.token_hash, now=now)
        assert await repo.exchange_refresh_token(refresh.token_hash, now=now, grace=NO_GRACE) == session_id
        # Used: refused without a grace, exchanged again within one.
        assert await repo.exchange_refresh_token(refresh.token_hash, now=now, grace=NO_GRACE) is None
        later = now + timedelta(seconds=1)
        assert (
            await repo.exchange_refresh_token(refresh.token_hash, now=later, grace=timedelta(minutes=1)) == session_id
        )
        found = await repo.find_refused_token(refresh.token_hash)
        assert found is not None
        assert (found.id, found.user_id, found.used_at is not None, found.revoked_at) == (
            session_id,
            user_id,
            True,
            None,
        )
        user_row = await repo.session_user(session_id)
        assert (user_row.id, user_row.email) == (user_id, account.email)
        await repo.revoke_session(session_id, now=later)
        await repo.revoke_session(session_id, now=later + timedelta(hours=1))  # the first revocation stays
        found = await repo.find_refused_token(refresh.token_hash)
        assert found is not None
        assert found.revoked_at is not None
        assert abs(found.revoked_at.replace(tzinfo=UTC) - later) < timedelta(seconds=1)
        assert await repo.exchange_refresh_token(refresh.token_hash, now=later, grace=timedelta(minutes=1)) is None
        assert await repo.find_refused_token(new_refresh_token().token_hash) is None


async def test_an_expired_session_or_deactivated_account_exchanges_nothing(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    user_id, now = uuid.UUID(account.id), datetime.now(UTC)
    expired, live = new_refresh_token(), new_refresh_token()
    async with AsyncSession(db_engine) as db, db.begin():
        repo = AuthRepository(session=db)
        old = await repo.start_session(user_id, now=now - timedelta(days=2), expires_at=now - timedelta(days=1))
        await repo.add_refresh_token(old, expired.token_hash, now=now - timedelta(days=2))
        assert await repo.exchange_refresh_token(expired.token_hash, now=now, grace=NO_GRACE) is None
        current = await repo.start_session(user_id, now=now, expires_at=now + timedelta(days=1))
        await repo.add_refresh_token(current, live.token_hash, now=now)
        user = await repo.session.get_one(User, user_id)
        user.is_active = False
        await repo.session.flush()
        assert await repo.exchange_refresh_token(live.token_hash, now=now, grace=NO_GRACE) is None
        found = await repo.find_refused_token(live.token_hash)
        assert found is not None
        assert (found.is_active, found.used_at) == (False, None)


async def test_logout_revokes_the_callers_own_session_only(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    user_id = uuid.UUID(account.id)
    async with db_engine.connect() as connection:
        session_id = (
            await connection.execute(select(AuthSession.id).where(AuthSession.user_id == user_id))
        ).scalar_one()
    me = Caller(user_id=user_id, session_id=session_id)
    async with AsyncSession(db_engine) as db, db.begin():
        repo = AuthRepository(session=db)
        # Someone else naming my session, and my id with a session that is not there, revoke nothing.
        assert await repo.log_out(Caller(user_id=uuid.uuid4(), session_id=session_id)) is False
        assert await repo.log_out(Caller(user_id=user_id, session_id=uuid.uuid4())) is False
        assert (await repo.session.get_one(AuthSession, session_id)).revoked_at is None
        assert await repo.log_out(me) is True
        assert await repo.log_out(me) is False  # already revoked
