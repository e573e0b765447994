"""Recurring tasks, all-day dates and time zones through the API: validation, completion, the overdue filter."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.factories import Account, Client, create_task
from todo_service.db.models import TaskCompletion

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def url(account: Account, task: dict[str, Any], suffix: str = "") -> str:
    return f"{account.tasks_url}/{task['id']}{suffix}"


async def complete(client: Client, account: Account, task: dict[str, Any], **headers: str) -> Any:
    return await client.patch(
        url(account, task, "/complete"), json={"completed": True}, headers={**account.headers, **headers}
    )


async def completions(db_engine: AsyncEngine, task: dict[str, Any]) -> list[tuple[Any, ...]]:
    async with db_engine.connect() as connection:
        rows = await connection.execute(
            select(TaskCompletion.due_date, TaskCompletion.due_on)
            .where(TaskCompletion.task_id == uuid.UUID(task["id"]))
            .order_by(TaskCompletion.completed_at)
        )
        return [tuple(row) for row in rows]


async def test_completing_a_recurring_task_moves_it_to_the_next_occurrence_in_its_zone(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    # Every day at 09:00 in Berlin, due the day before the change to summer time.
    task = await create_task(
        client,
        account,
        title="Stand-up",
        due_date="2099-03-28T08:00:00Z",
        rrule="rrule:freq=daily",
        timezone="Europe/Berlin",
    )
    assert task["rrule"] == "FREQ=DAILY"  # normalised
    assert task["timezone"] == "Europe/Berlin"
    done = await complete(client, account, task)
    assert done.status_code == 200, done.text
    after = done.json()
    assert after["completed"] is False
    assert after["completed_at"] is None
    assert after["due_date"] == "2099-03-29T07:00:00Z"  # 09:00 CEST
    assert after["overdue_at"] == after["due_date"]
    assert done.headers["etag"] == after["etag"] != task["etag"]
    assert await completions(db_engine, task) == [(datetime(2099, 3, 28, 8, tzinfo=UTC), None)]


async def test_count_runs_out_and_the_last_completion_is_an_ordinary_one(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    task = await create_task(client, account, due_on="2099-01-31", rrule="FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=2")
    assert task["due_on"] == "2099-01-31"
    assert task["due_date"] is None
    first = (await complete(client, account, task)).json()
    assert (first["due_on"], first["rrule"], first["completed"]) == (
        "2099-02-28",
        "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=1",
        False,
    )
    last = (await complete(client, account, task)).json()
    assert last["completed"] is True
    assert last["due_on"] == "2099-02-28"
    assert await completions(db_engine, task) == [(None, date(2099, 1, 31))]


async def test_an_overdue_series_skips_the_missed_occurrences(client: Client, account: Account) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=3)
    task = await create_task(client, account, due_date=yesterday.isoformat(), rrule="FREQ=DAILY")
    after = (await complete(client, account, task)).json()
    due = datetime.fromisoformat(after["due_date"])
    assert datetime.now(UTC) < due <= datetime.now(UTC) + timedelta(days=1)
    assert due.time() == yesterday.replace(tzinfo=UTC).time().replace(microsecond=due.microsecond)


async def test_if_match_guards_the_completion_of_a_recurring_task(client: Client, account: Account) -> None:
    task = await create_task(client, account, due_date="2099-01-01T09:00:00Z", rrule="FREQ=WEEKLY")
    stale = await complete(client, account, task, **{"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == task["etag"]
    fresh = await complete(client, account, task, **{"If-Match": task["etag"]})
    assert fresh.json()["due_date"] == "2099-01-08T09:00:00Z"


async def test_reopening_and_a_task_without_a_rule_behave_as_before(client: Client, account: Account) -> None:
    plain = await create_task(client, account, due_date="2099-01-01T09:00:00Z")
    assert (await complete(client, account, plain)).json()["completed"] is True
    recurring = await create_task(client, account, due_date="2099-01-01T09:00:00Z", rrule="FREQ=DAILY")
    reopened = await client.patch(
        url(account, recurring, "/complete"), json={"completed": False}, headers=account.headers
    )
    assert reopened.json()["due_date"] == "2099-01-01T09:00:00Z"


async def test_invalid_schedules_are_422_naming_the_field(client: Client, account: Account) -> None:
    cases = [
        ({"rrule": "FREQ=DAILY"}, "rrule", "needs a due_date or a due_on"),
        ({"due_date": "2099-01-01T09:00:00Z", "rrule": "FREQ=SECONDLY"}, "rrule", "FREQ must be one of"),
        ({"due_date": "2099-01-01T09:00:00Z", "rrule": "FREQ=DAILY;COUNT=5000"}, "rrule", "COUNT must be"),
        ({"due_on": "2099-01-01", "rrule": "FREQ=DAILY;BYHOUR=9"}, "rrule", "all-day"),
        ({"due_on": "2099-01-01", "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule", "no occurrence"),
        ({"due_on": "2099-01-01", "due_date": "2099-01-01T09:00:00Z"}, "due_on", "not both"),
        ({"timezone": "Mars/Olympus"}, "timezone", "not a known IANA time zone"),
    ]
    for body, field, message in cases:
        response = await client.post(account.tasks_url, json={"title": "x", **body}, headers=account.headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["errors"][0]
        assert (error["field"], message in error["message"]) == (field, True), (body, error)
    task = await create_task(client, account, due_date="2099-01-01T09:00:00Z", rrule="FREQ=DAILY")
    cleared = await client.put(url(account, task), json={"due_date": None}, headers=account.headers)
    assert cleared.status_code == 422  # the rule would be left without a due
    both = await client.put(url(account, task), json={"due_date": None, "rrule": None}, headers=account.headers)
    assert both.status_code == 200, both.text
    # A PUT of what a GET returned changes nothing.
    again = (await client.get(url(account, task), headers=account.headers)).json()
    same = await client.put(url(account, task), json=again, headers=account.headers)
    assert same.status_code == 200, same.text
    assert same.json()["etag"] == again["etag"]


async def overdue(client: Client, account: Account) -> set[str]:
    response = await client.get(account.tasks_url, params={"overdue": "true"}, headers=account.headers)
    assert response.status_code == 200, response.text
    not_overdue = await client.get(account.tasks_url, params={"overdue": "false"}, headers=account.headers)
    titles = {task["title"] for task in response.json()["items"]}
    assert not titles & {task["title"] for task in not_overdue.json()["items"]}
    return titles


async def test_an_all_day_task_is_overdue_after_the_end_of_its_date_in_its_zone(
    client: Client, account: Account
) -> None:
    now = datetime.now(UTC)
    # Zones where it is already tomorrow, and still yesterday, compared with UTC (for most of the day).
    ahead, behind = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14, UTC-11
    today_ahead = now.astimezone(ZoneInfo(ahead)).date()
    today_behind = now.astimezone(ZoneInfo(behind)).date()
    yesterday_ahead = today_ahead - timedelta(days=1)
    await create_task(client, account, title="due yesterday ahead", due_on=str(yesterday_ahead), timezone=ahead)
    await create_task(client, account, title="due today ahead", due_on=str(today_ahead), timezone=ahead)
    await create_task(client, account, title="due today behind", due_on=str(today_behind), timezone=behind)
    await create_task(client, account, title="past instant", due_date=(now - timedelta(minutes=1)).isoformat())
    await create_task(client, account, title="future instant", due_date=(now + timedelta(hours=1)).isoformat())
    done = await create_task(client, account, title="done", due_on="2000-01-01")
    await complete(client, account, done)
    assert await overdue(client, account) == {"due yesterday ahead", "past instant"}


async def test_all_day_tasks_without_a_zone_follow_the_owners(client: Client, account: Account) -> None:
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert me.json()["timezone"] is None
    kiritimati_today = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    yesterday_there = kiritimati_today - timedelta(days=1)
    task = await create_task(client, account, title="floating", due_on=str(yesterday_there))
    utc_today = datetime.now(UTC).date()
    # In UTC the date is over only when it is before today there.
    assert (await overdue(client, account) == {"floating"}) == (yesterday_there < utc_today)

    changed = await client.put("/api/v1/users/me", json={"timezone": "Pacific/Kiritimati"}, headers=account.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["timezone"] == "Pacific/Kiritimati"
    assert await overdue(client, account) == {"floating"}  # its date is over in the owner's new zone
    assert task["timezone"] is None

    refused = await client.put("/api/v1/users/me", json={"timezone": "Nowhere/Land"}, headers=account.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "timezone"
    cleared = await client.put("/api/v1/users/me", json={"timezone": None}, headers=account.headers)
    assert cleared.json()["timezone"] is None


async def test_a_recurring_all_day_task_in_the_owners_zone(client: Client, account: Account) -> None:
    await client.put("/api/v1/users/me", json={"timezone": "America/New_York"}, headers=account.headers)
    task = await create_task(client, account, due_on="2099-03-07", rrule="FREQ=WEEKLY;BYDAY=SA,SU")
    after = (await complete(client, account, task)).json()
    assert after["due_on"] == "2099-03-08"
    assert after["overdue_at"] == "2099-03-09T04:00:00Z"  # midnight in New York, summer time begun


async def test_a_put_or_a_batch_that_completes_a_recurring_task_moves_it_on_too(
    client: Client, account: Account
) -> None:
    task = await create_task(client, account, due_date="2099-01-01T09:00:00Z", rrule="FREQ=DAILY")
    put = await client.put(
        url(account, task),
        json={"title": "renamed", "completed": True},
        headers={**account.headers, "If-Match": task["etag"]},
    )
    assert put.status_code == 200, put.text
    assert (put.json()["title"], put.json()["completed"], put.json()["due_date"]) == (
        "renamed",
        False,
        "2099-01-02T09:00:00Z",
    )
    batch = await client.post(
        f"{account.tasks_url}/batch",
        json={"operations": [{"op": "update", "task_id": task["id"], "completed": True}]},
        headers=account.headers,
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0]["task"]["due_date"] == "2099-01-03T09:00:00Z"
    stale = await client.put(
        url(account, task), json={"completed": True}, headers={**account.headers, "If-Match": task["etag"]}
    )
    assert stale.status_code == 412
