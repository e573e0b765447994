"""Subtasks: parent_id (same owner and list, no cycles, a depth limit), listing, completion and deletion rules."""

from __future__ import annotations

from typing import Any

from tests.factories import Account, Client, create_task
from todo_service.tasks.tree import MAX_DEPTH


def url(account: Account, task: dict[str, Any], suffix: str = "") -> str:
    return f"{account.tasks_url}/{task['id']}{suffix}"


async def get(client: Client, account: Account, task: dict[str, Any]) -> int:
    return (await client.get(url(account, task), headers=account.headers)).status_code


async def subtasks(client: Client, account: Account, parent: dict[str, Any]) -> list[str]:
    query = {"parent_id": parent["id"], "sort": "position"}
    response = await client.get(account.tasks_url, params=query, headers=account.headers)
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()["items"]]


async def test_a_subtask_lives_in_its_parents_list_and_is_listed_under_it(client: Client, account: Account) -> None:
    parent = await create_task(client, account, title="Trip")
    assert parent["parent_id"] is None
    first = await create_task(client, account, title="Book flights", parent_id=parent["id"])
    await create_task(client, account, title="Pack", parent_id=parent["id"])
    await create_task(client, account, title="Unrelated")
    assert first["parent_id"] == parent["id"]
    assert first["list_id"] == parent["list_id"]
    assert await subtasks(client, account, parent) == ["Book flights", "Pack"]
    top = await client.get(account.tasks_url, params={"top_level": "true"}, headers=account.headers)
    assert sorted(task["title"] for task in top.json()["items"]) == ["Trip", "Unrelated"]
    nested = await client.get(account.tasks_url, params={"top_level": "false"}, headers=account.headers)
    assert nested.json()["total"] == 2


