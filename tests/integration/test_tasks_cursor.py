"""Task listings read by cursor (keyset): the same order as page numbers, at any depth, with no total."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update

from tests.factories import Account, Client, create_task
from todo_service.db.models import Task

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

SORTS = [
    "-created_at",
    "created_at",
    "-updated_at",
    "priority",
    "-priority",
    "due_date",
    "-due_date",
    "title",
    "-title",
    "completed",
    "position",
    "-priority,due_date",
    "due_date,-priority",
    "-due_date,title",
    "completed,-priority,-due_date",
    "title,created_at",
]
PRIORITIES = ["low", "medium", "high", "urgent"]


async def paged(client: Client, account: Account, **params: Any) -> list[str]:
    """Every task id of the listing, read by page number (the order cursors must follow)."""
    response = await client.get(account.tasks_url, params={"limit": 100, **params}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["pages"] == 1
    return [task["id"] for task in response.json()["items"]]


async def scrolled(client: Client, account: Account, limit: int, **params: Any) -> tuple[list[str], int]:
    """Every task id of the listing, read by cursor ``limit`` at a time, and how many requests it took."""
    ids: list[str] = []
    cursor: str | None = "start"
    requests = 0
    while cursor is not None and requests < 100:
        response = await client.get(
            account.tasks_url, params={"cursor": cursor, "limit": limit, **params}, headers=account.headers
        )
        requests += 1
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "limit", "next_cursor", "has_more"}
        assert body["limit"] == limit
        assert len(body["items"]) <= limit
        assert body["has_more"] == (body["next_cursor"] is not None)
        if body["has_more"]:
            assert len(body["items"]) == limit
        ids.extend(task["id"] for task in body["items"])
        cursor = body["next_cursor"]
    return ids, requests


@pytest.fixture
async def varied(client: Client, account: Account, db_engine: AsyncEngine) -> list[dict[str, Any]]:
    """23 tasks whose sort keys tie often: 4 priorities, 3 due dates and none, 5 titles, done or not,
    and groups of creation times made equal behind the API's back (so the id decides)."""
    base = datetime(2026, 3, 1, 9, tzinfo=UTC)
    tasks = []
    for i in range(23):
        due = None if i % 4 == 0 else (base + timedelta(days=i % 3)).isoformat()
        tasks.append(
            await create_task(
                client,
                account,
                title=f"Title {i % 5}",
                priority=PRIORITIES[i % 4],
                due_date=due,
                completed=i % 3 == 0,
            )
        )
    async with db_engine.begin() as connection:
        for i, task in enumerate(tasks):
            created = base - timedelta(hours=i // 4)  # four tasks per instant
            await connection.execute(update(Task).where(Task.id == uuid.UUID(task["id"])).values(created_at=created))
    return tasks


@pytest.mark.parametrize("sort", SORTS)
async def test_a_cursor_walk_gives_the_pages_order(
    client: Client, account: Account, varied: list[dict[str, Any]], sort: str
) -> None:
    expected = await paged(client, account, sort=sort)
    assert sorted(expected) == sorted(task["id"] for task in varied)
    ids, requests = await scrolled(client, account, 4, sort=sort)
    assert ids == expected
    assert requests == 6  # 23 tasks, 4 at a time


async def test_cursors_with_filters(client: Client, account: Account, varied: list[dict[str, Any]]) -> None:
    for params in (
        {"completed": "false"},
        {"completed": "true", "sort": "-due_date"},
        {"priority": "high"},
        {"search": "title 3", "sort": "title"},
        {"due_after": "2026-03-01T12:00:00Z", "sort": "due_date,-priority"},
    ):
        expected = await paged(client, account, **params)
        assert expected, params
        assert (await scrolled(client, account, 3, **params))[0] == expected, params


async def test_the_end_and_an_empty_listing(client: Client, account: Account, other_account: Account) -> None:
    empty = await client.get(other_account.tasks_url, params={"cursor": "start"}, headers=other_account.headers)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"items": [], "limit": 20, "next_cursor": None, "has_more": False}
    for _ in range(3):
        await create_task(client, account)
    exact = await client.get(account.tasks_url, params={"cursor": "start", "limit": 3}, headers=account.headers)
    assert exact.json()["has_more"] is False  # exactly a full stretch, nothing after it
    assert len(exact.json()["items"]) == 3


