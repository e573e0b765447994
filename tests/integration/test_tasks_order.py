"""Manual order: position, moves that change one row, sort=position, concurrent moves into one gap."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update

from tests.factories import Account, Client, create_task
from todo_service.db.models import Task
from todo_service.tasks.ranks import MAX_KEY_LENGTH, key_between

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


async def ordered(client: Client, account: Account, **params: Any) -> list[str]:
    query = {
        key: value
        for key, value in {"sort": "position", "limit": 100, "top_level": "true", **params}.items()
        if value is not None
    }
    response = await client.get(account.tasks_url, params=query, headers=account.headers)
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()["items"]]


async def move(client: Client, account: Account, task: dict[str, Any], **where: Any) -> Any:
    return await client.post(f"{account.tasks_url}/{task['id']}/move", json=where, headers=account.headers)


async def feed_cursor(client: Client, account: Account) -> str:
    return str((await client.get(f"{account.tasks_url}/changes", headers=account.headers)).json()["next_cursor"])


async def test_new_tasks_go_last_and_a_move_changes_one_row(client: Client, account: Account) -> None:
    tasks = {title: await create_task(client, account, title=title) for title in "abcde"}
    assert await ordered(client, account) == list("abcde")
    cursor = await feed_cursor(client, account)

    moved = await move(client, account, tasks["e"], after=tasks["a"]["id"])
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] == moved.json()["etag"] != tasks["e"]["etag"]
    assert await ordered(client, account) == list("aebcd")
    changed = (await client.get(f"{account.tasks_url}/changes?cursor={cursor}", headers=account.headers)).json()
    assert [change["task"]["title"] for change in changed["changes"]] == ["e"]  # one row

    assert (await move(client, account, tasks["a"], before=tasks["d"]["id"])).status_code == 200
    assert await ordered(client, account) == list("ebcad")
    assert (await move(client, account, tasks["d"], after=None)).status_code == 200  # first
    assert await ordered(client, account) == list("debca")
    assert (await move(client, account, tasks["d"], before=None)).status_code == 200  # last
    assert await ordered(client, account) == list("ebcad")
    assert await ordered(client, account, sort="-position") == list("dacbe")


async def test_move_validation(client: Client, account: Account, other_account: Account) -> None:
    a = await create_task(client, account)
    b = await create_task(client, account)
    child = await create_task(client, account, parent_id=a["id"])
    theirs = await create_task(client, other_account)
    cases = [
        ({}, "after", "exactly one"),
        ({"after": b["id"], "before": b["id"]}, "after", "exactly one"),
        ({"after": a["id"]}, "after", "next to itself"),
        ({"before": child["id"]}, "before", "must be a sibling"),
        ({"after": theirs["id"]}, "after", "no such task"),
    ]
    for body, field, message in cases:
        response = await move(client, account, a, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field
        assert message in response.json()["errors"][0]["message"]
    assert (await move(client, account, a, foo=None)).status_code == 422  # strict body
    assert (await move(client, other_account, a, after=None)).status_code in {403, 404}
    missing = {"id": str(uuid.uuid4())}
    assert (await move(client, account, missing, after=None)).status_code == 404
    stale = await client.post(
        f"{account.tasks_url}/{b['id']}/move", json={"after": None}, headers={**account.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412


async def test_subtasks_have_an_order_of_their_own(client: Client, account: Account) -> None:
    parent = await create_task(client, account, title="parent")
    kids = [await create_task(client, account, title=f"k{n}", parent_id=parent["id"]) for n in range(3)]
    assert (await move(client, account, kids[2], after=None)).status_code == 200
    assert await ordered(client, account, parent_id=parent["id"], top_level=None) == ["k2", "k0", "k1"]
    assert await ordered(client, account) == ["parent"]


async def test_many_moves_into_one_gap_rebalance_the_siblings(client: Client, account: Account) -> None:
    """Always to the second place: each key sits between the first and the last inserted, and grows."""
    first = await create_task(client, account, title="first")
    last = await create_task(client, account, title="last")
    titles = ["first"]
    longest = 0
    for n in range(200):
        task = await create_task(client, account, title=f"m{n}")
        response = await move(client, account, task, after=first["id"])
        assert response.status_code == 200, response.text
        longest = max(longest, len(response.json()["position"]))
        titles.insert(1, f"m{n}")
    listed = [
        *await ordered(client, account),
        *await ordered(client, account, page=2),
        *await ordered(client, account, page=3),
    ]
    assert listed == [*titles, "last"]
    assert longest <= MAX_KEY_LENGTH + 1  # a rebalance brought them back before they grew further
    positions = await client.get(account.tasks_url, params={"sort": "-position", "limit": 100}, headers=account.headers)
    assert max(len(task["position"]) for task in positions.json()["items"]) < MAX_KEY_LENGTH
    assert positions.json()["items"][0]["id"] == last["id"]


async def test_two_moves_that_chose_the_same_key_both_land_in_distinct_places(
    client: Client, account: Account, db_engine: AsyncEngine, backend: str
) -> None:
    """A concurrent move holds the key a move is about to write: the second retries with the neighbours it now sees."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the race needs PostgreSQL")
    x = await create_task(client, account, title="x")
    y = await create_task(client, account, title="y")
    a = await create_task(client, account, title="a")
    b = await create_task(client, account, title="b")
    key = key_between(x["position"], y["position"])  # what a move of `a` right after x computes
    async with db_engine.connect() as connection:
        await connection.execute(update(Task).where(Task.id == uuid.UUID(b["id"])).values(position=key))
        racing = asyncio.create_task(move(client, account, a, after=x["id"]))
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting on the unique index for the other transaction
        await connection.commit()
    response = await racing
    assert response.status_code == 200, response.text
    assert response.json()["position"] != key
    assert x["position"] < response.json()["position"] < key
    assert await ordered(client, account) == ["x", "a", "b", "y"]


