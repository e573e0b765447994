"""POST /api/v1/auth/register: accounts, the password policy, and input validation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from tests.factories import PASSWORD, Account, Client
from todo_service.db.models import User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


def new_user(**fields: Any) -> dict[str, Any]:
    """A valid registration body, with ``fields`` replacing (or, when ``...``, removing) its values."""
    body: dict[str, Any] = {"email": "ada@example.com", "password": PASSWORD, "first_name": "Ada", "last_name": "L"}
    body.update(fields)
    return {key: value for key, value in body.items() if value is not ...}


def assert_error(response: Response, status: int, error_code: str) -> dict[str, Any]:
    """The contract's error body, with this status and code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == error_code
    assert body["status_code"] == status
    assert body["path"] == REGISTER
    assert body["detail"]
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None
    return body


async def user_count(db_engine: AsyncEngine) -> int:
    async with db_engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(User))).scalar_one())


async def stored_user(db_engine: AsyncEngine, email: str) -> Any:
    async with db_engine.connect() as connection:
        statement = select(User.email, User.password_hash, User.role, User.is_active).where(User.email == email)
        return (await connection.execute(statement)).one()


async def test_register_answers_201_with_a_bearer_token_and_the_account(client: Client) -> None:
    response = await client.post(REGISTER, json=new_user(first_name="Ada", last_name="Lovelace"))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    user = body["user"]
    UUID(user["id"])
    assert user["email"] == "ada@example.com"
    assert user["first_name"] == "Ada"
    assert user["last_name"] == "Lovelace"
    assert user["role"] == "user"
    assert user["is_active"] is True
    assert datetime.fromisoformat(user["created_at"]).utcoffset() is not None
    assert datetime.fromisoformat(user["updated_at"]).utcoffset() is not None
    assert "password" not in user
    assert "password_hash" not in user


async def test_the_registration_token_authenticates_the_new_account(client: Client) -> None:
    body = (await client.post(REGISTER, json=new_user())).json()

    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})

    assert me.status_code == 200, me.text
    assert me.json()["id"] == body["user"]["id"]
    assert me.json()["email"] == "ada@example.com"


async def test_email_is_stored_lower_cased(client: Client, db_engine: AsyncEngine) -> None:
    response = await client.post(REGISTER, json=new_user(email="Ada.Lovelace@Example.COM"))

    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == "ada.lovelace@example.com"
    assert (await stored_user(db_engine, "ada.lovelace@example.com")).email == "ada.lovelace@example.com"


@pytest.mark.parametrize("second_email", ["ada@example.com", "ADA@example.com", "Ada@Example.Com"])
async def test_email_is_unique_whatever_its_case(client: Client, db_engine: AsyncEngine, second_email: str) -> None:
    assert (await client.post(REGISTER, json=new_user(email="ada@example.com"))).status_code == 201

    response = await client.post(REGISTER, json=new_user(email=second_email, first_name="Other"))

    assert_error(response, 409, "EMAIL_ALREADY_REGISTERED")
    assert await user_count(db_engine) == 1


@pytest.mark.parametrize(
    ("password", "broken_rule"),
    [
        pytest.param("Sh0rt-p", "be at least 8 characters long", id="too-short"),
        pytest.param("no-upper-case-42", "contain an upper-case letter", id="no-upper"),
        pytest.param("NO-LOWER-CASE-42", "contain a lower-case letter", id="no-lower"),
        pytest.param("No-Digits-Here!", "contain a digit", id="no-digit"),
        pytest.param("Xada@example.com9", "not contain the email address or its name part", id="email"),
        pytest.param("My-ADA-Secret-9", "not contain the email address or its name part", id="local-part"),
    ],
)
async def test_weak_password_is_refused_and_creates_nothing(
    client: Client, db_engine: AsyncEngine, password: str, broken_rule: str
) -> None:
    response = await client.post(REGISTER, json=new_user(email="ada@example.com", password=password))

    body = assert_error(response, 422, "WEAK_PASSWORD")
    assert broken_rule in body["detail"]
    assert await user_count(db_engine) == 0
    login = await client.post(LOGIN, json={"email": "ada@example.com", "password": password})
    assert login.status_code == 401
    assert (await client.post(REGISTER, json=new_user(email="ada@example.com"))).status_code == 201


