"""A fired reminder in the change feed (an upsert with ``reminder.fire_at``) and on SSE (``event: task.reminder``).

The mark holds while the task is at the revision the reminder worker stamped; the next write of
the task makes it an ordinary upsert again. The SSE test runs a real ``todo-service run`` whose own
worker fires the reminder (polling every 0.2 s): on PostgreSQL the NOTIFY wakes the stream, on
SQLite the worker's in-process hook.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.factories import Account, Client, create_task
from tests.integration.test_events_sse import register, stream
from tests.processes import running_service, service_env
from todo_service.db.database import create_statements
from todo_service.reminders.worker import ReminderWorker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.integration.test_events_sse import User
    from tests.processes import LiveService


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def changes(client: Client, account: Account, cursor: str | None) -> dict[str, Any]:
    params = {"cursor": cursor} if cursor else {}
    answer = await client.get(f"{account.tasks_url}/changes", params=params, headers=account.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def remind(client: Client, account: Account, task_id: str, at: datetime) -> None:
    path = f"{account.tasks_url}/{task_id}/reminders"
    answer = await client.put(path, json={"reminders": [{"at": at.isoformat()}]}, headers=account.headers)
    assert answer.status_code == 200, answer.text


async def test_the_feed_marks_a_fired_reminder_until_the_task_changes_again(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    task = await create_task(client, account, title="Call the bank")
    other = await create_task(client, account, title="Unrelated")
    cursor = (await changes(client, account, None))["next_cursor"]
    past = datetime.now(UTC) - timedelta(minutes=1)
    await remind(client, account, task["id"], past)

    worker = ReminderWorker(create_statements(db_engine))
    for _ in range(100):  # the app's own worker may take it first: fired once either way
        await worker.fire()
        page = await changes(client, account, cursor)
        if page["changes"]:
            break
        await asyncio.sleep(0.1)
    (change,) = page["changes"]
    assert change["op"] == "upsert"
    assert instant(change["reminder"]["fire_at"]) == past
    assert change["task"]["reminded_at"] == change["reminder"]["fire_at"]
    read = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
    assert change["task"] == read
    # Ordinary changes carry no reminder key at all (a sync client sees the shape it always saw).
    plain = (await changes(client, account, None))["changes"]
    assert [c for c in plain if c["task"]["id"] == other["id"]] == [{"op": "upsert", "task": other}]
    # Fired once: another pass finds nothing due, and the feed has nothing new.
    assert await worker.fire() == 0
    assert (await changes(client, account, page["next_cursor"]))["changes"] == []

    edited = await client.put(f"{account.tasks_url}/{task['id']}", json={"title": "Called"}, headers=account.headers)
    assert edited.status_code == 200, edited.text
    (after,) = (await changes(client, account, page["next_cursor"]))["changes"]
    assert after == {"op": "upsert", "task": edited.json()}
    assert after["task"]["reminded_at"] == change["task"]["reminded_at"]  # still when it last fired


# -- live events, against a real server ------------------------------------------------------------


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    env = service_env(
        DATABASE_URL=database_url,
        RATE_LIMIT_ENABLED="false",
        REMINDERS_POLL_SECONDS="0.2",
        EVENTS_POLL_SECONDS="60",  # so an event within seconds came through the wake-up, not a poll
        EVENTS_HEARTBEAT_SECONDS="1",
    )
    with running_service(cwd=tmp_path_factory.mktemp("reminder-events"), env=env) as service:
        yield service


@pytest.fixture
async def http(live: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as client:
        yield client


async def put_reminder(http: httpx.AsyncClient, user: User, task_id: str, at: datetime) -> None:
    body = {"reminders": [{"at": at.isoformat()}]}
    answer = await http.put(f"{user.tasks}/{task_id}/reminders", json=body, headers=user.auth)
    assert answer.status_code == 200, answer.text


async def test_sse_names_a_fired_reminder_task_reminder_and_a_later_edit_task_upserted(
    http: httpx.AsyncClient,
) -> None:
    user = await register(http)
    async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
        created = (await http.post(user.tasks, json={"title": "Stand up"}, headers=user.auth)).json()
        first = await events.next()
        assert (first.event, first.data) == ("task.upserted", {"op": "upsert", "task": created})

        past = datetime.now(UTC) - timedelta(seconds=30)
        await put_reminder(http, user, created["id"], past)
        fired = await events.next()  # the server's own worker, within a poll or two
        assert fired.event == "task.reminder"
        assert fired.data["op"] == "upsert"
        assert instant(fired.data["reminder"]["fire_at"]) == past
        assert fired.data["task"] == (await http.get(f"{user.tasks}/{created['id']}", headers=user.auth)).json()
        page = (await http.get(f"{user.tasks}/changes", params={"cursor": first.id}, headers=user.auth)).json()
        assert (page["changes"], page["next_cursor"]) == ([fired.data], fired.id)

        edited = await http.put(f"{user.tasks}/{created['id']}", json={"title": "Sit down"}, headers=user.auth)
        again = await events.next()  # the edit's, not a second firing (a reminder fires once)
        assert (again.event, again.data) == ("task.upserted", {"op": "upsert", "task": edited.json()})
    # Resuming from before the reminder: the task as it is now, an ordinary upsert.
    async with stream(http, f"{user.tasks}/events", headers={**user.auth, "Last-Event-ID": first.id or ""}) as events:
        resumed = await events.next()
        assert (resumed.event, resumed.data) == ("task.upserted", {"op": "upsert", "task": edited.json()})
