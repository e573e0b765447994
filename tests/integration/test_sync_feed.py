"""The change feed: every change after a cursor exactly once, in commit order, deletes included."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Account, Client, caller_of, create_task, register, task_repository


async def feed(client: Client, account: Account, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
    response = await client.get(f"{account.tasks_url}/changes", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_from_the_beginning_every_task_once_in_commit_order(client: Client, account: Account) -> None:
    created = [await create_task(client, account, title=f"t{i}") for i in range(3)]
    page = await feed(client, account)
    assert [change["op"] for change in page["changes"]] == ["upsert"] * 3
    assert [change["task"] for change in page["changes"]] == created
    assert page["has_more"] is False
    assert isinstance(page["next_cursor"], str)
    # Asked again with the cursor: nothing new, and the cursor stays usable.
    again = await feed(client, account, page["next_cursor"])
    assert again["changes"] == []
    assert again["has_more"] is False
    assert (await feed(client, account, again["next_cursor"]))["changes"] == []


async def test_later_changes_come_once_each_in_their_latest_state(client: Client, account: Account) -> None:
    first, second = await create_task(client, account), await create_task(client, account)
    cursor = (await feed(client, account))["next_cursor"]
    await client.put(f"{account.tasks_url}/{first['id']}", json={"title": "one"}, headers=account.headers)
    await client.put(f"{account.tasks_url}/{first['id']}", json={"title": "two"}, headers=account.headers)
    await client.delete(f"{account.tasks_url}/{second['id']}", headers=account.headers)
    third = await create_task(client, account)
    page = await feed(client, account, cursor)
    ops = [(change["op"], change.get("task", {}).get("id") or change.get("task_id")) for change in page["changes"]]
    assert ops == [("upsert", first["id"]), ("delete", second["id"]), ("upsert", third["id"])]
    assert page["changes"][0]["task"]["title"] == "two"
    deleted_at = datetime.fromisoformat(page["changes"][1]["deleted_at"])
    assert abs(datetime.now(UTC) - deleted_at) < timedelta(minutes=1)
    assert (await feed(client, account, page["next_cursor"]))["changes"] == []


async def test_pages_of_the_feed_follow_each_other_without_gap(client: Client, account: Account) -> None:
    created = {(await create_task(client, account))["id"] for _ in range(7)}
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await feed(client, account, cursor, limit=3)
        seen += [change["task"]["id"] for change in page["changes"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(created)


async def test_no_op_writes_are_not_changes(client: Client, account: Account) -> None:
    task = await create_task(client, account, completed=True)
    cursor = (await feed(client, account))["next_cursor"]
    await client.patch(f"{account.tasks_url}/{task['id']}/complete", json={"completed": True}, headers=account.headers)
    await client.put(f"{account.tasks_url}/{task['id']}", json={"title": task["title"]}, headers=account.headers)
    assert (await feed(client, account, cursor))["changes"] == []


@pytest.mark.parametrize("cursor", ["garbage", "AAAA", "x" * 200, "%%%", "AQAAAAAAAAAB" * 3])
async def test_a_cursor_we_did_not_give_out_is_a_422(client: Client, account: Account, cursor: str) -> None:
    response = await client.get(f"{account.tasks_url}/changes", params={"cursor": cursor}, headers=account.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert body["errors"] == [{"field": "cursor", "message": body["errors"][0]["message"], "source": "query"}]


async def test_another_users_cursor_is_refused_and_their_feed_is_403(client: Client, account: Account) -> None:
    other = await register(client)
    await create_task(client, other)
    theirs = (await feed(client, other))["next_cursor"]
    response = await client.get(f"{account.tasks_url}/changes", params={"cursor": theirs}, headers=account.headers)
    assert response.status_code == 422
    response = await client.get(f"{other.tasks_url}/changes", headers=account.headers)
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"
    assert (await feed(client, account))["changes"] == []


async def test_a_cursor_older_than_the_pruned_tombstones_is_410(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    kept = await create_task(client, account)
    old_cursor = (await feed(client, account))["next_cursor"]
    gone = await create_task(client, account)
    # For good: a task in the trash keeps its tombstone while it can be restored.
    await client.delete(f"{account.tasks_url}/{gone['id']}", params={"permanent": "true"}, headers=account.headers)
    before_prune = (await feed(client, account))["next_cursor"]
    assert await task_repository(db_engine).prune_tombstones(datetime.now(UTC) + timedelta(seconds=1)) == 1
    response = await client.get(f"{account.tasks_url}/changes", params={"cursor": old_cursor}, headers=account.headers)
    assert response.status_code == 410
    assert response.json()["error_code"] == "CURSOR_EXPIRED"
    # A cursor past the pruned tombstone missed nothing; starting again shows what is left.
    assert (await feed(client, account, before_prune))["changes"] == []
    assert [change["task"]["id"] for change in (await feed(client, account))["changes"]] == [kept["id"]]


async def test_pruning_keeps_tombstones_younger_than_the_retention(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    task = await create_task(client, account)
    await client.delete(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    assert await task_repository(db_engine).prune_tombstones(datetime.now(UTC) - timedelta(days=30)) == 0
    assert [change["op"] for change in (await feed(client, account))["changes"]] == ["delete"]


async def test_out_of_order_commits_are_never_skipped(
    client: Client, account: Account, db_engine: AsyncEngine, backend: str
) -> None:
    """Two transactions commit in the other order than they wrote; a reader follows the cursor throughout."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no two writes can commit out of order")
    repo, caller, owner = task_repository(db_engine), await caller_of(db_engine, account), uuid.UUID(account.id)
    cursor = (await feed(client, account))["next_cursor"]
    seen: list[str] = []

    async def read() -> None:
        nonlocal cursor
        page = await feed(client, account, cursor)
        seen.extend(change["task"]["title"] for change in page["changes"])
        cursor = page["next_cursor"]

    def values(title: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "id": uuid.uuid4(),
            "title": title,
            "description": None,
            "completed": False,
            "priority": "medium",
            "due_date": None,
            "completed_at": None,
            "created_at": now,
            "updated_at": now,
        }

    async def two_writers(earlier: str, later: str, commit_first: int) -> list[list[str]]:
        """``earlier`` writes first (the smaller revision); transaction ``commit_first`` commits first."""
        transactions = [repo.statements.transaction(), repo.statements.transaction()]
        statements = [await transaction.__aenter__() for transaction in transactions]
        snapshots = []
        try:
            await repo.insert(caller, owner, values(earlier), db=statements[0])
            await repo.insert(caller, owner, values(later), db=statements[1])
            await transactions[commit_first].__aexit__(None, None, None)
            await read()
            snapshots.append(list(seen))
        finally:
            await transactions[1 - commit_first].__aexit__(None, None, None)
        await read()
        snapshots.append(list(seen))
        return snapshots

    # The later writer commits first: its change waits behind the one still running, never passes it.
    assert await two_writers("a", "b", commit_first=1) == [[], ["a", "b"]]
    # The earlier writer commits first: its change is seen at once, the later one once committed.
    assert await two_writers("c", "d", commit_first=0) == [["a", "b", "c"], ["a", "b", "c", "d"]]
    assert (await feed(client, account, cursor))["changes"] == []


async def test_a_reader_following_concurrent_batches_sees_every_task_exactly_once(
    client: Client, account: Account
) -> None:
    """Writers run batches (transactions of several statements) concurrently; commits interleave."""
    seen: list[str] = []
    cursor: str | None = None
    writing = True

    async def writer(number: int) -> None:
        for round_ in range(6):
            operations = [{"op": "create", "title": f"w{number}-r{round_}-{i}"} for i in range(3)]
            response = await client.post(
                f"{account.tasks_url}/batch", json={"operations": operations}, headers=account.headers
            )
            assert response.status_code == 200, response.text

    async def reader() -> None:
        nonlocal cursor
        while True:
            done = not writing
            page = await feed(client, account, cursor)
            seen.extend(change["task"]["title"] for change in page["changes"])
            cursor = page["next_cursor"]
            if done and not page["has_more"]:
                return
            await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(number) for number in range(6)))
    writing = False
    await asyncio.wait_for(reading, timeout=60)
    expected = {f"w{n}-r{r}-{i}" for n in range(6) for r in range(6) for i in range(3)}
    assert len(seen) == len(expected)
    assert set(seen) == expected
