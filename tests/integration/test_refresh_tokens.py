"""POST /api/v1/auth/refresh: rotating refresh tokens, reuse detection, and how they die."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from sqlalchemy import select, update

from tests.factories import PASSWORD, TEST_SECRET, Client, SameLoopClient, make_settings
from todo_service.app import create_app
from todo_service.db.models import AuthSession, RefreshToken, User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/users/me"
FOURTEEN_DAYS = 14 * 24 * 3600
GRACE = 10  # Settings.refresh_reuse_grace_seconds


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, TEST_SECRET, algorithms=["HS256"]))


async def register(client: Client) -> dict[str, Any]:
    body = {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD, "first_name": "A", "last_name": "B"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def refresh(client: Client, token: str) -> Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def refreshed(client: Client, token: str) -> dict[str, Any]:
    response = await refresh(client, token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_401(response: Response, error_code: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == error_code
    assert body["status_code"] == 401
    assert body["detail"]
    assert "access_token" not in body
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_register_and_login_return_a_refresh_token(client: Client) -> None:
    registered = await register(client)
    login = await client.post("/api/v1/auth/login", json={"email": registered["user"]["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text

    for body in (registered, login.json()):
        assert isinstance(body["refresh_token"], str)
        assert len(body["refresh_token"]) >= 32
        assert body["refresh_token"] != body["access_token"]
        assert body["refresh_expires_in"] == FOURTEEN_DAYS  # a new session: its whole lifetime, exactly
        assert body["token_type"] == "bearer"
    assert registered["refresh_token"] != login.json()["refresh_token"]


async def test_refresh_rotates_both_tokens_in_the_same_session(client: Client) -> None:
    first = await register(client)

    second = await refreshed(client, first["refresh_token"])

    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["token_type"] == "bearer"
    assert second["expires_in"] == first["expires_in"] == 1800
    assert FOURTEEN_DAYS - 5 <= second["refresh_expires_in"] <= first["refresh_expires_in"]
    assert second["user"] == first["user"]
    assert claims(second["access_token"])["sid"] == claims(first["access_token"])["sid"]
    assert claims(second["access_token"])["sub"] == first["user"]["id"]
    me = await client.get(ME, headers=bearer(second["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == first["user"]["id"]
    # Each new refresh token works once in turn.
    third = await refreshed(client, second["refresh_token"])
    assert claims(third["access_token"])["sid"] == claims(first["access_token"])["sid"]


async def test_reusing_a_refresh_token_revokes_the_whole_session(client: Client, db_engine: AsyncEngine) -> None:
    first = await register(client)
    other_login = await client.post("/api/v1/auth/login", json={"email": first["user"]["email"], "password": PASSWORD})
    second = await refreshed(client, first["refresh_token"])
    await used_long_ago(db_engine, first["refresh_token"])  # beyond the reuse grace

    reused = await refresh(client, first["refresh_token"])

    assert_401(reused, "TOKEN_REVOKED")
    assert reused.json()["detail"] == "The refresh token was already used: its login session is revoked"

    assert_401(await client.get(ME, headers=bearer(first["access_token"])), "TOKEN_REVOKED")
    assert_401(await client.get(ME, headers=bearer(second["access_token"])), "TOKEN_REVOKED")
    assert_401(await refresh(client, second["refresh_token"]), "TOKEN_REVOKED")
    sid = uuid.UUID(claims(first["access_token"])["sid"])
    async with db_engine.connect() as connection:
        revoked_at = (await connection.execute(select(AuthSession.revoked_at).where(AuthSession.id == sid))).scalar()
    assert revoked_at is not None
    # Another login of the same account is not touched.
    assert (await client.get(ME, headers=bearer(other_login.json()["access_token"]))).status_code == 200


async def used_long_ago(db_engine: AsyncEngine, token: str, seconds: int = GRACE + 1) -> None:
    """Move a used refresh token's first use back by ``seconds``."""
    async with db_engine.begin() as connection:
        result = await connection.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
            .values(used_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )
        assert result.rowcount == 1


