"""Reminders: set and read, following the due, fired once as a change and a webhook event, even when workers race."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from tests.factories import Account, Client, create_task
from tests.webhook_receiver import Receiver, webhook_receiver
from todo_service.db.database import create_statements
from todo_service.db.models import TaskReminder
from todo_service.reminders.worker import ReminderWorker
from todo_service.webhooks.models import WebhookDelivery

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def url(account: Account, task: dict[str, Any]) -> str:
    return f"{account.tasks_url}/{task['id']}/reminders"


async def put(client: Client, account: Account, task: dict[str, Any], *reminders: dict[str, Any]) -> Any:
    return await client.put(url(account, task), json={"reminders": list(reminders)}, headers=account.headers)


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_reminders_are_set_read_and_follow_the_due(client: Client, account: Account) -> None:
    task = await create_task(client, account, due_date="2099-01-01T09:00:00Z", rrule="FREQ=DAILY")
    response = await put(client, account, task, {"before_due": 3600}, {"at": "2098-12-31T20:00:00Z"})
    assert response.status_code == 200, response.text
    reminders = response.json()["reminders"]
    assert [(r["at"], r["before_due"], r["fire_at"], r["fired_at"]) for r in reminders] == [
        ("2098-12-31T20:00:00Z", None, "2098-12-31T20:00:00Z", None),
        (None, 3600, "2099-01-01T08:00:00Z", None),
    ]
    moved = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"due_date": "2099-02-01T10:00:00Z"}, headers=account.headers
    )
    assert moved.status_code == 200, moved.text
    read = (await client.get(url(account, task), headers=account.headers)).json()["reminders"]
    assert [r["fire_at"] for r in read] == ["2098-12-31T20:00:00Z", "2099-02-01T09:00:00Z"]
    # The next occurrence of a recurring task: the relative reminder moves with it.
    await client.patch(f"{account.tasks_url}/{task['id']}/complete", json={"completed": True}, headers=account.headers)
    read = (await client.get(url(account, task), headers=account.headers)).json()["reminders"]
    assert read[1]["fire_at"] == "2099-02-02T09:00:00Z"
    cleared = await put(client, account, task)
    assert cleared.json() == {"reminders": []}


async def test_reminder_validation_and_ownership(client: Client, account: Account, other_account: Account) -> None:
    task = await create_task(client, account)
    both = await put(client, account, task, {"at": "2099-01-01T00:00:00Z", "before_due": 60})
    assert both.status_code == 422
    assert both.json()["errors"][0]["field"] == "reminders[0]"
    assert (await put(client, account, task, {})).status_code == 422
    assert (await put(client, account, task, {"before_due": -1})).status_code == 422
    assert (await put(client, account, task, *([{"before_due": 60}] * 11))).status_code == 422
    assert (await put(client, account, task, {"at": "2099-01-01T00:00:00"})).status_code == 422  # no offset
    no_due = await put(client, account, task, {"before_due": 60})
    assert no_due.json()["reminders"][0]["fire_at"] is None  # fires once the task has a due
    assert (await put(client, other_account, task, {"before_due": 60})).status_code == 404  # not among theirs
    foreign = await client.put(url(account, task), json={"reminders": []}, headers=other_account.headers)
    assert foreign.status_code == 403
    missing = {"id": str(uuid.uuid4())}
    assert (await put(client, account, missing, {"before_due": 60})).status_code == 404
    assert (await client.get(url(account, missing), headers=account.headers)).status_code == 404


async def test_a_due_reminder_fires_once_as_a_change_and_a_webhook_event(
    client: Client, account: Account, db_engine: AsyncEngine, receiver: Receiver
) -> None:
    hook = await client.post(
        f"/api/v1/users/{account.id}/webhooks",
        json={"url": receiver.url, "events": ["task.upserted"]},
        headers=account.headers,
    )
    assert hook.status_code == 201, hook.text
    task = await create_task(client, account, title="Call the bank")
    cursor = (await client.get(f"{account.tasks_url}/changes", headers=account.headers)).json()["next_cursor"]
    past = datetime.now(UTC) - timedelta(minutes=1)
    await put(client, account, task, {"at": past.isoformat()})

    worker = ReminderWorker(create_statements(db_engine))
    for _ in range(100):  # the app's own worker may take it first (and commit a moment later): once either way
        await worker.fire()
        read = (await client.get(url(account, task), headers=account.headers)).json()["reminders"]
        if read[0]["fired_at"] is not None:
            break
        await asyncio.sleep(0.1)
    assert read[0]["fired_at"] is not None
    now = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
    assert utc(now["reminded_at"]) == past
    changes = (await client.get(f"{account.tasks_url}/changes?cursor={cursor}", headers=account.headers)).json()
    assert [change["task"]["reminded_at"] for change in changes["changes"]] == [now["reminded_at"]]

    async with db_engine.connect() as connection:
        rows = (
            await connection.execute(select(WebhookDelivery.payload).where(WebhookDelivery.event == "task.reminder"))
        ).all()
    assert len(rows) == 1
    payload = json.loads(rows[0][0])
    assert payload["type"] == "task.reminder"
    assert payload["data"]["task_id"] == task["id"]
    assert payload["data"]["title"] == "Call the bank"
    for _ in range(200):  # delivered, signed, by the delivery worker
        if any(json.loads(received.body).get("type") == "task.reminder" for received in receiver.requests):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the task.reminder event was not delivered")


async def test_racing_workers_fire_each_reminder_once(
    client: Client, account: Account, db_engine: AsyncEngine, backend: str, receiver: Receiver
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: workers cannot race")
    hook = await client.post(
        f"/api/v1/users/{account.id}/webhooks",
        json={"url": receiver.url, "events": ["task.upserted"]},
        headers=account.headers,
    )
    assert hook.status_code == 201, hook.text
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    tasks = [await create_task(client, account) for _ in range(30)]
    for task in tasks:
        await put(client, account, task, *({"at": past} for _ in range(5)))
    workers = [ReminderWorker(create_statements(db_engine), batch=7) for _ in range(4)]
    claimed = await asyncio.gather(*(worker.step() for worker in workers))
    assert all(text.startswith("fired ") for text in claimed)
    # The app's own worker may hold a batch it claimed (its rows skipped by these): wait for its commit.
    for _ in range(100):
        async with db_engine.connect() as connection:
            unfired = await connection.scalar(select(func.count()).where(TaskReminder.fired_at.is_(None)))
            events = await connection.execute(
                select(WebhookDelivery.payload).where(WebhookDelivery.event == "task.reminder")
            )
            reminder_ids = [json.loads(row[0])["data"]["reminder_id"] for row in events]
        if unfired == 0 and len(reminder_ids) >= 150:
            break
        await asyncio.sleep(0.1)
    # The session app's delivery worker would go on sending them into the next tests: stop it here.
    webhook = f"/api/v1/users/{account.id}/webhooks/{hook.json()['id']}"
    assert (await client.delete(webhook, headers=account.headers)).status_code in {200, 204}
    assert unfired == 0
    assert len(reminder_ids) == 150
    assert len(set(reminder_ids)) == 150  # each fired once, whichever worker took it
