"""Batches: operations in one transaction, all or nothing, each with its single route's rules."""

from __future__ import annotations

import uuid
from typing import Any

from tests.factories import Account, Client, create_task, register


async def batch(client: Client, account: Account, *operations: dict[str, Any], **headers: str) -> Any:
    return await client.post(
        f"{account.tasks_url}/batch", json={"operations": list(operations)}, headers={**account.headers, **headers}
    )


async def titles(client: Client, account: Account) -> list[str]:
    listing = (await client.get(f"{account.tasks_url}?sort=title", headers=account.headers)).json()
    return [task["title"] for task in listing["items"]]


async def test_every_operation_runs_in_order_with_one_result_each(client: Client, account: Account) -> None:
    kept, done, gone = [await create_task(client, account, title=t) for t in ("b", "c", "d")]
    response = await batch(
        client,
        account,
        {"op": "create", "title": "a", "priority": "high"},
        {"op": "update", "task_id": kept["id"], "title": "b2", "if_match": kept["etag"]},
        {"op": "complete", "task_id": done["id"], "completed": True},
        {"op": "delete", "task_id": gone["id"], "if_match": "*"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["op"], r["status"]) for r in results] == [
        ("create", 201),
        ("update", 200),
        ("complete", 200),
        ("delete", 200),
    ]
    assert results[0]["task"]["title"] == "a"
    assert results[0]["task"]["priority"] == "high"
    assert results[1]["task"]["title"] == "b2"
    assert results[1]["task"]["etag"] != kept["etag"]
    assert results[2]["task"]["completed"] is True
    assert results[2]["task"]["completed_at"]
    assert results[3] == {"op": "delete", "status": 200, "task_id": gone["id"]}
    assert await titles(client, account) == ["a", "b2", "c"]


async def test_the_change_feed_shows_one_change_per_task_the_batch_touched(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    cursor = (await client.get(f"{account.tasks_url}/changes", headers=account.headers)).json()["next_cursor"]
    response = await batch(
        client,
        account,
        {"op": "update", "task_id": task["id"], "title": "one"},
        {"op": "update", "task_id": task["id"], "title": "two"},
        {"op": "create", "title": "new"},
    )
    assert response.status_code == 200
    changes = (
        await client.get(f"{account.tasks_url}/changes", params={"cursor": cursor}, headers=account.headers)
    ).json()["changes"]
    assert sorted(change["task"]["title"] for change in changes) == ["new", "two"]


async def test_a_failing_operation_keeps_nothing_and_names_its_index(client: Client, account: Account) -> None:
    task = await create_task(client, account, title="before")
    response = await batch(
        client,
        account,
        {"op": "create", "title": "never"},
        {"op": "update", "task_id": task["id"], "title": "never either"},
        {"op": "delete", "task_id": str(uuid.uuid4())},
    )
    assert response.status_code == 404
    body = response.json()
    assert body["error_code"] == "TASK_NOT_FOUND"
    assert body["operation"] == 2
    assert body["detail"].startswith("Operation 2 (delete) failed")
    assert await titles(client, account) == ["before"]


async def test_a_stale_if_match_fails_the_batch_with_412(client: Client, account: Account) -> None:
    task = await create_task(client, account, title="before")
    await client.put(f"{account.tasks_url}/{task['id']}", json={"title": "moved on"}, headers=account.headers)
    response = await batch(
        client,
        account,
        {"op": "create", "title": "never"},
        {"op": "complete", "task_id": task["id"], "completed": True, "if_match": task["etag"]},
    )
    assert response.status_code == 412
    assert response.json()["operation"] == 1
    assert await titles(client, account) == ["moved on"]


async def test_operations_are_validated_like_their_routes(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    cases: list[list[dict[str, Any]]] = [
        [],
        [{"op": "create", "title": f"t{i}"} for i in range(101)],
        [{"op": "create", "title": ""}],
        [{"op": "create", "title": "x", "completed": "true"}],
        [{"op": "create", "title": "x", "colour": "red"}],
        [{"op": "rename", "task_id": task["id"]}],
        [{"op": "update", "task_id": "not-a-uuid", "title": "x"}],
        [{"op": "update", "task_id": task["id"], "id": str(uuid.uuid4())}],
        [{"op": "delete"}],
    ]
    for operations in cases:
        response = await batch(client, account, *operations)
        assert response.status_code == 422, (operations[:2], response.text)
        assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert len(await titles(client, account)) == 1


async def test_a_batch_is_owner_scoped(client: Client, account: Account) -> None:
    other = await register(client)
    theirs = await create_task(client, other)
    response = await client.post(
        f"{other.tasks_url}/batch", json={"operations": [{"op": "create", "title": "x"}]}, headers=account.headers
    )
    assert response.status_code == 403
    response = await batch(client, account, {"op": "delete", "task_id": theirs["id"]})
    assert response.status_code == 404
    assert response.json()["operation"] == 0
    assert await titles(client, other) == [theirs["title"]]


async def test_a_batch_honours_idempotency_keys(client: Client, account: Account) -> None:
    first = await batch(client, account, {"op": "create", "title": "once"}, **{"Idempotency-Key": "batch-1"})
    again = await batch(client, account, {"op": "create", "title": "once"}, **{"Idempotency-Key": "batch-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await titles(client, account) == ["once"]
