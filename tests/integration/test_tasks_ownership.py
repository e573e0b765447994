"""Ownership: a user reaches only their own tasks; someone else's task looks exactly like a missing one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import Account, Client, create_task

# (method, path below the user's task collection, JSON body); "{task}" is replaced by a task id.
TASK_ROUTES = [
    ("GET", "/{task}", None),
    ("PUT", "/{task}", {"title": "Hijacked", "completed": True}),
    ("PATCH", "/{task}/complete", {"completed": True}),
    ("DELETE", "/{task}", None),
]
ALL_ROUTES = [("GET", "", None), ("POST", "", {"title": "Planted"}), *TASK_ROUTES]


def without_volatile(body: dict[str, Any]) -> dict[str, Any]:
    """An error body without the fields that differ between two requests (timestamp, path)."""
    return {key: value for key, value in body.items() if key not in {"timestamp", "path"}}


async def send(client: Client, account: Account, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
    response = await client.request(method, url, json=body, headers=account.headers)
    return {"status": response.status_code, "body": response.json()}


async def own_view(client: Client, owner: Account, task_id: str) -> dict[str, Any]:
    response = await client.get(f"{owner.tasks_url}/{task_id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize(("method", "suffix", "body"), ALL_ROUTES)
async def test_another_users_path_answers_403(
    *,
    client: Client,
    account: Account,
    other_account: Account,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = await create_task(client, other_account)
    url = other_account.tasks_url + suffix.format(task=theirs["id"])

    answer = await send(client, account, method, url, body)

    assert answer["status"] == 403
    assert answer["body"]["error_code"] == "FORBIDDEN"
    assert answer["body"]["status_code"] == 403
    assert await own_view(client, other_account, theirs["id"]) == theirs
    listing = (await client.get(other_account.tasks_url, headers=other_account.headers)).json()
    assert [item["id"] for item in listing["items"]] == [theirs["id"]]


@pytest.mark.parametrize(("method", "suffix", "body"), ALL_ROUTES[:2])
async def test_unknown_user_path_answers_403(
    client: Client, account: Account, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    url = f"/api/v1/users/{uuid.uuid4()}/tasks{suffix}"

    answer = await send(client, account, method, url, body)

    assert (answer["status"], answer["body"]["error_code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize(("method", "suffix", "body"), TASK_ROUTES)
async def test_another_users_task_looks_exactly_like_a_missing_one(
    *,
    client: Client,
    account: Account,
    other_account: Account,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    theirs = await create_task(client, other_account, description="private", due_date="2030-01-01T00:00:00Z")
    await create_task(client, account)

    foreign = await send(client, account, method, account.tasks_url + suffix.format(task=theirs["id"]), body)
    missing = await send(client, account, method, account.tasks_url + suffix.format(task=uuid.uuid4()), body)

    assert foreign["status"] == missing["status"] == 404
    assert foreign["body"]["error_code"] == "TASK_NOT_FOUND"
    assert without_volatile(foreign["body"]) == without_volatile(missing["body"])
    assert await own_view(client, other_account, theirs["id"]) == theirs


async def test_listing_shows_only_the_callers_tasks(client: Client, account: Account, other_account: Account) -> None:
    mine = [await create_task(client, account) for _ in range(2)]
    theirs = [await create_task(client, other_account) for _ in range(3)]

    my_page = (await client.get(account.tasks_url, headers=account.headers)).json()
    their_page = (await client.get(other_account.tasks_url, headers=other_account.headers)).json()

    assert sorted(item["id"] for item in my_page["items"]) == sorted(task["id"] for task in mine)
    assert sorted(item["id"] for item in their_page["items"]) == sorted(task["id"] for task in theirs)
    assert (my_page["total"], their_page["total"]) == (2, 3)
    assert {item["user_id"] for item in my_page["items"]} == {account.id}


async def test_filters_and_search_never_reach_other_users(
    client: Client, account: Account, other_account: Account
) -> None:
    await create_task(client, other_account, title="Secret report", priority="urgent", completed=True)
    mine = await create_task(client, account, title="My report", priority="urgent", completed=True)

    for params in ({"search": "report"}, {"priority": "urgent"}, {"completed": "true"}, {"sort": "-priority"}):
        page = (await client.get(account.tasks_url, params=params, headers=account.headers)).json()
        assert ([item["id"] for item in page["items"]], page["total"]) == ([mine["id"]], 1)


async def test_empty_list_for_a_user_while_another_has_tasks(
    client: Client, account: Account, other_account: Account
) -> None:
    await create_task(client, other_account)

    page = (await client.get(account.tasks_url, headers=account.headers)).json()

    assert page == {"items": [], "total": 0, "page": 1, "limit": 20, "pages": 0}


async def test_created_task_belongs_to_the_caller(client: Client, account: Account, other_account: Account) -> None:
    task = await create_task(client, account)

    assert task["user_id"] == account.id
    response = await client.get(f"{other_account.tasks_url}/{task['id']}", headers=other_account.headers)
    assert (response.status_code, response.json()["error_code"]) == (404, "TASK_NOT_FOUND")


async def test_owner_deleting_does_not_touch_the_other_users_tasks(
    client: Client, account: Account, other_account: Account
) -> None:
    mine = await create_task(client, account)
    theirs = await create_task(client, other_account)

    response = await client.delete(f"{account.tasks_url}/{mine['id']}", headers=account.headers)

    assert response.status_code == 200
    assert await own_view(client, other_account, theirs["id"]) == theirs