async def test_weak_password_detail_lists_every_broken_rule(client: Client) -> None:
    response = await client.post(REGISTER, json=new_user(email="ada@example.com", password="ada"))

    detail = assert_error(response, 422, "WEAK_PASSWORD")["detail"]
    for rule in ("at least 8 characters", "upper-case", "digit", "email address"):
        assert rule in detail
    assert "lower-case" not in detail


async def test_password_is_stored_as_an_argon2id_hash_that_no_response_reveals(
    client: Client, db_engine: AsyncEngine
) -> None:
    registered = await client.post(REGISTER, json=new_user(email="ada@example.com"))
    token = registered.json()["access_token"]
    logged_in = await client.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD})
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})

    row = await stored_user(db_engine, "ada@example.com")
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    for response in (registered, logged_in, me):
        assert response.status_code in {200, 201}, response.text
        assert row.password_hash not in response.text
        assert PASSWORD not in response.text
        assert "password" not in response.text


async def test_new_accounts_are_active_users(client: Client, db_engine: AsyncEngine) -> None:
    assert (await client.post(REGISTER, json=new_user(email="ada@example.com"))).status_code == 201

    row = await stored_user(db_engine, "ada@example.com")
    assert row.role == "user"
    assert row.is_active is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(new_user(email=...), "email", id="missing-email"),
        pytest.param(new_user(password=...), "password", id="missing-password"),
        pytest.param(new_user(first_name=...), "first_name", id="missing-first-name"),
        pytest.param(new_user(last_name=...), "last_name", id="missing-last-name"),
        pytest.param({}, "email", id="empty-object"),
        pytest.param(new_user(role="admin"), "role", id="unknown-field"),
        pytest.param(new_user(email=42), "email", id="email-not-a-string"),
        pytest.param(new_user(password=12345678), "password", id="password-not-a-string"),
        pytest.param(new_user(first_name=["Ada"]), "first_name", id="first-name-a-list"),
        pytest.param(new_user(last_name=None), "last_name", id="last-name-null"),
        pytest.param(new_user(first_name="A" * 101), "first_name", id="first-name-too-long"),
        pytest.param(new_user(last_name="L" * 101), "last_name", id="last-name-too-long"),
        pytest.param(new_user(email="a" * 244 + "@example.com"), "email", id="email-too-long"),
        pytest.param(new_user(password="Aa1" + "x" * 126), "password", id="password-too-long"),
        pytest.param(new_user(password=""), "password", id="password-empty"),
        pytest.param(new_user(email="not-an-email"), "email", id="email-without-at"),
        pytest.param(new_user(email="ada@localhost"), "email", id="email-without-dot"),
        pytest.param(new_user(email="ada lovelace@example.com"), "email", id="email-with-space"),
        pytest.param(new_user(email="ada@@example.com"), "email", id="email-two-ats"),
        pytest.param(new_user(first_name=""), "first_name", id="first-name-empty"),
        pytest.param(new_user(first_name="   "), "first_name", id="first-name-blank"),
        pytest.param(new_user(last_name="\t\n"), "last_name", id="last-name-blank"),
        pytest.param(new_user(first_name="Ada\x00"), "first_name", id="first-name-nul"),
        pytest.param(new_user(email="ada\x00@example.com"), "email", id="email-nul"),
    ],
)
async def test_invalid_registration_is_a_validation_error(
    client: Client, db_engine: AsyncEngine, body: dict[str, Any], field: str
) -> None:
    response = await client.post(REGISTER, json=body)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert isinstance(error["errors"], list)
    assert error["errors"]
    assert error["errors"][0]["field"] == field
    assert error["errors"][0]["message"]
    assert await user_count(db_engine) == 0


@pytest.mark.parametrize("body", [[new_user()], "ada@example.com", 42], ids=["array", "string", "number"])
async def test_a_body_that_is_not_an_object_is_a_validation_error(client: Client, body: object) -> None:
    response = await client.post(REGISTER, json=body)

    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["errors"][0]["field"] == "body"


async def test_register_needs_no_token_and_ignores_a_bad_one(client: Client, account: Account) -> None:
    response = await client.post(
        REGISTER, json=new_user(email="grace@example.com"), headers={"Authorization": "Bearer not-a-token"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["user"]["id"] != account.id
