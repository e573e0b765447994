"""PUT /users/me/password and email changes: the caller's session stays, every other one is logged out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update

from tests.factories import PASSWORD, Client
from todo_service.db.models import Role, User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

ME = "/api/v1/users/me"
PASSWORD_URL = "/api/v1/users/me/password"
NEW_PASSWORD = "Brand-New-Secret-77"


@dataclass(frozen=True)
class Login:
    """One login session of an account: its email, user id and token pair."""

    email: str
    user_id: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def as_login(body: dict[str, Any]) -> Login:
    user = body["user"]
    return Login(user["email"], user["id"], body["access_token"], body["refresh_token"])


async def register(client: Client, email: str = "ada@example.com") -> Login:
    body = {"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return as_login(response.json())


async def login(client: Client, email: str, password: str = PASSWORD) -> Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def second_login(client: Client, email: str) -> Login:
    response = await login(client, email)
    assert response.status_code == 200, response.text
    return as_login(response.json())


async def change_password(client: Client, who: Login, current: str = PASSWORD, new: str = NEW_PASSWORD) -> Response:
    return await client.put(PASSWORD_URL, json={"current_password": current, "new_password": new}, headers=who.headers)


async def refresh(client: Client, token: str) -> Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def assert_error(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert response.json()["status_code"] == status


async def password_hash(db_engine: AsyncEngine, user_id: str) -> str:
    async with db_engine.connect() as connection:
        return str((await connection.execute(select(User.password_hash).where(User.id == uuid.UUID(user_id)))).scalar())


async def assert_alive(client: Client, who: Login) -> None:
    response = await client.get(ME, headers=who.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == who.user_id


async def test_password_change_swaps_the_password(client: Client) -> None:
    ada = await register(client)

    response = await change_password(client, ada)

    assert response.status_code == 200, response.text
    assert set(response.json()) == {"message"}
    assert response.json()["message"]
    assert (await login(client, ada.email, NEW_PASSWORD)).status_code == 200
    assert_error(await login(client, ada.email, PASSWORD), 401, "INVALID_CREDENTIALS")


async def test_wrong_current_password_is_forbidden_and_changes_nothing(client: Client, db_engine: AsyncEngine) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)
    before = await password_hash(db_engine, ada.user_id)

    assert_error(await change_password(client, ada, current="Not-The-Password-1"), 403, "FORBIDDEN")

    assert await password_hash(db_engine, ada.user_id) == before
    assert (await login(client, ada.email, PASSWORD)).status_code == 200
    assert_error(await login(client, ada.email, NEW_PASSWORD), 401, "INVALID_CREDENTIALS")
    await assert_alive(client, other)


@pytest.mark.parametrize("weak", ["Short1a", "alllowercase123", "ALLUPPERCASE123", "NoDigitsAtAll", "Ada-Example-12"])
async def test_weak_new_password_is_refused(client: Client, db_engine: AsyncEngine, weak: str) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)
    before = await password_hash(db_engine, ada.user_id)

    assert_error(await change_password(client, ada, new=weak), 422, "WEAK_PASSWORD")

    assert await password_hash(db_engine, ada.user_id) == before
    await assert_alive(client, other)


async def test_password_change_logs_out_every_other_session(client: Client) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)
    bystander = await register(client, "grace@example.com")

    assert (await change_password(client, ada)).status_code == 200

    await assert_alive(client, ada)
    assert_error(await client.get(ME, headers=other.headers), 401, "TOKEN_REVOKED")
    assert_error(await refresh(client, other.refresh), 401, "TOKEN_REVOKED")
    assert (await refresh(client, ada.refresh)).status_code == 200
    await assert_alive(client, bystander)


async def test_guest_cannot_change_the_password(client: Client, db_engine: AsyncEngine) -> None:
    ada = await register(client)
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == uuid.UUID(ada.user_id)).values(role=Role.GUEST))

    assert_error(await change_password(client, ada), 403, "FORBIDDEN")

    assert (await login(client, ada.email, PASSWORD)).status_code == 200


async def test_password_change_needs_a_token(client: Client) -> None:
    response = await client.put(PASSWORD_URL, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert_error(response, 401, "NOT_AUTHENTICATED")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": True},
        {"current_password": PASSWORD, "new_password": 12345678},
    ],
)
async def test_malformed_password_change_is_422(client: Client, body: dict[str, Any]) -> None:
    ada = await register(client)

    assert_error(await client.put(PASSWORD_URL, json=body, headers=ada.headers), 422, "VALIDATION_ERROR")

    assert (await login(client, ada.email, PASSWORD)).status_code == 200


async def test_new_email_logs_out_the_other_sessions(client: Client) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)

    response = await client.put(ME, json={"email": "Ada.New@Example.com"}, headers=ada.headers)

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "ada.new@example.com"
    await assert_alive(client, ada)
    assert_error(await client.get(ME, headers=other.headers), 401, "TOKEN_REVOKED")
    assert_error(await refresh(client, other.refresh), 401, "TOKEN_REVOKED")
    assert (await refresh(client, ada.refresh)).status_code == 200
    assert (await login(client, "ada.new@example.com")).status_code == 200


@pytest.mark.parametrize("same", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.Com"])
async def test_same_email_in_any_case_logs_out_nobody(client: Client, same: str) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)

    response = await client.put(ME, json={"email": same, "first_name": "Augusta"}, headers=ada.headers)

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "ada@example.com"
    assert response.json()["first_name"] == "Augusta"
    await assert_alive(client, other)
    assert (await refresh(client, other.refresh)).status_code == 200


async def test_name_change_logs_out_nobody(client: Client) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)

    assert (await client.put(ME, json={"last_name": "Byron"}, headers=ada.headers)).status_code == 200

    await assert_alive(client, other)


async def test_taking_a_used_email_is_409_and_logs_out_nobody(client: Client) -> None:
    ada = await register(client)
    other = await second_login(client, ada.email)
    await register(client, "grace@example.com")

    assert_error(
        await client.put(ME, json={"email": "grace@example.com"}, headers=ada.headers), 409, "EMAIL_ALREADY_REGISTERED"
    )

    await assert_alive(client, other)
    assert (await login(client, ada.email)).status_code == 200
