"""Who may do what (todo_service/security/access.py), seen through HTTP: roles, ownership, and their order."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest
from sqlalchemy import update

from tests.factories import Account, Client, create_task
from todo_service.db.models import Role, User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

ME = "/api/v1/users/me"


async def set_role(db_engine: AsyncEngine, account: Account, role: Role) -> None:
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == UUID(account.id)).values(role=role))


def assert_error(response: Response, status: int, error_code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == error_code
    assert body["status_code"] == status
    assert body["path"] == response.request.url.path
    assert body["detail"]
    return body


async def writes(client: Client, caller: Account, owner: Account, task_id: str) -> list[Response]:
    """Every write on ``owner``'s tasks, as ``caller``."""
    task_url = f"{owner.tasks_url}/{task_id}"
    headers = caller.headers
    return [
        await client.post(owner.tasks_url, json={"title": "New"}, headers=headers),
        await client.put(task_url, json={"title": "Changed"}, headers=headers),
        await client.patch(f"{task_url}/complete", json={"completed": True}, headers=headers),
        await client.delete(task_url, headers=headers),
    ]


async def assert_task_unchanged(client: Client, owner: Account, task: dict[str, Any]) -> None:
    response = await client.get(f"{owner.tasks_url}/{task['id']}", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json() == task
    listing = (await client.get(owner.tasks_url, headers=owner.headers)).json()
    assert listing["total"] == 1


async def test_guest_reads_its_own_tasks(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    task = await create_task(client, account)
    await set_role(db_engine, account, Role.GUEST)

    listing = await client.get(account.tasks_url, headers=account.headers)
    one = await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    me = await client.get(ME, headers=account.headers)

    assert listing.status_code == 200, listing.text
    assert [item["id"] for item in listing.json()["items"]] == [task["id"]]
    assert one.status_code == 200, one.text
    assert one.json() == task
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "guest"


async def test_guest_cannot_change_its_own_tasks(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    task = await create_task(client, account)
    await set_role(db_engine, account, Role.GUEST)

    for response in await writes(client, account, account, task["id"]):
        assert_error(response, 403, "FORBIDDEN")
    await assert_task_unchanged(client, account, task)


async def test_guest_writing_a_missing_task_is_forbidden_not_404(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await set_role(db_engine, account, Role.GUEST)

    for response in (await writes(client, account, account, str(uuid.uuid4())))[1:]:
        assert_error(response, 403, "FORBIDDEN")


async def test_guest_cannot_change_its_account(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    await set_role(db_engine, account, Role.GUEST)

    assert_error(await client.put(ME, json={"first_name": "Changed"}, headers=account.headers), 403, "FORBIDDEN")
    assert (await client.get(ME, headers=account.headers)).json()["first_name"] == "Ada"


async def test_guest_can_still_log_out(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    await set_role(db_engine, account, Role.GUEST)

    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 200


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST])
async def test_non_admin_cannot_read_another_users_tasks(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine, role: Role
) -> None:
    task = await create_task(client, other_account)
    await set_role(db_engine, account, role)

    assert_error(await client.get(other_account.tasks_url, headers=account.headers), 403, "FORBIDDEN")
    task_url = f"{other_account.tasks_url}/{task['id']}"
    assert_error(await client.get(task_url, headers=account.headers), 403, "FORBIDDEN")
    missing_url = f"{other_account.tasks_url}/{uuid.uuid4()}"
    assert_error(await client.get(missing_url, headers=account.headers), 403, "FORBIDDEN")


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST, Role.ADMIN])
async def test_nobody_changes_another_users_tasks(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine, role: Role
) -> None:
    task = await create_task(client, other_account)
    await set_role(db_engine, account, role)

    for response in await writes(client, account, other_account, task["id"]):
        assert_error(response, 403, "FORBIDDEN")
    await assert_task_unchanged(client, other_account, task)


async def test_user_path_of_a_user_that_does_not_exist_is_forbidden(client: Client, account: Account) -> None:
    url = f"/api/v1/users/{uuid.uuid4()}/tasks"

    assert_error(await client.get(url, headers=account.headers), 403, "FORBIDDEN")
    assert_error(await client.post(url, json={"title": "x"}, headers=account.headers), 403, "FORBIDDEN")


async def test_admin_reads_another_users_tasks(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine
) -> None:
    task = await create_task(client, other_account)
    await set_role(db_engine, account, Role.ADMIN)

    listing = await client.get(other_account.tasks_url, headers=account.headers)
    one = await client.get(f"{other_account.tasks_url}/{task['id']}", headers=account.headers)

    assert listing.status_code == 200, listing.text
    assert listing.json()["total"] == 1
    assert listing.json()["items"] == [task]
    assert one.status_code == 200, one.text
    assert one.json() == task


async def test_admin_listing_another_users_empty_list_gets_an_empty_page(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine
) -> None:
    await set_role(db_engine, account, Role.ADMIN)

    response = await client.get(other_account.tasks_url, headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    assert response.json()["total"] == 0


async def test_admin_reading_a_missing_task_of_another_user_gets_404(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine
) -> None:
    await create_task(client, other_account)
    await set_role(db_engine, account, Role.ADMIN)

    response = await client.get(f"{other_account.tasks_url}/{uuid.uuid4()}", headers=account.headers)

    assert_error(response, 404, "TASK_NOT_FOUND")


async def test_losing_the_admin_role_takes_effect_at_once(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine
) -> None:
    await set_role(db_engine, account, Role.ADMIN)
    assert (await client.get(other_account.tasks_url, headers=account.headers)).status_code == 200

    await set_role(db_engine, account, Role.USER)

    assert_error(await client.get(other_account.tasks_url, headers=account.headers), 403, "FORBIDDEN")


async def test_revoked_token_on_another_users_path_is_401_not_403(
    client: Client, account: Account, other_account: Account
) -> None:
    task = await create_task(client, other_account)
    assert (await client.post("/api/v1/auth/logout", headers=account.headers)).status_code == 200

    assert_error(await client.get(other_account.tasks_url, headers=account.headers), 401, "TOKEN_REVOKED")
    task_url = f"{other_account.tasks_url}/{task['id']}"
    assert_error(await client.get(task_url, headers=account.headers), 401, "TOKEN_REVOKED")
    for response in await writes(client, account, other_account, task["id"]):
        assert_error(response, 401, "TOKEN_REVOKED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_deactivated_account_on_another_users_path_is_401_not_403(
    client: Client, account: Account, other_account: Account, db_engine: AsyncEngine
) -> None:
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == UUID(account.id)).values(is_active=False))

    assert_error(await client.get(other_account.tasks_url, headers=account.headers), 401, "INVALID_TOKEN")


def without_volatile(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in {"timestamp", "path"}}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_another_users_task_on_my_path_is_exactly_like_a_missing_one(
    client: Client, account: Account, other_account: Account, method: str
) -> None:
    theirs = await create_task(client, other_account)
    await create_task(client, account)
    bodies = {"PUT": {"title": "Mine now"}, "PATCH": {"completed": True}}
    suffix = "/complete" if method == "PATCH" else ""

    async def call(task_id: str) -> Response:
        url = f"{account.tasks_url}/{task_id}{suffix}"
        return await client.request(method, url, json=bodies.get(method), headers=account.headers)

    foreign = await call(theirs["id"])
    missing = await call(str(uuid.uuid4()))

    assert without_volatile(assert_error(foreign, 404, "TASK_NOT_FOUND")) == without_volatile(
        assert_error(missing, 404, "TASK_NOT_FOUND")
    )
    assert dict(foreign.headers).keys() - {"x-request-id"} == dict(missing.headers).keys() - {"x-request-id"}
    await assert_task_unchanged(client, other_account, theirs)