async def test_writes_between_requests_neither_repeat_nor_skip(client: Client, account: Account) -> None:
    """Unlike page numbers, a cursor names a task: new tasks before it do not shift what comes next."""
    for i in range(6):
        await create_task(client, account, title=f"old {i}")
    first = (
        await client.get(account.tasks_url, params={"cursor": "start", "limit": 3}, headers=account.headers)
    ).json()
    await create_task(client, account, title="newest")  # goes first (newest first), before the cursor
    shown = [task["title"] for task in first["items"]]
    rest = (
        await client.get(
            account.tasks_url, params={"cursor": first["next_cursor"], "limit": 3}, headers=account.headers
        )
    ).json()
    assert shown + [task["title"] for task in rest["items"]] == [f"old {i}" for i in reversed(range(6))]
    assert rest["has_more"] is False


async def test_a_cursor_belongs_to_its_owner_and_listing(
    client: Client, account: Account, other_account: Account
) -> None:
    for _ in range(3):
        await create_task(client, account)
        await create_task(client, other_account)
    first = await client.get(account.tasks_url, params={"cursor": "start", "limit": 1}, headers=account.headers)
    cursor = first.json()["next_cursor"]
    refused = [
        (account, {"cursor": cursor, "sort": "created_at"}),  # another order
        (account, {"cursor": cursor, "completed": "false"}),  # other filters
        (account, {"cursor": cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")}),  # mangled
        (account, {"cursor": "not a cursor!"}),
        (other_account, {"cursor": cursor}),  # another user's (on their own tasks)
    ]
    for who, params in refused:
        response = await client.get(who.tasks_url, params=params, headers=who.headers)
        assert response.status_code == 422, (params, response.text)
        error = response.json()
        assert error["error_code"] == "VALIDATION_ERROR"
        assert error["errors"][0]["field"] == "cursor"
        assert "cursor=start" in error["errors"][0]["message"]
    # the page size is not part of the listing: another limit continues the same walk
    more = await client.get(account.tasks_url, params={"cursor": cursor, "limit": 5}, headers=account.headers)
    assert more.status_code == 200
    assert len(more.json()["items"]) == 2


async def test_page_and_cursor_together_are_refused(client: Client, account: Account) -> None:
    response = await client.get(account.tasks_url, params={"cursor": "start", "page": 2}, headers=account.headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "page"


async def test_another_users_listing_by_cursor_is_refused_as_by_page(
    client: Client, account: Account, other_account: Account
) -> None:
    await create_task(client, other_account)
    by_page = await client.get(other_account.tasks_url, headers=account.headers)
    by_cursor = await client.get(other_account.tasks_url, params={"cursor": "start"}, headers=account.headers)
    assert by_page.status_code in {403, 404}
    assert by_cursor.status_code == by_page.status_code
    assert {**by_cursor.json(), "timestamp": None} == {**by_page.json(), "timestamp": None}


async def test_etag_and_304(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    params = {"cursor": "start"}
    first = await client.get(account.tasks_url, params=params, headers=account.headers)
    etag = first.headers["etag"]
    again = await client.get(account.tasks_url, params=params, headers={**account.headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    renamed = await client.put(f"{account.tasks_url}/{task['id']}", json={"title": "renamed"}, headers=account.headers)
    assert renamed.status_code == 200
    changed = await client.get(account.tasks_url, params=params, headers={**account.headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["items"][0]["title"] == "renamed"
