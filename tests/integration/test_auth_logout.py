"""POST /api/v1/auth/logout: the token's login session is revoked, and stays revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import jwt
import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.factories import TEST_SECRET, Account, Client, create_task, login
from todo_service.audit.log import AuditLog
from todo_service.auth.services import AuthService
from todo_service.core.errors import TokenRevoked
from todo_service.core.request_context import ClientAddress
from todo_service.db.models import AuthSession, User
from todo_service.security.access import Caller
from todo_service.security.config import AuthConfig
from todo_service.security.lockout import LockoutPolicy
from todo_service.security.passwords import Passwords
from todo_service.security.sessions import prune_expired_sessions
from todo_service.security.tokens import TokenIssuer, build_jwt_auth

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_id(token: str) -> UUID:
    return UUID(jwt.decode(token, TEST_SECRET, algorithms=["HS256"])["sid"])


def assert_401(response: Response, error_code: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == error_code
    assert body["status_code"] == 401
    assert body["path"] == response.request.url.path
    assert body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def session_rows(db_engine: AsyncEngine) -> dict[UUID, Any]:
    async with db_engine.connect() as connection:
        rows = (await connection.execute(select(AuthSession.id, AuthSession.revoked_at))).all()
    return {row.id: row.revoked_at for row in rows}


async def test_logout_confirms_and_the_token_is_refused_afterwards(client: Client, account: Account) -> None:
    task = await create_task(client, account)

    response = await client.post(LOGOUT, headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Successfully logged out"}
    assert_401(await client.get(ME, headers=account.headers), "TOKEN_REVOKED")
    assert_401(await client.put(ME, json={"first_name": "X"}, headers=account.headers), "TOKEN_REVOKED")
    assert_401(await client.get(account.tasks_url, headers=account.headers), "TOKEN_REVOKED")
    assert_401(await client.post(account.tasks_url, json={"title": "x"}, headers=account.headers), "TOKEN_REVOKED")
    task_url = f"{account.tasks_url}/{task['id']}"
    assert_401(await client.get(task_url, headers=account.headers), "TOKEN_REVOKED")
    assert_401(await client.delete(task_url, headers=account.headers), "TOKEN_REVOKED")


async def test_revoked_token_challenge_names_the_invalid_token(client: Client, account: Account) -> None:
    assert (await client.post(LOGOUT, headers=account.headers)).status_code == 200

    response = await client.get(ME, headers=account.headers)

    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_logging_out_twice_is_token_revoked(client: Client, account: Account) -> None:
    assert (await client.post(LOGOUT, headers=account.headers)).status_code == 200

    assert_401(await client.post(LOGOUT, headers=account.headers), "TOKEN_REVOKED")


async def test_logout_needs_a_token(client: Client) -> None:
    assert_401(await client.post(LOGOUT), "NOT_AUTHENTICATED")


async def test_logout_with_a_bad_token_is_invalid_token(client: Client) -> None:
    assert_401(await client.post(LOGOUT, headers=bearer("not.a.token")), "INVALID_TOKEN")


async def test_other_sessions_of_the_same_user_keep_working(client: Client, account: Account) -> None:
    second = await login(client, account.email)

    assert (await client.post(LOGOUT, headers=account.headers)).status_code == 200

    me = await client.get(ME, headers=bearer(second))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == account.id
    assert (await client.get(account.tasks_url, headers=bearer(second))).status_code == 200
    assert (await client.post(LOGOUT, headers=bearer(second))).status_code == 200
    assert_401(await client.get(ME, headers=bearer(second)), "TOKEN_REVOKED")


async def test_other_users_are_not_logged_out(client: Client, account: Account, other_account: Account) -> None:
    assert (await client.post(LOGOUT, headers=account.headers)).status_code == 200

    assert (await client.get(ME, headers=other_account.headers)).status_code == 200


async def test_revocation_is_stored_on_the_session_row(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    second = await login(client, account.email)
    before = datetime.now(UTC) - timedelta(seconds=1)

    assert (await client.post(LOGOUT, headers=account.headers)).status_code == 200

    sessions = await session_rows(db_engine)
    revoked_at = sessions[session_id(account.token)]
    assert revoked_at is not None
    assert before <= revoked_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert sessions[session_id(second)] is None


async def test_a_deactivated_user_cannot_log_out(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == UUID(account.id)).values(is_active=False))

    assert_401(await client.post(LOGOUT, headers=account.headers), "INVALID_TOKEN")
    assert (await session_rows(db_engine))[session_id(account.token)] is None


async def test_a_token_whose_session_row_is_gone_is_revoked(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as connection:
        await connection.execute(delete(AuthSession).where(AuthSession.id == session_id(account.token)))

    assert_401(await client.get(ME, headers=account.headers), "TOKEN_REVOKED")
    assert_401(await client.post(LOGOUT, headers=account.headers), "TOKEN_REVOKED")


async def test_prune_expired_sessions_deletes_only_expired_ones(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    live = await login(client, account.email)
    expired_sid = session_id(account.token)
    async with db_engine.begin() as connection:
        past = datetime.now(UTC) - timedelta(minutes=1)
        await connection.execute(update(AuthSession).where(AuthSession.id == expired_sid).values(expires_at=past))

    async with AsyncSession(db_engine) as db, db.begin():
        assert await prune_expired_sessions(db) == 1

    assert set(await session_rows(db_engine)) == {session_id(live)}
    assert (await client.get(ME, headers=bearer(live))).status_code == 200
    assert_401(await client.get(ME, headers=account.headers), "TOKEN_REVOKED")


async def test_prune_expired_sessions_uses_the_given_time(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await login(client, account.email)

    async with AsyncSession(db_engine) as db, db.begin():
        assert await prune_expired_sessions(db, now=datetime.now(UTC)) == 0
    assert len(await session_rows(db_engine)) == 2

    async with AsyncSession(db_engine) as db, db.begin():
        assert await prune_expired_sessions(db, now=datetime.now(UTC) + timedelta(days=15)) == 2
    assert await session_rows(db_engine) == {}


async def test_logout_racing_a_reactivation_still_refuses(client: Client, account: Account, database_url: str) -> None:
    """The session was refused by the revoking UPDATE, then found live: the logout still answers 401."""
    engine = create_async_engine(database_url)

    def reactivate_after_revoke_attempt(connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE AUTH_SESSIONS"):
            connection.execute(update(User).where(User.id == UUID(account.id)).values(is_active=True))

    event.listen(engine.sync_engine, "after_cursor_execute", reactivate_after_revoke_attempt)
    caller = Caller(user_id=UUID(account.id), session_id=session_id(account.token))
    passwords = Passwords(time_cost=1, memory_cost=8, parallelism=1)
    service_tokens = TokenIssuer(build_jwt_auth(TEST_SECRET, timedelta(minutes=30)))
    try:
        async with AsyncSession(engine) as db, db.begin():
            await db.execute(update(User).where(User.id == caller.user_id).values(is_active=False))
            config = AuthConfig(
                passwords=passwords,
                tokens=service_tokens,
                lockout=LockoutPolicy(threshold=5, window=timedelta(minutes=15), duration=timedelta(minutes=15)),
                session_ttl=timedelta(days=14),
            )
            audit = AuditLog(engine, TEST_SECRET).trail({"type": "http", "state": {}}, ClientAddress(()))  # type: ignore[arg-type]
            service = AuthService(db, config=config, audit=audit)
            with pytest.raises(TokenRevoked):
                await service.logout(caller)
    finally:
        passwords.close()
        await engine.dispose()
