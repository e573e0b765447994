"""Restoring a subtask whose parent is in the trash brings the trashed ancestors back with it.

Before, the subtask came back alone under a parent that every route answered 404 for: it had a
``parent_id`` no client could resolve, it was missing from ``top_level=true`` and from its parent's
subtasks, and only restoring the parent too made it reachable. Now the chain of trashed ancestors
comes back (each alone: their other trashed subtasks stay in the trash), in the list of the live
ancestor it hangs from; an ancestor gone for good (expired, or pruned) leaves its restored child at
the top level of its list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update

from tests.factories import create_task
from tests.integration.test_tasks_order import move, ordered
from tests.integration.test_trash import feed, trash_ids
from todo_service.db.models import Task

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client


def url(account: Account, task: dict[str, Any], suffix: str = "") -> str:
    return f"{account.tasks_url}/{task['id']}{suffix}"


async def status(client: Client, account: Account, task: dict[str, Any]) -> int:
    return (await client.get(url(account, task), headers=account.headers)).status_code


async def read(client: Client, account: Account, task: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(url(account, task), headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def trash(client: Client, account: Account, task: dict[str, Any]) -> None:
    response = await client.delete(url(account, task), headers=account.headers)
    assert response.status_code == 200, response.text


async def restore(client: Client, account: Account, task: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url(account, task, "/restore"), headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == response.json()["etag"]
    return dict(response.json())


async def titles(client: Client, account: Account, **params: str) -> list[str]:
    response = await client.get(account.tasks_url, params={**params, "sort": "position"}, headers=account.headers)
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()["items"]]


async def test_a_subtask_trashed_with_its_parent_brings_the_parent_back_alone(client: Client, account: Account) -> None:
    parent = await create_task(client, account, title="Trip")
    child = await create_task(client, account, title="Book flights", parent_id=parent["id"])
    grandchild = await create_task(client, account, title="Compare fares", parent_id=child["id"])
    sibling = await create_task(client, account, title="Pack", parent_id=parent["id"])
    await trash(client, account, parent)
    cursor = (await feed(client, account))["next_cursor"]

    restored = await restore(client, account, child)
    assert restored["parent_id"] == parent["id"]
    assert restored["list_id"] == parent["list_id"]
    # The parent is back (it has to be, to hold its subtask), with the child's own subtree;
    # the parent's other subtask was not asked for and stays in the trash.
    assert [await status(client, account, t) for t in (parent, child, grandchild, sibling)] == [200, 200, 200, 404]
    assert await trash_ids(client, account) == [sibling["id"]]
    assert await titles(client, account, top_level="true") == ["Trip"]
    assert await titles(client, account, parent_id=parent["id"]) == ["Book flights"]
    assert await titles(client, account, parent_id=child["id"]) == ["Compare fares"]
    # A sync client learns of all three as upserts.
    changes = (await feed(client, account, cursor))["changes"]
    assert {change["op"] for change in changes} == {"upsert"}
    assert sorted(change["task"]["id"] for change in changes) == sorted(t["id"] for t in (parent, child, grandchild))
    # Restoring the sibling now is a plain restore under the live parent.
    await restore(client, account, sibling)
    assert await titles(client, account, parent_id=parent["id"]) == ["Book flights", "Pack"]


async def test_the_whole_chain_of_trashed_ancestors_comes_back(client: Client, account: Account) -> None:
    top = await create_task(client, account, title="Move house")
    middle = await create_task(client, account, title="Kitchen", parent_id=top["id"])
    leaf = await create_task(client, account, title="Wrap glasses", parent_id=middle["id"])
    other = await create_task(client, account, title="Garden", parent_id=top["id"])
    # Trashed at different times: the leaf alone first, then the top with the rest.
    await trash(client, account, leaf)
    await trash(client, account, top)
    assert [await status(client, account, t) for t in (top, middle, leaf, other)] == [404, 404, 404, 404]

    restored = await restore(client, account, leaf)
    assert restored["parent_id"] == middle["id"]
    assert [await status(client, account, t) for t in (top, middle, leaf, other)] == [200, 200, 200, 404]
    assert (await read(client, account, middle))["parent_id"] == top["id"]
    assert await titles(client, account, parent_id=top["id"]) == ["Kitchen"]
    assert await trash_ids(client, account) == [other["id"]]


async def test_a_subtask_trashed_alone_under_a_live_parent_is_a_plain_restore(client: Client, account: Account) -> None:
    parent = await create_task(client, account, title="Parent")
    child = await create_task(client, account, title="Child", parent_id=parent["id"])
    await trash(client, account, child)
    before = await read(client, account, parent)
    restored = await restore(client, account, child)
    assert restored["parent_id"] == parent["id"]
    assert (await read(client, account, parent))["etag"] == before["etag"]  # the parent is not touched


async def test_a_subtask_comes_back_into_the_list_its_parent_moved_to(client: Client, account: Account) -> None:
    created = await client.post(f"/api/v1/users/{account.id}/lists", json={"name": "Work"}, headers=account.headers)
    assert created.status_code == 201, created.text
    work = created.json()["id"]
    parent = await create_task(client, account, title="Report")
    child = await create_task(client, account, title="Draft", parent_id=parent["id"])
    await trash(client, account, child)
    # The parent moves to Work while the child is in the trash (only its live subtree goes along).
    moved = await client.put(url(account, parent), json={"list_id": work}, headers=account.headers)
    assert moved.status_code == 200, moved.text

    restored = await restore(client, account, child)
    assert (restored["parent_id"], restored["list_id"]) == (parent["id"], work)
    assert sorted(await titles(client, account, list_id=work)) == ["Draft", "Report"]

    # The same when the parent moved and was then trashed: both come back into Work.
    await trash(client, account, child)
    back = await client.put(url(account, parent), json={"list_id": parent["list_id"]}, headers=account.headers)
    assert back.status_code == 200, back.text
    await trash(client, account, parent)
    restored = await restore(client, account, child)
    assert (restored["parent_id"], restored["list_id"]) == (parent["id"], parent["list_id"])
    assert (await read(client, account, parent))["list_id"] == parent["list_id"]


async def test_an_ancestor_gone_for_good_leaves_the_restored_task_at_the_top_level(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    grandparent = await create_task(client, account, title="Expired")
    parent = await create_task(client, account, title="Parent", parent_id=grandparent["id"])
    child = await create_task(client, account, title="Child", parent_id=parent["id"])
    await trash(client, account, child)  # alone, earlier
    await trash(client, account, grandparent)  # with the parent, later
    # The grandparent's trash expires (its tombstone stays until pruned): it cannot come back.
    now = datetime.now(UTC)
    async with db_engine.begin() as connection:
        await connection.execute(
            update(Task).where(Task.id == grandparent["id"]).values(trash_expires_at=now - timedelta(seconds=1))
        )

    restored = await restore(client, account, child)
    assert restored["parent_id"] == parent["id"]
    lifted = await read(client, account, parent)
    assert lifted["parent_id"] is None  # its parent is gone: it is a top-level task now
    assert await status(client, account, grandparent) == 404
    assert await titles(client, account, top_level="true") == ["Parent"]
    assert await titles(client, account, parent_id=parent["id"]) == ["Child"]

    # A parent whose tombstone was pruned (no row at all) is gone for good too.
    await trash(client, account, parent)
    async with db_engine.begin() as connection:
        await connection.execute(delete(Task).where(Task.id == parent["id"]))
    restored = await restore(client, account, child)
    assert restored["parent_id"] is None
    assert await titles(client, account, top_level="true") == ["Child"]


async def test_restoring_still_answers_404_for_what_is_not_in_the_trash(
    client: Client, account: Account, other_account: Account
) -> None:
    parent = await create_task(client, account)
    child = await create_task(client, account, parent_id=parent["id"])
    await trash(client, account, parent)
    # Someone else cannot restore it (nor its parent through it).
    response = await client.post(url(other_account, child, "/restore"), headers=other_account.headers)
    assert response.status_code == 404
    response = await client.post(
        f"/api/v1/users/{account.id}/tasks/{child['id']}/restore", headers=other_account.headers
    )
    assert response.status_code == 403
    assert [await status(client, account, t) for t in (parent, child)] == [404, 404]
    # A live task is not in the trash: 404, as before.
    await restore(client, account, child)
    response = await client.post(url(account, child, "/restore"), headers=account.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] == "TASK_NOT_FOUND"


async def test_an_ancestor_whose_place_was_taken_comes_back_last(client: Client, account: Account) -> None:
    """A move into the same gap computes the same key: the trashed parent's place is someone else's now."""
    x = await create_task(client, account, title="x")
    await create_task(client, account, title="y")
    parent = await create_task(client, account, title="parent")
    child = await create_task(client, account, title="child", parent_id=parent["id"])
    other = await create_task(client, account, title="other")
    assert (await move(client, account, parent, after=x["id"])).status_code == 200
    await trash(client, account, parent)
    taken = await move(client, account, other, after=x["id"])

    restored = await restore(client, account, child)
    assert restored["parent_id"] == parent["id"]
    assert (await read(client, account, parent))["position"] != taken.json()["position"]
    assert await ordered(client, account) == ["x", "other", "y", "parent"]
    assert await titles(client, account, parent_id=parent["id"]) == ["child"]
