"""``/api/v1/users/me``: the caller reads and changes their own account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import PASSWORD, Account, Client, login
from tests.integration.test_errors import ISO_8601, assert_error

if TYPE_CHECKING:
    from collections.abc import Callable

ME = "/api/v1/users/me"
REQUIRED = {"id", "email", "first_name", "last_name", "created_at", "updated_at"}


async def get_me(client: Client, account: Account) -> dict[str, Any]:
    response = await client.get(ME, headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_get_me_returns_the_account(client: Client, account: Account) -> None:
    me = await get_me(client, account)
    assert set(me) >= REQUIRED
    assert me["id"] == account.id
    assert me["email"] == "ada@example.com"
    assert (me["first_name"], me["last_name"]) == ("Ada", "Lovelace")
    for key in ("created_at", "updated_at"):
        assert ISO_8601.match(me[key]), me[key]
        stamped = datetime.fromisoformat(me[key])
        assert stamped.tzinfo is not None
        assert abs(datetime.now(UTC) - stamped) < timedelta(minutes=1)


async def test_get_me_never_shows_the_password(client: Client, account: Account) -> None:
    response = await client.get(ME, headers=account.headers)
    assert not [key for key in response.json() if "password" in key]
    assert "argon2" not in response.text
    assert PASSWORD not in response.text


async def test_each_caller_sees_their_own_account(client: Client, account: Account, other_account: Account) -> None:
    assert (await get_me(client, account))["email"] == account.email
    assert (await get_me(client, other_account))["email"] == other_account.email


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_me_without_a_token_is_401(client: Client, method: str) -> None:
    response = await client.request(method, ME, json={"first_name": "X"} if method == "PUT" else None)
    assert_error(response, 401, "NOT_AUTHENTICATED", ME)


async def test_me_with_a_garbage_token_is_401(client: Client) -> None:
    response = await client.get(ME, headers={"Authorization": "Bearer not.a.token"})
    assert_error(response, 401, "INVALID_TOKEN", ME)


async def test_put_changes_only_the_fields_sent(client: Client, account: Account) -> None:
    before = await get_me(client, account)
    response = await client.put(ME, json={"first_name": "Augusta"}, headers=account.headers)
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["first_name"] == "Augusta"
    assert after["last_name"] == before["last_name"]
    assert after["email"] == before["email"]
    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    assert await get_me(client, account) == after


async def test_put_both_names(client: Client, account: Account) -> None:
    response = await client.put(ME, json={"first_name": "Grace", "last_name": "Brewster"}, headers=account.headers)
    assert response.status_code == 200, response.text
    me = await get_me(client, account)
    assert (me["first_name"], me["last_name"], me["email"]) == ("Grace", "Brewster", account.email)


async def test_put_empty_body_changes_nothing(client: Client, account: Account) -> None:
    before = await get_me(client, account)
    response = await client.put(ME, json={}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json() == before
    assert await get_me(client, account) == before


async def test_new_email_is_lower_cased_and_used_for_login(client: Client, account: Account) -> None:
    response = await client.put(ME, json={"email": "Countess@Example.COM"}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "countess@example.com"
    assert (await get_me(client, account))["email"] == "countess@example.com"

    token = await login(client, "countess@example.com", account.password)
    me = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == account.id
    assert await login(client, "COUNTESS@example.com", account.password)

    old = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    assert_error(old, 401, "INVALID_CREDENTIALS", "/api/v1/auth/login")


async def test_changing_to_own_email_in_another_case_is_fine(client: Client, account: Account) -> None:
    response = await client.put(ME, json={"email": account.email.upper()}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == account.email


@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title])
async def test_taking_another_users_email_is_409(
    client: Client, account: Account, other_account: Account, spelling: Callable[[str], str]
) -> None:
    before = await get_me(client, account)
    body = {"email": spelling(other_account.email), "first_name": "Changed"}
    response = await client.put(ME, json=body, headers=account.headers)
    assert_error(response, 409, "EMAIL_ALREADY_REGISTERED", ME)
    assert await get_me(client, account) == before
    assert (await get_me(client, other_account))["email"] == other_account.email
    assert await login(client, account.email, account.password)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"first_name": None}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"first_name": ""}, "first_name"),
        ({"first_name": "   "}, "first_name"),
        ({"last_name": "\t\n"}, "last_name"),
        ({"first_name": "x" * 101}, "first_name"),
        ({"last_name": "x" * 101}, "last_name"),
        ({"first_name": 42}, "first_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
    ],
)
async def test_invalid_values_are_422(client: Client, account: Account, body: dict[str, Any], field: str) -> None:
    before = await get_me(client, account)
    response = await client.put(ME, json=body, headers=account.headers)
    error = assert_error(response, 422, "VALIDATION_ERROR", ME)
    assert [(e["field"], e["source"]) for e in error["errors"]] == [(field, "body")]
    assert await get_me(client, account) == before


@pytest.mark.parametrize("body", [{"password": "Other-Horse-43"}, {"role": "admin"}, {"nickname": "ada"}])
async def test_unknown_fields_are_422(client: Client, account: Account, body: dict[str, Any]) -> None:
    before = await get_me(client, account)
    response = await client.put(ME, json=body, headers=account.headers)
    error = assert_error(response, 422, "VALIDATION_ERROR", ME)
    assert next(iter(body)) in error["detail"]
    assert [(e["field"], e["source"]) for e in error["errors"]] == [(next(iter(body)), "body")]
    assert await get_me(client, account) == before


async def test_put_without_a_body_is_refused(client: Client, account: Account) -> None:
    before = await get_me(client, account)
    response = await client.put(ME, headers=account.headers)
    expected = {400: "MALFORMED_REQUEST", 422: "VALIDATION_ERROR"}
    assert response.status_code in expected, response.text
    assert_error(response, response.status_code, expected[response.status_code], ME)
    assert await get_me(client, account) == before


async def test_a_body_that_is_not_an_object_is_422(client: Client, account: Account) -> None:
    response = await client.put(ME, json=["first_name", "Ada"], headers=account.headers)
    assert_error(response, 422, "VALIDATION_ERROR", ME)


async def test_longest_names_are_accepted(client: Client, account: Account) -> None:
    body = {"first_name": "F" * 100, "last_name": "L" * 100}
    response = await client.put(ME, json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    me = await get_me(client, account)
    assert (me["first_name"], me["last_name"]) == ("F" * 100, "L" * 100)


async def test_logged_out_token_cannot_read_me(client: Client, account: Account) -> None:
    response = await client.post("/api/v1/auth/logout", headers=account.headers)
    assert response.status_code == 200, response.text
    assert_error(await client.get(ME, headers=account.headers), 401, "TOKEN_REVOKED", ME)
