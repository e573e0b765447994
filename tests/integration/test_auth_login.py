"""POST /api/v1/auth/login: credentials for a token, and nothing that tells accounts apart."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import jwt
import pytest
from sqlalchemy import select, update

from tests.factories import PASSWORD, TEST_SECRET, Account, Client, SameLoopClient, login, make_settings
from todo_service.app import create_app
from todo_service.db.models import User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


def assert_invalid_credentials(response: Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == "INVALID_CREDENTIALS"
    assert body["status_code"] == 401
    assert body["path"] == LOGIN
    assert body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


async def set_user(db_engine: AsyncEngine, user_id: str, **values: Any) -> None:
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == UUID(user_id)).values(**values))


async def stored_hash(db_engine: AsyncEngine, user_id: str) -> str:
    async with db_engine.connect() as connection:
        return str((await connection.execute(select(User.password_hash).where(User.id == UUID(user_id)))).scalar_one())


async def test_login_answers_200_with_a_token_and_the_account(client: Client, account: Account) -> None:
    response = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["user"]["id"] == account.id
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["first_name"] == "Ada"
    assert body["user"]["last_name"] == "Lovelace"
    assert datetime.fromisoformat(body["user"]["created_at"]).utcoffset() is not None
    me = await client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == account.id


@pytest.mark.parametrize("email", ["ADA@EXAMPLE.COM", "Ada@Example.com"])
async def test_login_email_is_case_insensitive(client: Client, account: Account, email: str) -> None:
    response = await client.post(LOGIN, json={"email": email, "password": PASSWORD})

    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == account.id


async def test_password_is_case_sensitive(client: Client, account: Account) -> None:
    assert_invalid_credentials(await client.post(LOGIN, json={"email": account.email, "password": PASSWORD.upper()}))


async def test_unknown_email_and_wrong_password_are_indistinguishable(client: Client, account: Account) -> None:
    unknown = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = await client.post(LOGIN, json={"email": account.email, "password": "Wrong-Password-1"})

    unknown_body = assert_invalid_credentials(unknown)
    wrong_body = assert_invalid_credentials(wrong)
    assert (unknown_body["detail"], unknown_body["error_code"], unknown_body["status_code"]) == (
        wrong_body["detail"],
        wrong_body["error_code"],
        wrong_body["status_code"],
    )
    assert set(unknown_body) == set(wrong_body)
    assert unknown.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]


async def test_repeated_unknown_email_logins_stay_401(client: Client) -> None:
    for _ in range(2):  # the second one reuses the dummy hash made by the first
        assert_invalid_credentials(await client.post(LOGIN, json={"email": "ghost@example.com", "password": PASSWORD}))


async def test_deactivated_account_with_the_right_password_is_forbidden(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await set_user(db_engine, account.id, is_active=False)

    response = await client.post(LOGIN, json={"email": account.email, "password": PASSWORD})

    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == "FORBIDDEN"
    assert response.json()["status_code"] == 403
    assert "access_token" not in response.json()


async def test_deactivated_account_with_a_wrong_password_reveals_nothing(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await set_user(db_engine, account.id, is_active=False)

    assert_invalid_credentials(await client.post(LOGIN, json={"email": account.email, "password": "Wrong-Password-1"}))


async def test_malformed_stored_hash_is_invalid_credentials_not_500(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await set_user(db_engine, account.id, password_hash="garbage-not-a-hash")

    assert_invalid_credentials(await client.post(LOGIN, json={"email": account.email, "password": PASSWORD}))


async def test_each_login_creates_a_distinct_token_and_session(client: Client, account: Account) -> None:
    tokens = [account.token, await login(client, account.email), await login(client, account.email)]

    claims = [jwt.decode(token, TEST_SECRET, algorithms=["HS256"]) for token in tokens]
    assert len(set(tokens)) == 3
    assert len({c["jti"] for c in claims}) == 3
    assert len({c["sid"] for c in claims}) == 3
    assert {c["sub"] for c in claims} == {account.id}
    for token in tokens:
        assert (await client.get(ME, headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_login_rehashes_the_password_when_argon2_parameters_change(
    client: Client, account: Account, db_engine: AsyncEngine, database_url: str
) -> None:
    old_hash = await stored_hash(db_engine, account.id)
    assert ",t=1," in old_hash

    stronger = create_app(make_settings(database_url, argon2_time_cost=2))
    async with SameLoopClient(app=stronger) as other:
        first = await other.post(LOGIN, json={"email": account.email, "password": PASSWORD})
        assert first.status_code == 200, first.text
        new_hash = await stored_hash(db_engine, account.id)
        assert new_hash != old_hash
        assert new_hash.startswith("$argon2id$")
        assert ",t=2," in new_hash

        second = await other.post(LOGIN, json={"email": account.email, "password": PASSWORD})
        assert second.status_code == 200, second.text
        assert await stored_hash(db_engine, account.id) == new_hash  # already current: left alone
        wrong = await other.post(LOGIN, json={"email": account.email, "password": "Wrong-Password-1"})
        assert_invalid_credentials(wrong)

    assert await login(client, account.email, PASSWORD)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "ada@example.com"}, id="missing-password"),
        pytest.param({"password": PASSWORD}, id="missing-email"),
        pytest.param({"email": "ada@example.com", "password": PASSWORD, "remember": True}, id="unknown-field"),
        pytest.param({"email": "not-an-email", "password": PASSWORD}, id="bad-email"),
        pytest.param({"email": "ada@example.com", "password": ""}, id="empty-password"),
        pytest.param({"email": "ada@example.com", "password": 1234}, id="password-not-a-string"),
    ],
)
async def test_invalid_login_body_is_a_validation_error(client: Client, account: Account, body: dict[str, Any]) -> None:
    response = await client.post(LOGIN, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert response.json()["errors"]