async def test_parent_must_be_a_live_task_of_the_owner(
    client: Client, account: Account, other_account: Account
) -> None:
    theirs = await create_task(client, other_account)
    for parent_id in (theirs["id"], "00000000-0000-4000-8000-000000000000"):
        response = await client.post(
            account.tasks_url, json={"title": "x", "parent_id": parent_id}, headers=account.headers
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error_code"] == "VALIDATION_ERROR"
        assert body["errors"][0]["field"] == "parent_id"
        assert "no such task" in body["errors"][0]["message"]


async def test_no_cycles_and_a_depth_limit(client: Client, account: Account) -> None:
    chain = [await create_task(client, account, title="level 0")]
    for level in range(1, MAX_DEPTH + 1):
        chain.append(await create_task(client, account, title=f"level {level}", parent_id=chain[-1]["id"]))
    too_deep = await client.post(
        account.tasks_url, json={"title": "deeper", "parent_id": chain[-1]["id"]}, headers=account.headers
    )
    assert too_deep.status_code == 422
    assert f"at most {MAX_DEPTH} levels" in too_deep.json()["errors"][0]["message"]

    # The top task under its own descendant: a cycle.
    cycle = await client.put(url(account, chain[0]), json={"parent_id": chain[2]["id"]}, headers=account.headers)
    assert cycle.status_code == 422
    assert "subtask of itself" in cycle.json()["errors"][0]["message"]
    itself = await client.put(url(account, chain[1]), json={"parent_id": chain[1]["id"]}, headers=account.headers)
    assert itself.status_code == 422

    # Moving a subtree under another task counts its height: level 1 (with 2 levels below) under a new top task
    # reaches depth 3, allowed; under a subtask of it (depth 1), depth 4 is refused.
    other = await create_task(client, account, title="other")
    other_child = await create_task(client, account, title="other child", parent_id=other["id"])
    refused = await client.put(url(account, chain[1]), json={"parent_id": other_child["id"]}, headers=account.headers)
    assert refused.status_code == 422
    moved = await client.put(url(account, chain[1]), json={"parent_id": other["id"]}, headers=account.headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == other["id"]
    assert await subtasks(client, account, other) == ["other child", "level 1"]  # appended at the end
    detached = await client.put(url(account, chain[1]), json={"parent_id": None}, headers=account.headers)
    assert detached.json()["parent_id"] is None


async def test_completing_a_parent_leaves_its_subtasks_alone(client: Client, account: Account) -> None:
    parent = await create_task(client, account)
    child = await create_task(client, account, parent_id=parent["id"])
    done = await client.patch(url(account, parent, "/complete"), json={"completed": True}, headers=account.headers)
    assert done.json()["completed"] is True
    after = await client.get(url(account, child), headers=account.headers)
    assert after.json()["completed"] is False
    assert after.json()["etag"] == child["etag"]  # not touched at all


async def test_deleting_a_parent_deletes_its_subtree_and_restoring_brings_it_back(
    client: Client, account: Account
) -> None:
    parent = await create_task(client, account, title="parent")
    child = await create_task(client, account, title="child", parent_id=parent["id"])
    grandchild = await create_task(client, account, title="grandchild", parent_id=child["id"])
    sibling = await create_task(client, account, title="sibling")
    # A subtask deleted on its own before stays deleted when the parent comes back.
    early = await create_task(client, account, title="early", parent_id=parent["id"])
    assert (await client.delete(url(account, early), headers=account.headers)).status_code == 200

    feed = await client.get(f"{account.tasks_url}/changes", headers=account.headers)
    cursor = feed.json()["next_cursor"]
    assert (await client.delete(url(account, parent), headers=account.headers)).status_code == 200
    assert [await get(client, account, task) for task in (parent, child, grandchild, sibling)] == [404, 404, 404, 200]
    changes = (await client.get(f"{account.tasks_url}/changes?cursor={cursor}", headers=account.headers)).json()
    assert sorted(change["task_id"] for change in changes["changes"]) == sorted(
        t["id"] for t in (parent, child, grandchild)
    )
    assert {change["op"] for change in changes["changes"]} == {"delete"}

    restored = await client.post(url(account, parent, "/restore"), headers=account.headers)
    assert restored.status_code == 200, restored.text
    assert [await get(client, account, task) for task in (parent, child, grandchild, early)] == [200, 200, 200, 404]


async def test_deleting_for_good_takes_the_subtree(client: Client, account: Account) -> None:
    parent = await create_task(client, account)
    child = await create_task(client, account, parent_id=parent["id"])
    response = await client.delete(url(account, parent), params={"permanent": "true"}, headers=account.headers)
    assert response.status_code == 200, response.text
    trash = await client.get(f"{account.tasks_url}/trash", headers=account.headers)
    assert trash.json()["total"] == 0
    assert await get(client, account, child) == 404


async def test_a_subtask_follows_its_parents_list(client: Client, account: Account) -> None:
    errand = await client.post(f"/api/v1/users/{account.id}/lists", json={"name": "Errands"}, headers=account.headers)
    assert errand.status_code == 201, errand.text
    errands = errand.json()["id"]
    parent = await create_task(client, account)
    child = await create_task(client, account, parent_id=parent["id"])
    grandchild = await create_task(client, account, parent_id=child["id"])

    alone = await client.put(url(account, child), json={"list_id": errands}, headers=account.headers)
    assert alone.status_code == 422
    assert alone.json()["errors"][0]["field"] == "list_id"
    wrong = await client.post(
        account.tasks_url,
        json={"title": "x", "parent_id": parent["id"], "list_id": errands},
        headers=account.headers,
    )
    assert wrong.status_code == 422

    moved = await client.put(url(account, parent), json={"list_id": errands}, headers=account.headers)
    assert moved.status_code == 200, moved.text
    for task in (child, grandchild):
        now = (await client.get(url(account, task), headers=account.headers)).json()
        assert now["list_id"] == errands
        assert now["parent_id"] == task["parent_id"]
