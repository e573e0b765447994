"""The trash: DELETE moves a task there (404 everywhere else, a delete in the feed), restore brings it back
(an upsert), ?permanent=true and the expiry end it for good; and the list route's completed_since filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from tests.factories import create_task, task_repository
from todo_service.db.models import Task
from todo_service.webhooks.models import WebhookDelivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client


async def trash_ids(client: Client, account: Account) -> list[str]:
    response = await client.get(f"{account.tasks_url}/trash", headers=account.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def feed(client: Client, account: Account, cursor: str | None = None) -> dict[str, Any]:
    params = {"cursor": cursor} if cursor else {}
    response = await client.get(f"{account.tasks_url}/changes", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_delete_moves_a_task_to_the_trash_and_restore_brings_it_back(client: Client, account: Account) -> None:
    task = await create_task(client, account, title="Oops")
    url = f"{account.tasks_url}/{task['id']}"
    cursor = (await feed(client, account))["next_cursor"]

    deleted = await client.delete(url, headers=account.headers)
    assert (deleted.status_code, deleted.json()) == (200, {"message": "Task deleted successfully"})
    # Existing clients: gone everywhere, as before.
    assert (await client.get(url, headers=account.headers)).status_code == 404
    assert (await client.get(account.tasks_url, headers=account.headers)).json()["total"] == 0
    assert (await client.delete(url, headers=account.headers)).status_code == 404
    # Sync clients: a delete.
    page = await feed(client, account, cursor)
    assert [(c["op"], c.get("task_id")) for c in page["changes"]] == [("delete", task["id"])]
    # The trash lists it, with when it expires (30 days by default).
    trash = (await client.get(f"{account.tasks_url}/trash", headers=account.headers)).json()
    (item,) = trash["items"]
    assert (item["id"], item["title"]) == (task["id"], "Oops")
    expires = datetime.fromisoformat(item["trash_expires_at"]) - datetime.fromisoformat(item["deleted_at"])
    assert timedelta(days=29, hours=23) < expires <= timedelta(days=30)

    restored = await client.post(f"{url}/restore", headers=account.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["title"] == "Oops"
    assert restored.headers["ETag"] == restored.json()["etag"] != task["etag"]
    assert (await client.get(url, headers=account.headers)).status_code == 200
    assert await trash_ids(client, account) == []
    page = await feed(client, account, page["next_cursor"])
    assert [(c["op"], c["task"]["id"]) for c in page["changes"]] == [("upsert", task["id"])]
    # Restoring what is not in the trash is a 404.
    again = await client.post(f"{url}/restore", headers=account.headers)
    assert (again.status_code, again.json()["error_code"]) == (404, "TASK_NOT_FOUND")


async def test_permanent_delete_skips_or_empties_the_trash(client: Client, account: Account) -> None:
    live = await create_task(client, account)
    trashed = await create_task(client, account)
    await client.delete(f"{account.tasks_url}/{trashed['id']}", headers=account.headers)
    for task in (live, trashed):
        response = await client.delete(
            f"{account.tasks_url}/{task['id']}", params={"permanent": "true"}, headers=account.headers
        )
        assert response.status_code == 200, response.text
    assert await trash_ids(client, account) == []
    restore = await client.post(f"{account.tasks_url}/{trashed['id']}/restore", headers=account.headers)
    assert restore.status_code == 404
    # The feed reports both as deleted (a sync client applies a delete again harmlessly).
    ops = {c["task_id"]: c["op"] for c in (await feed(client, account))["changes"]}
    assert ops == {live["id"]: "delete", trashed["id"]: "delete"}


async def test_an_expired_task_leaves_the_trash_and_its_tombstone_is_pruned(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    kept = await create_task(client, account)
    expired = await create_task(client, account)
    for task in (kept, expired):
        await client.delete(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    now = datetime.now(UTC)
    async with db_engine.begin() as connection:
        await connection.execute(
            update(Task)
            .where(Task.id == expired["id"])
            .values(deleted_at=now - timedelta(days=31), trash_expires_at=now - timedelta(days=1))
        )
    assert await trash_ids(client, account) == [kept["id"]]
    restore = await client.post(f"{account.tasks_url}/{expired['id']}/restore", headers=account.headers)
    assert restore.status_code == 404
    # The pruner (tombstones older than the retention) takes the expired one, never one still in the trash.
    assert await task_repository(db_engine).prune_tombstones(now + timedelta(days=1)) == 1
    assert await trash_ids(client, account) == [kept["id"]]


async def test_the_trash_is_the_owners(client: Client, account: Account, other_account: Account) -> None:
    task = await create_task(client, account)
    await client.delete(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    other_trash = await client.get(f"{other_account.tasks_url}/trash", headers=account.headers)
    assert other_trash.status_code == 403
    steal = await client.post(f"{other_account.tasks_url}/{task['id']}/restore", headers=other_account.headers)
    assert steal.status_code == 404
    assert await trash_ids(client, account) == [task["id"]]


async def test_a_batch_delete_goes_to_the_trash_too(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    body = {"operations": [{"op": "delete", "task_id": task["id"]}]}
    response = await client.post(f"{account.tasks_url}/batch", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    assert await trash_ids(client, account) == [task["id"]]


async def test_completed_since_and_due_ranges(client: Client, account: Account) -> None:
    done = await create_task(client, account, title="done", completed=True)
    await create_task(client, account, title="open")
    due = await create_task(client, account, title="due", due_date="2030-01-15T09:00:00Z")
    since = datetime.fromisoformat(done["completed_at"])

    async def titles(**params: Any) -> list[str]:
        response = await client.get(account.tasks_url, params=params, headers=account.headers)
        assert response.status_code == 200, response.text
        return sorted(item["title"] for item in response.json()["items"])

    assert await titles(completed_since=since.isoformat()) == ["done"]
    assert await titles(completed_since=(since + timedelta(seconds=1)).isoformat()) == []
    assert await titles(due_after="2030-01-01T00:00:00Z", due_before="2030-02-01T00:00:00Z") == [due["title"]]
    bad = await client.get(account.tasks_url, params={"completed_since": "yesterday"}, headers=account.headers)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "completed_since")


async def test_webhooks_see_trash_as_a_delete_and_restore_as_an_upsert_and_nothing_for_moved_tombstones(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    made = await client.post(
        f"/api/v1/users/{account.id}/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["task.upserted", "task.deleted"]},
        headers=account.headers,
    )
    assert made.status_code == 201, made.text
    lists_url = f"/api/v1/users/{account.id}/lists"
    doomed = (await client.post(lists_url, json={"name": "Doomed"}, headers=account.headers)).json()
    task = await create_task(client, account, list_id=doomed["id"])
    url = f"{account.tasks_url}/{task['id']}"
    await client.delete(url, headers=account.headers)
    await client.post(f"{url}/restore", headers=account.headers)
    await client.delete(url, params={"permanent": "true"}, headers=account.headers)
    # The list goes: its tombstone follows the foreign key to the Inbox, which is no event.
    assert (await client.delete(f"{lists_url}/{doomed['id']}", headers=account.headers)).status_code == 200
    async with db_engine.connect() as connection:
        rows = await connection.execute(
            select(WebhookDelivery.event)
            .where(WebhookDelivery.task_id == task["id"])
            .order_by(WebhookDelivery.revision)
        )
        events = [row[0] for row in rows]
    assert events == ["task.upserted", "task.deleted", "task.upserted", "task.deleted"]