async def assert_works(client: Client, pair: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The pair's access token reads the account, and its refresh token is exchanged once more."""
    me = await client.get(ME, headers=bearer(pair["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user_id
    return await refreshed(client, pair["refresh_token"])


async def revoked_at(db_engine: AsyncEngine, access_token: str) -> datetime | None:
    sid = uuid.UUID(claims(access_token)["sid"])
    async with db_engine.connect() as connection:
        return (await connection.execute(select(AuthSession.revoked_at).where(AuthSession.id == sid))).scalar_one()


async def test_two_tabs_refreshing_at_once_both_get_a_working_pair(client: Client, db_engine: AsyncEngine) -> None:
    first = await register(client)

    responses = await asyncio.gather(*(refresh(client, first["refresh_token"]) for _ in range(2)))

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    pairs = [r.json() for r in responses]
    assert pairs[0]["refresh_token"] != pairs[1]["refresh_token"]
    assert pairs[0]["access_token"] != pairs[1]["access_token"]
    sid = claims(first["access_token"])["sid"]
    assert {claims(pair["access_token"])["sid"] for pair in pairs} == {sid}
    for pair in pairs:
        assert FOURTEEN_DAYS - 5 <= pair["refresh_expires_in"] <= FOURTEEN_DAYS
        await assert_works(client, pair, first["user"]["id"])
    assert await revoked_at(db_engine, first["access_token"]) is None
    me = await client.get(ME, headers=bearer(first["access_token"]))  # the first access token too
    assert me.status_code == 200, me.text


async def test_a_reuse_within_the_grace_gets_a_pair_and_revokes_nothing(client: Client, db_engine: AsyncEngine) -> None:
    first = await register(client)
    second = await refreshed(client, first["refresh_token"])
    await used_long_ago(db_engine, first["refresh_token"], seconds=GRACE - 3)  # still inside

    again = await refreshed(client, first["refresh_token"])

    assert claims(again["access_token"])["sid"] == claims(first["access_token"])["sid"]
    assert again["refresh_token"] != second["refresh_token"]
    await assert_works(client, second, first["user"]["id"])
    await assert_works(client, again, first["user"]["id"])
    assert await revoked_at(db_engine, first["access_token"]) is None


async def test_a_reuse_after_the_grace_revokes_every_pair_of_the_session(
    client: Client, db_engine: AsyncEngine
) -> None:
    first = await register(client)
    pairs = await asyncio.gather(*(refreshed(client, first["refresh_token"]) for _ in range(2)))
    await used_long_ago(db_engine, first["refresh_token"])

    assert_401(await refresh(client, first["refresh_token"]), "TOKEN_REVOKED")

    for pair in pairs:
        assert_401(await client.get(ME, headers=bearer(pair["access_token"])), "TOKEN_REVOKED")
        assert_401(await refresh(client, pair["refresh_token"]), "TOKEN_REVOKED")
    assert await revoked_at(db_engine, first["access_token"]) is not None


async def test_with_no_grace_any_reuse_revokes_the_session(database_url: str) -> None:
    app = create_app(make_settings(database_url, refresh_reuse_grace_seconds=0))
    async with SameLoopClient(app=app) as client:
        first = await register(client)
        second = await refreshed(client, first["refresh_token"])

        assert_401(await refresh(client, first["refresh_token"]), "TOKEN_REVOKED")

        assert_401(await client.get(ME, headers=bearer(second["access_token"])), "TOKEN_REVOKED")


@pytest.mark.parametrize("token", ["garbage", "x" * 256, secrets.token_urlsafe(32), "eyJhbGciOiJIUzI1NiJ9.e30.sig"])
async def test_an_unknown_refresh_token_is_invalid(client: Client, token: str) -> None:
    await register(client)

    assert_401(await refresh(client, token), "INVALID_TOKEN")


async def test_an_access_token_is_not_a_refresh_token(client: Client) -> None:
    first = await register(client)

    response = await refresh(client, first["access_token"])

    assert response.status_code in {401, 422}, response.text  # 422: longer than a refresh token may be
    assert "access_token" not in response.json()


async def test_logout_kills_the_refresh_token(client: Client) -> None:
    first = await register(client)
    assert (await client.post("/api/v1/auth/logout", headers=bearer(first["access_token"]))).status_code == 200

    response = await refresh(client, first["refresh_token"])

    assert_401(response, "TOKEN_REVOKED")
    assert response.json()["detail"] == "The refresh token has been revoked"


async def test_a_deactivated_users_refresh_token_is_invalid(client: Client, db_engine: AsyncEngine) -> None:
    first = await register(client)
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == uuid.UUID(first["user"]["id"])).values(is_active=False))

    assert_401(await refresh(client, first["refresh_token"]), "INVALID_TOKEN")


async def test_an_expired_session_refuses_its_refresh_token(client: Client, db_engine: AsyncEngine) -> None:
    first = await register(client)
    sid = uuid.UUID(claims(first["access_token"])["sid"])
    async with db_engine.begin() as connection:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await connection.execute(update(AuthSession).where(AuthSession.id == sid).values(expires_at=past))

    assert_401(await refresh(client, first["refresh_token"]), "TOKEN_EXPIRED")


async def test_refresh_tokens_are_stored_only_as_sha256(client: Client, db_engine: AsyncEngine) -> None:
    first = await register(client)
    second = await refreshed(client, first["refresh_token"])
    issued = [first["refresh_token"], second["refresh_token"]]

    async with db_engine.connect() as connection:
        rows = (await connection.execute(select(RefreshToken))).all()

    assert {row.token_hash for row in rows} == {hashlib.sha256(t.encode()).hexdigest() for t in issued}
    for row in rows:
        for value in row:
            assert not any(token in str(value) for token in issued)
    used = {row.token_hash: row.used_at for row in rows}
    assert used[hashlib.sha256(issued[0].encode()).hexdigest()] is not None
    assert used[hashlib.sha256(issued[1].encode()).hexdigest()] is None


@pytest.mark.parametrize(
    "body",
    [{}, {"refresh_token": ""}, {"refresh_token": "x", "extra": 1}, {"refresh_token": 5}, {"refresh_token": None}],
)
async def test_invalid_bodies_are_422(client: Client, body: dict[str, Any]) -> None:
    first = await register(client)

    response = await client.post(REFRESH, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert response.json()["path"] == REFRESH
    await refreshed(client, first["refresh_token"])  # the real token was not spent


async def test_refresh_needs_no_authorization_header(client: Client) -> None:
    first = await register(client)
    assert "authorization" not in client.headers

    response = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]}, headers={})

    assert response.status_code == 200, response.text


async def test_the_refresh_route_is_documented_as_public(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    operation = schema["paths"][REFRESH]["post"]

    assert operation["security"] == [{}]
    assert {"200", "401", "422"} <= set(operation["responses"])
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert body_schema["required"] == ["refresh_token"]