async def test_concurrent_moves_into_one_gap_keep_a_total_order(client: Client, account: Account, backend: str) -> None:
    x = await create_task(client, account, title="x")
    await create_task(client, account, title="y")
    movers = [await create_task(client, account, title=f"t{n}") for n in range(8)]
    responses = await asyncio.gather(*(move(client, account, task, after=x["id"]) for task in movers))
    assert [response.status_code for response in responses] == [200] * len(movers), backend
    positions = [response.json()["position"] for response in responses]
    assert len(set(positions)) == len(positions)
    listed = await ordered(client, account)
    assert listed[0] == "x"
    assert listed[-1] == "y"
    assert sorted(listed[1:-1]) == sorted(task["title"] for task in movers)


async def test_a_restored_task_whose_place_was_taken_comes_back_last(client: Client, account: Account) -> None:
    """A move into the same gap computes the same key: the trashed task's place is then someone else's."""
    x = await create_task(client, account, title="x")
    await create_task(client, account, title="y")
    a = await create_task(client, account, title="a")
    b = await create_task(client, account, title="b")
    assert (await move(client, account, a, after=x["id"])).status_code == 200
    assert (await client.delete(f"{account.tasks_url}/{a['id']}", headers=account.headers)).status_code == 200
    taken = await move(client, account, b, after=x["id"])
    restored = await client.post(f"{account.tasks_url}/{a['id']}/restore", headers=account.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["position"] != taken.json()["position"]
    assert await ordered(client, account) == ["x", "b", "y", "a"]


async def test_the_schema_shows_the_new_fields_and_routes(client: Client) -> None:
    document = (await client.get("/api/docs/openapi.json")).json()
    schemas = document["components"]["schemas"]
    task = schemas["TaskRead"]["properties"]
    assert {"parent_id", "position", "due_on", "timezone", "rrule", "overdue_at", "reminded_at"} <= task.keys()
    assert {"parent_id", "due_on", "timezone", "rrule"} <= schemas["TaskCreate"]["properties"].keys()
    assert schemas["TaskMove"]["additionalProperties"] is False
    paths = document["paths"]
    assert "post" in paths["/api/v1/users/{user_id}/tasks/{task_id}/move"]
    assert {"get", "put"} <= paths["/api/v1/users/{user_id}/tasks/{task_id}/reminders"].keys()
    listing = {parameter["name"] for parameter in paths["/api/v1/users/{user_id}/tasks"]["get"]["parameters"]}
    assert {"parent_id", "top_level"} <= listing
    assert "timezone" in schemas["UserRead"]["properties"]
