"""A webhook's ``data.task`` is the task as ``GET .../tasks/{id}`` answers it at that change's revision.

The outbox rows are read from the database (the delivery worker sends exactly that payload, signed):
one per change, with every field of ``TaskRead``, labels included, on both databases.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from tests.factories import Account, Client, create_task
from tests.webhook_receiver import webhook_receiver
from todo_service.webhooks.models import WebhookDelivery

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
async def hook(client: Client, account: Account, db_engine: AsyncEngine) -> AsyncIterator[str]:
    """A webhook of ``account`` on task changes; deleted after the test (its deliveries with it).

    The session app's delivery worker sends to the receiver meanwhile; the webhook goes only once no
    delivery is still pending, so that no attempt is recorded against a delivery deleted under it.
    """
    with webhook_receiver() as receiver:
        path = f"/api/v1/users/{account.id}/webhooks"
        body = {"url": receiver.url, "events": ["task.upserted", "task.deleted"]}
        made = await client.post(path, json=body, headers=account.headers)
        assert made.status_code == 201, made.text
        webhook_id = made.json()["id"]
        yield webhook_id
        pending = select(func.count()).where(
            WebhookDelivery.webhook_id == uuid.UUID(webhook_id), WebhookDelivery.status == "pending"
        )
        for _ in range(200):
            async with db_engine.connect() as connection:
                if await connection.scalar(pending) == 0:
                    break
            await asyncio.sleep(0.05)
        assert (await client.delete(f"{path}/{webhook_id}", headers=account.headers)).status_code in {200, 204}


async def outboxed(engine: AsyncEngine, webhook_id: str, task_id: str) -> list[tuple[str, int, dict[str, Any]]]:
    """(event, revision, payload) of the webhook's deliveries of the task, in revision order."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(WebhookDelivery.event, WebhookDelivery.revision, WebhookDelivery.payload)
            .where(
                WebhookDelivery.webhook_id == uuid.UUID(webhook_id),
                WebhookDelivery.task_id == uuid.UUID(task_id),
            )
            .order_by(WebhookDelivery.revision)
        )
        return [(event, int(revision), json.loads(payload)) for event, revision, payload in rows]


async def get(client: Client, account: Account, task_id: str) -> dict[str, Any]:
    answer = await client.get(f"{account.tasks_url}/{task_id}", headers=account.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def labels(client: Client, account: Account, *names: str) -> list[str]:
    made = []
    for name in names:
        answer = await client.post(f"/api/v1/users/{account.id}/labels", json={"name": name}, headers=account.headers)
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    return made


async def test_a_created_task_with_everything_is_delivered_as_get_answers_it(
    client: Client, account: Account, db_engine: AsyncEngine, hook: str
) -> None:
    answer = await client.post(f"/api/v1/users/{account.id}/lists", json={"name": "Home"}, headers=account.headers)
    assert answer.status_code == 201, answer.text
    home = answer.json()["id"]
    parent = await create_task(client, account, list_id=home)
    label_ids = await labels(client, account, "red", "blue", "green")
    task = await create_task(
        client,
        account,
        title="Water the plants",
        description="All of them",
        priority="high",
        list_id=home,
        parent_id=parent["id"],
        label_ids=label_ids,
        due_on="2099-03-01",
        timezone="Europe/Berlin",
        rrule="FREQ=WEEKLY;BYDAY=MO",
    )
    read = await get(client, account, task["id"])
    assert sorted(read["label_ids"]) == sorted(label_ids)
    assert (read["list_id"], read["parent_id"], read["due_on"]) == (home, parent["id"], "2099-03-01")

    (delivery,) = await outboxed(db_engine, hook, task["id"])
    event, revision, payload = delivery
    assert (event, payload["type"]) == ("task.upserted", "task.upserted")
    assert payload["data"]["task"] == read
    assert read["etag"] == f'"{revision}"'
    assert payload["timestamp"] == read["updated_at"]


async def test_each_change_carries_the_labels_of_that_change(
    client: Client, account: Account, db_engine: AsyncEngine, hook: str
) -> None:
    first, second = await labels(client, account, "one", "two")
    task = await create_task(client, account, label_ids=[first], due_date="2099-01-01T10:00:00.5Z")
    created = await get(client, account, task["id"])
    # At once, before any delivery went out: the creation's delivery keeps the labels of the creation.
    changed = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"label_ids": [second], "title": "Renamed"}, headers=account.headers
    )
    assert changed.status_code == 200, changed.text
    done = await client.patch(
        f"{account.tasks_url}/{task['id']}/complete", json={"completed": True}, headers=account.headers
    )
    assert done.status_code == 200, done.text
    labels_only = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"label_ids": [first, second]}, headers=account.headers
    )
    assert labels_only.status_code == 200, labels_only.text
    assert (await client.delete(f"{account.tasks_url}/{task['id']}", headers=account.headers)).status_code == 200

    deliveries = await outboxed(db_engine, hook, task["id"])
    assert [event for event, _, _ in deliveries] == ["task.upserted"] * 4 + ["task.deleted"]
    tasks = [payload["data"]["task"] for _, _, payload in deliveries[:4]]
    assert tasks == [created, changed.json(), done.json(), labels_only.json()]
    assert [task["label_ids"] for task in tasks] == [[first], [second], [second], sorted([first, second])]
    assert tasks[0]["due_date"] == "2099-01-01T10:00:00.500000Z"
    deleted = deliveries[4][2]
    assert deleted["data"]["task_id"] == task["id"]
    assert deleted["timestamp"] == deleted["data"]["deleted_at"]


async def test_a_put_that_completes_a_recurring_task_is_delivered_as_it_ends(
    client: Client, account: Account, db_engine: AsyncEngine, hook: str
) -> None:
    task = await create_task(client, account, due_date="2099-01-04T09:00:00Z", rrule="FREQ=DAILY")
    # One transaction: the title first, then the occurrence completed (the task moves to the next one).
    answer = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"title": "Stretch", "completed": True}, headers=account.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["due_date"] == "2099-01-05T09:00:00Z"
    *_, (event, revision, payload) = await outboxed(db_engine, hook, task["id"])
    assert event == "task.upserted"
    assert payload["data"]["task"] == answer.json() == await get(client, account, task["id"])
    assert answer.json()["etag"] == f'"{revision}"'


async def test_deleting_a_label_delivers_its_tasks_without_it(
    client: Client, account: Account, db_engine: AsyncEngine, hook: str
) -> None:
    kept, gone = await labels(client, account, "kept", "gone")
    task = await create_task(client, account, label_ids=[kept, gone])
    deleted = await client.delete(f"/api/v1/users/{account.id}/labels/{gone}", headers=account.headers)
    assert deleted.status_code in {200, 204}, deleted.text
    read = await get(client, account, task["id"])
    assert read["label_ids"] == [kept]
    (_, _, created), (event, revision, touched) = await outboxed(db_engine, hook, task["id"])
    assert sorted(created["data"]["task"]["label_ids"]) == sorted([kept, gone])
    assert (event, touched["data"]["task"]) == ("task.upserted", read)
    assert read["etag"] == f'"{revision}"'
