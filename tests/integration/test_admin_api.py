"""/api/v1/admin/users: admins list accounts and change their role or status, effective at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update

from tests.factories import PASSWORD, Account, Client, create_task, register
from todo_service.db.models import Role, User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

USERS = "/api/v1/admin/users"
USER_KEYS = {"id", "email", "first_name", "last_name", "role", "is_active", "created_at", "updated_at", "timezone"}


async def set_columns(db_engine: AsyncEngine, account: Account, **values: Any) -> None:
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == uuid.UUID(account.id)).values(**values))


async def admin_account(client: Client, db_engine: AsyncEngine) -> Account:
    admin = await register(client, email="root@example.com")
    await set_columns(db_engine, admin, role=Role.ADMIN)
    return admin


async def stored(db_engine: AsyncEngine, account: Account) -> tuple[Role, bool]:
    async with db_engine.connect() as connection:
        row = (
            await connection.execute(select(User.role, User.is_active).where(User.id == uuid.UUID(account.id)))
        ).one()
    return row.role, row.is_active


def assert_error(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert response.json()["status_code"] == status


async def patch(client: Client, admin: Account, target: str, body: Any) -> Response:
    return await client.patch(f"{USERS}/{target}", json=body, headers=admin.headers)


async def test_admin_lists_accounts_oldest_first_in_pages(client: Client, db_engine: AsyncEngine) -> None:
    admin = await admin_account(client, db_engine)
    others = [await register(client) for _ in range(3)]
    # Make creation order the reverse of registration order: the listing must follow created_at.
    base = datetime.now(UTC) - timedelta(days=1)
    for offset, account in enumerate(reversed([admin, *others])):
        await set_columns(db_engine, account, created_at=base + timedelta(minutes=offset))
    expected = [a.id for a in reversed([admin, *others])]

    first = await client.get(USERS, params={"limit": 3}, headers=admin.headers)
    second = await client.get(USERS, params={"limit": 3, "page": 2}, headers=admin.headers)
    beyond = await client.get(USERS, params={"limit": 3, "page": 3}, headers=admin.headers)

    assert first.status_code == 200, first.text
    pages = [first.json(), second.json(), beyond.json()]
    assert [(p["total"], p["page"], p["limit"], p["pages"]) for p in pages] == [(4, n, 3, 2) for n in (1, 2, 3)]
    assert [item["id"] for p in pages for item in p["items"]] == expected
    assert set(pages[0]["items"][0]) == USER_KEYS
    assert "password" not in first.text
    assert "argon2" not in first.text


async def test_listing_filters_by_role_and_status(client: Client, db_engine: AsyncEngine) -> None:
    admin = await admin_account(client, db_engine)
    guest, user, gone = [await register(client) for _ in range(3)]
    await set_columns(db_engine, guest, role=Role.GUEST)
    await set_columns(db_engine, gone, is_active=False)

    async def ids(**params: Any) -> set[str]:
        response = await client.get(USERS, params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == len(response.json()["items"])
        return {item["id"] for item in response.json()["items"]}

    assert await ids(role="guest") == {guest.id}
    assert await ids(role="admin") == {admin.id}
    assert await ids(role="user") == {user.id, gone.id}
    assert await ids(is_active="false") == {gone.id}
    assert await ids(is_active="true") == {admin.id, guest.id, user.id}
    assert await ids(role="user", is_active="true") == {user.id}
    assert_error(await client.get(USERS, params={"role": "root"}, headers=admin.headers), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST])
async def test_non_admins_cannot_use_the_admin_api(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine, role: Role
) -> None:
    await set_columns(db_engine, account, role=role)

    assert_error(await client.get(USERS, headers=account.headers), 403, "FORBIDDEN")
    assert_error(await patch(client, account, other_account.id, {"role": "admin"}), 403, "FORBIDDEN")
    assert_error(await patch(client, account, account.id, {"role": "admin"}), 403, "FORBIDDEN")
    assert_error(await patch(client, account, other_account.id, {"is_active": False}), 403, "FORBIDDEN")
    assert await stored(db_engine, account) == (role, True)
    assert await stored(db_engine, other_account) == (Role.USER, True)


async def test_the_admin_api_needs_a_token(client: Client, account: Account) -> None:
    assert_error(await client.get(USERS), 401, "NOT_AUTHENTICATED")
    assert_error(await client.patch(f"{USERS}/{account.id}", json={"role": "guest"}), 401, "NOT_AUTHENTICATED")


async def test_demotion_to_guest_takes_effect_at_once(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    admin = await admin_account(client, db_engine)
    assert (await client.post(account.tasks_url, json={"title": "before"}, headers=account.headers)).status_code == 201

    response = await patch(client, admin, account.id, {"role": "guest"})

    assert response.status_code == 200, response.text
    assert set(response.json()) == USER_KEYS
    assert (response.json()["id"], response.json()["role"], response.json()["is_active"]) == (account.id, "guest", True)
    assert await stored(db_engine, account) == (Role.GUEST, True)
    assert_error(
        await client.post(account.tasks_url, json={"title": "after"}, headers=account.headers), 403, "FORBIDDEN"
    )
    assert (await client.get(account.tasks_url, headers=account.headers)).json()["total"] == 1

    assert (await patch(client, admin, account.id, {"role": "user"})).json()["role"] == "user"
    assert (await client.post(account.tasks_url, json={"title": "again"}, headers=account.headers)).status_code == 201


async def test_promotion_and_demotion_of_admins(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    admin = await admin_account(client, db_engine)

    assert (await patch(client, admin, account.id, {"role": "admin"})).json()["role"] == "admin"
    assert (await client.get(USERS, headers=account.headers)).status_code == 200

    assert (await patch(client, account, admin.id, {"role": "user"})).json()["role"] == "user"
    assert_error(await client.get(USERS, headers=admin.headers), 403, "FORBIDDEN")


async def test_deactivation_ends_every_session_at_once(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    admin = await admin_account(client, db_engine)
    login = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    refresh_token = login.json()["refresh_token"]

    response = await patch(client, admin, account.id, {"is_active": False})

    assert response.status_code == 200, response.text
    assert (response.json()["is_active"], response.json()["role"]) == (False, "user")
    assert await stored(db_engine, account) == (Role.USER, False)
    assert_error(await client.get("/api/v1/users/me", headers=account.headers), 401, "INVALID_TOKEN")
    assert_error(await client.get(account.tasks_url, headers=account.headers), 401, "INVALID_TOKEN")
    # Like the access token: a deactivated account says so, whatever became of its sessions.
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert_error(refreshed, 401, "INVALID_TOKEN")
    locked_out = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert_error(locked_out, 403, "FORBIDDEN")


async def test_reactivation_lets_the_user_log_in_again(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    admin = await admin_account(client, db_engine)
    assert (await patch(client, admin, account.id, {"is_active": False})).status_code == 200

    response = await patch(client, admin, account.id, {"is_active": True})

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is True
    login = await client.post("/api/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    new_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=new_headers)).status_code == 200
    # The sessions deactivation ended stay ended.
    assert_error(await client.get("/api/v1/users/me", headers=account.headers), 401, "TOKEN_REVOKED")


@pytest.mark.parametrize("body", [{"role": "user"}, {"role": "guest"}, {"is_active": False}, {"role": "admin"}])
async def test_admins_cannot_change_themselves(client: Client, db_engine: AsyncEngine, body: dict[str, Any]) -> None:
    admin = await admin_account(client, db_engine)

    assert_error(await patch(client, admin, admin.id, body), 403, "FORBIDDEN")

    assert await stored(db_engine, admin) == (Role.ADMIN, True)
    assert (await client.get(USERS, headers=admin.headers)).status_code == 200


async def test_unknown_and_malformed_user_ids(client: Client, db_engine: AsyncEngine) -> None:
    admin = await admin_account(client, db_engine)

    assert_error(await patch(client, admin, str(uuid.uuid4()), {"role": "guest"}), 404, "USER_NOT_FOUND")
    assert_error(await patch(client, admin, "not-a-uuid", {"role": "guest"}), 404, "NOT_FOUND")
    assert_error(await patch(client, admin, "1' OR '1'='1", {"role": "guest"}), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [{"role": "root"}, {"role": None}, {"is_active": "no"}, {"is_active": None}, {"email": "x@example.com"}, []],
)
async def test_invalid_changes_are_422(client: Client, account: Account, db_engine: AsyncEngine, body: Any) -> None:
    admin = await admin_account(client, db_engine)

    assert_error(await patch(client, admin, account.id, body), 422, "VALIDATION_ERROR")

    assert await stored(db_engine, account) == (Role.USER, True)


async def test_an_empty_change_changes_nothing(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    admin = await admin_account(client, db_engine)
    before = (await client.get(USERS, params={"role": "user"}, headers=admin.headers)).json()["items"]

    response = await patch(client, admin, account.id, {})

    assert response.status_code == 200, response.text
    assert [response.json()] == before


async def test_admin_reads_but_cannot_write_another_users_tasks(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    admin = await admin_account(client, db_engine)
    task = await create_task(client, account)
    task_url = f"{account.tasks_url}/{task['id']}"

    assert (await client.get(task_url, headers=admin.headers)).json() == task
    assert (await client.get(account.tasks_url, headers=admin.headers)).json()["items"] == [task]
    assert_error(await client.put(task_url, json={"title": "Mine"}, headers=admin.headers), 403, "FORBIDDEN")
    assert_error(await client.delete(task_url, headers=admin.headers), 403, "FORBIDDEN")
    assert_error(await client.post(account.tasks_url, json={"title": "x"}, headers=admin.headers), 403, "FORBIDDEN")
    assert (await client.get(task_url, headers=account.headers)).json() == task
