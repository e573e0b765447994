"""Tasks CRUD: create, read, partial update, completion and delete, as the contract describes them."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import Account, Client, create_task

TASK_FIELDS = {
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "completed_at",
    "created_at",
    "updated_at",
}
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def parse_utc(value: str) -> datetime:
    """An output datetime: ISO 8601 with a UTC offset (``Z`` or ``±hh:mm``), which must be zero."""
    assert OFFSET_SUFFIX.search(value), f"{value!r} carries no UTC offset"
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"{value!r} is not in UTC"
    return parsed


def task_url(account: Account, task_id: str) -> str:
    return f"{account.tasks_url}/{task_id}"


async def get_task(client: Client, account: Account, task_id: str) -> dict[str, Any]:
    response = await client.get(task_url(account, task_id), headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_create_answers_201_with_the_full_task_and_defaults(client: Client, account: Account) -> None:
    before = datetime.now(UTC)
    response = await client.post(account.tasks_url, json={"title": "Write the report"}, headers=account.headers)
    after = datetime.now(UTC)

    assert response.status_code == 201, response.text
    task = response.json()
    assert set(task) >= TASK_FIELDS
    assert UUID_PATTERN.match(task["id"])
    assert task["user_id"] == account.id
    assert task["title"] == "Write the report"
    assert task["description"] is None
    assert task["completed"] is False
    assert task["priority"] == "medium"
    assert task["due_date"] is None
    assert task["completed_at"] is None
    created_at = parse_utc(task["created_at"])
    assert before <= created_at <= after
    assert parse_utc(task["updated_at"]) == created_at


async def test_create_stores_every_given_field(client: Client, account: Account) -> None:
    body = {
        "title": "Pay rent",
        "description": "Before the 5th",
        "priority": "urgent",
        "due_date": "2030-05-01T09:30:00Z",
    }
    response = await client.post(account.tasks_url, json=body, headers=account.headers)

    assert response.status_code == 201, response.text
    task = response.json()
    assert (task["title"], task["description"], task["priority"]) == ("Pay rent", "Before the 5th", "urgent")
    assert parse_utc(task["due_date"]) == datetime(2030, 5, 1, 9, 30, tzinfo=UTC)
    assert task["completed"] is False
    assert task["completed_at"] is None


async def test_location_header_points_at_the_new_task(client: Client, account: Account) -> None:
    response = await client.post(account.tasks_url, json={"title": "Find me"}, headers=account.headers)
    assert response.status_code == 201
    task = response.json()

    location = response.headers["location"]
    assert location.endswith(f"{account.tasks_url}/{task['id']}")
    fetched = await client.get(location, headers=account.headers)
    assert fetched.status_code == 200
    assert fetched.json() == task


async def test_due_date_without_offset_is_refused(client: Client, account: Account) -> None:
    response = await client.post(
        account.tasks_url, json={"title": "t", "due_date": "2030-01-01T10:00:00"}, headers=account.headers
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {
            "field": "due_date",
            "message": "must be an ISO 8601 date and time with a UTC offset, like 2030-01-31T17:00:00Z or null",
            "source": "body",
        }
    ]


async def test_due_date_with_offset_is_returned_in_utc(client: Client, account: Account) -> None:
    task = await create_task(client, account, due_date="2030-01-01T10:00:00+02:00")

    assert parse_utc(task["due_date"]) == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    stored = await get_task(client, account, task["id"])
    assert parse_utc(stored["due_date"]) == datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


async def test_put_due_date_is_normalised_to_utc_too(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task["id"])

    naive = await client.put(url, json={"due_date": "2031-03-01T10:00:00"}, headers=account.headers)
    assert naive.status_code == 422, naive.text

    offset = await client.put(url, json={"due_date": "2031-03-01T10:00:00-05:00"}, headers=account.headers)
    assert offset.status_code == 200, offset.text
    assert parse_utc(offset.json()["due_date"]) == datetime(2031, 3, 1, 15, 0, tzinfo=UTC)
    assert parse_utc((await get_task(client, account, task["id"]))["due_date"]) == datetime(
        2031, 3, 1, 15, 0, tzinfo=UTC
    )


async def test_get_returns_the_task_as_created(client: Client, account: Account) -> None:
    task = await create_task(client, account, description="details", priority="low")

    assert await get_task(client, account, task["id"]) == task


async def test_put_changes_only_the_fields_sent(client: Client, account: Account) -> None:
    task = await create_task(
        client, account, title="Old", description="keep me", priority="low", due_date="2030-01-01T00:00:00Z"
    )
    await asyncio.sleep(0.01)

    response = await client.put(task_url(account, task["id"]), json={"priority": "high"}, headers=account.headers)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["priority"] == "high"
    unchanged = ("id", "user_id", "title", "description", "completed", "due_date", "completed_at", "created_at")
    assert {k: updated[k] for k in unchanged} == {k: task[k] for k in unchanged}
    assert parse_utc(updated["updated_at"]) > parse_utc(task["updated_at"])
    assert await get_task(client, account, task["id"]) == updated


async def test_put_replaces_title_and_description(client: Client, account: Account) -> None:
    task = await create_task(client, account, title="Old", description="old text")

    response = await client.put(
        task_url(account, task["id"]), json={"title": "New", "description": "new text"}, headers=account.headers
    )

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["description"]) == ("New", "new text")


async def test_put_null_clears_description_and_due_date(client: Client, account: Account) -> None:
    task = await create_task(client, account, description="text", due_date="2030-01-01T00:00:00Z")

    response = await client.put(
        task_url(account, task["id"]), json={"description": None, "due_date": None}, headers=account.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["description"] is None
    assert response.json()["due_date"] is None
    stored = await get_task(client, account, task["id"])
    assert (stored["description"], stored["due_date"], stored["title"]) == (None, None, task["title"])


async def test_put_null_title_is_refused(client: Client, account: Account) -> None:
    task = await create_task(client, account)

    response = await client.put(task_url(account, task["id"]), json={"title": None}, headers=account.headers)

    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert await get_task(client, account, task["id"]) == task


async def test_put_empty_body_changes_nothing(client: Client, account: Account) -> None:
    task = await create_task(client, account, description="same")
    await asyncio.sleep(0.01)

    response = await client.put(task_url(account, task["id"]), json={}, headers=account.headers)

    assert response.status_code == 200
    assert response.json() == task
    assert await get_task(client, account, task["id"]) == task


async def test_patch_complete_stamps_then_keeps_then_clears_completed_at(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = f"{task_url(account, task['id'])}/complete"

    before = datetime.now(UTC)
    done = await client.patch(url, json={"completed": True}, headers=account.headers)
    after = datetime.now(UTC)
    assert done.status_code == 200, done.text
    assert done.json()["completed"] is True
    completed_at = parse_utc(done.json()["completed_at"])
    assert before <= completed_at <= after
    assert done.json()["created_at"] == task["created_at"]

    await asyncio.sleep(0.01)
    again = await client.patch(url, json={"completed": True}, headers=account.headers)
    assert again.status_code == 200
    assert again.json()["completed"] is True
    assert parse_utc(again.json()["completed_at"]) == completed_at

    reopened = await client.patch(url, json={"completed": False}, headers=account.headers)
    assert reopened.status_code == 200
    assert reopened.json()["completed"] is False
    assert reopened.json()["completed_at"] is None
    assert await get_task(client, account, task["id"]) == reopened.json()


async def test_put_completed_stamps_then_keeps_then_clears_completed_at(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task["id"])

    before = datetime.now(UTC)
    done = await client.put(url, json={"completed": True}, headers=account.headers)
    after = datetime.now(UTC)
    assert done.status_code == 200, done.text
    assert done.json()["completed"] is True
    completed_at = parse_utc(done.json()["completed_at"])
    assert before <= completed_at <= after

    await asyncio.sleep(0.01)
    again = await client.put(url, json={"completed": True, "title": "Renamed"}, headers=account.headers)
    assert again.status_code == 200
    assert parse_utc(again.json()["completed_at"]) == completed_at

    reopened = await client.put(url, json={"completed": False}, headers=account.headers)
    assert reopened.status_code == 200
    assert (reopened.json()["completed"], reopened.json()["completed_at"]) == (False, None)
    assert reopened.json()["title"] == "Renamed"


async def test_create_completed_stamps_completed_at(client: Client, account: Account) -> None:
    before = datetime.now(UTC)
    task = await create_task(client, account, completed=True)
    after = datetime.now(UTC)

    assert task["completed"] is True
    assert before <= parse_utc(task["completed_at"]) <= after


async def test_delete_answers_message_then_the_task_is_gone(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task["id"])

    response = await client.delete(url, headers=account.headers)
    assert response.status_code == 200
    assert response.json() == {"message": "Task deleted successfully"}

    gone = await client.get(url, headers=account.headers)
    assert gone.status_code == 404
    assert gone.json()["error_code"] == "TASK_NOT_FOUND"
    assert gone.json()["status_code"] == 404

    again = await client.delete(url, headers=account.headers)
    assert again.status_code == 404
    assert again.json()["error_code"] == "TASK_NOT_FOUND"

    listing = await client.get(account.tasks_url, headers=account.headers)
    assert listing.json()["total"] == 0


async def test_delete_removes_only_that_task(client: Client, account: Account) -> None:
    keep = await create_task(client, account)
    drop = await create_task(client, account)

    assert (await client.delete(task_url(account, drop["id"]), headers=account.headers)).status_code == 200

    assert await get_task(client, account, keep["id"]) == keep
    listing = (await client.get(account.tasks_url, headers=account.headers)).json()
    assert [item["id"] for item in listing["items"]] == [keep["id"]]


async def test_updating_a_deleted_task_answers_404(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task["id"])
    await client.delete(url, headers=account.headers)

    put = await client.put(url, json={"title": "x"}, headers=account.headers)
    patch = await client.patch(f"{url}/complete", json={"completed": True}, headers=account.headers)

    assert (put.status_code, put.json()["error_code"]) == (404, "TASK_NOT_FOUND")
    assert (patch.status_code, patch.json()["error_code"]) == (404, "TASK_NOT_FOUND")
