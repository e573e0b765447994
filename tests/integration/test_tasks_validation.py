"""Bad input on the task routes: 4xx with the contract's error body, and nothing created or changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Account, Client, create_task

ERROR_FIELDS = {"detail", "error_code", "timestamp", "path", "status_code"}

# (body, field the error must name)
INVALID_BODIES: list[tuple[Any, str]] = [
    ({"title": ""}, "title"),
    ({"title": "   \t\n"}, "title"),
    ({"title": "a" * 256}, "title"),
    ({"title": "ok", "description": "d" * 1001}, "description"),
    ({"title": 5}, "title"),
    ({"title": "ok", "completed": "yes"}, "completed"),
    ({"title": "ok", "priority": 3}, "priority"),
    ({"title": "ok", "priority": "critical"}, "priority"),
    ({"title": "ok", "due_date": "tomorrow"}, "due_date"),
    ({"title": "ok", "due_date": "2024-13-45"}, "due_date"),
    ({"title": "a\x00b"}, "title"),
    ({"title": "ok", "description": "a\x00b"}, "description"),
    ([{"title": "ok"}], "body"),
    ("ok", "body"),
]
CREATE_ONLY: list[tuple[Any, str]] = [({}, "title"), ({"description": "no title"}, "title")]
UNKNOWN_FIELD: tuple[Any, str] = ({"title": "ok", "owner": "someone"}, "owner")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert set(body) >= ERROR_FIELDS
    assert (body["error_code"], body["status_code"]) == (code, status)
    assert body["path"] == response.request.url.path
    return body


def assert_validation_error(response: Any, field: str) -> None:
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert field in [error["field"] for error in body["errors"]], body


async def total_tasks(client: Client, account: Account) -> int:
    response = await client.get(account.tasks_url, headers=account.headers)
    assert response.status_code == 200
    return int(response.json()["total"])


@pytest.mark.parametrize(("body", "field"), [*INVALID_BODIES, *CREATE_ONLY, UNKNOWN_FIELD])
async def test_invalid_create_answers_422_and_creates_nothing(
    client: Client, account: Account, body: Any, field: str
) -> None:
    response = await client.post(account.tasks_url, json=body, headers=account.headers)

    assert_validation_error(response, field)
    assert await total_tasks(client, account) == 0


@pytest.mark.parametrize(("body", "field"), [*INVALID_BODIES, ({"title": None}, "title"), UNKNOWN_FIELD])
async def test_invalid_update_answers_422_and_changes_nothing(
    client: Client, account: Account, body: Any, field: str
) -> None:
    task = await create_task(client, account, description="original", due_date="2030-01-01T00:00:00Z")
    url = f"{account.tasks_url}/{task['id']}"

    response = await client.put(url, json=body, headers=account.headers)

    assert_validation_error(response, field)
    assert (await client.get(url, headers=account.headers)).json() == task


@pytest.mark.parametrize(("field", "value"), [("title", "t" * 255), ("description", "d" * 1000)])
async def test_longest_allowed_values_are_accepted(client: Client, account: Account, field: str, value: str) -> None:
    task = await create_task(client, account, **{field: value})

    assert task[field] == value


@pytest.mark.parametrize("content", [b"not json", b'{"title": "cut', b"{'title': 'single quotes'}", b"\xff\xfe"])
async def test_unparsable_body_answers_400(client: Client, account: Account, content: bytes) -> None:
    headers = {**account.headers, "Content-Type": "application/json"}

    response = await client.post(account.tasks_url, content=content, headers=headers)

    assert_error(response, 400, "MALFORMED_REQUEST")
    assert await total_tasks(client, account) == 0


async def test_unparsable_update_answers_400_and_changes_nothing(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = f"{account.tasks_url}/{task['id']}"
    headers = {**account.headers, "Content-Type": "application/json"}

    response = await client.put(url, content=b'{"title": ', headers=headers)

    assert_error(response, 400, "MALFORMED_REQUEST")
    assert (await client.get(url, headers=account.headers)).json() == task


@pytest.mark.parametrize(("method", "suffix"), [("POST", ""), ("PUT", "/{task}"), ("PATCH", "/{task}/complete")])
async def test_missing_body_is_refused_with_a_readable_error(
    client: Client, account: Account, method: str, suffix: str
) -> None:
    task = await create_task(client, account)
    headers = {**account.headers, "Content-Type": "application/json"}

    response = await client.request(method, account.tasks_url + suffix.format(task=task["id"]), headers=headers)

    assert response.status_code in {400, 422}, response.text
    body = assert_error(
        response, response.status_code, "MALFORMED_REQUEST" if response.status_code == 400 else "VALIDATION_ERROR"
    )
    # The handler's parameter name is an internal detail, not an explanation.
    assert "'data'" not in body["detail"]
    assert (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json() == task
    assert await total_tasks(client, account) == 1


async def test_body_over_64_kib_answers_413(client: Client, account: Account) -> None:
    response = await client.post(
        account.tasks_url, json={"title": "big", "description": "x" * (64 * 1024)}, headers=account.headers
    )

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await total_tasks(client, account) == 0


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "/not-a-uuid", None),
        ("PUT", "/not-a-uuid", {"title": "x"}),
        ("DELETE", "/not-a-uuid", None),
        ("PATCH", "/not-a-uuid/complete", {"completed": True}),
        ("GET", "/12345678-1234-1234-1234-12345678901", None),
    ],
)
async def test_malformed_task_id_answers_404(
    client: Client, account: Account, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, account.tasks_url + suffix, json=body, headers=account.headers)

    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/users/123/tasks"), ("POST", "/api/v1/users/123/tasks")])
async def test_malformed_user_id_answers_404(client: Client, account: Account, method: str, path: str) -> None:
    response = await client.request(
        method, path, json={"title": "x"} if method == "POST" else None, headers=account.headers
    )

    assert_error(response, 404, "NOT_FOUND")
    assert await total_tasks(client, account) == 0


@pytest.mark.parametrize(
    ("title", "description"),
    [
        ("📝 Buy 🥛 and 🍞", "👩‍👩‍👧‍👦 family emoji with joiners"),
        ("שלום עולם", "مرحبا بالعالم — mixed with English"),
        ("Cafe\u0301 re\u0301sume\u0301", "n\u0303 stays decomposed, not NFC"),
        ("😀" * 255, "🚀" * 1000),
        ("\u202eRTL override\u202c", "zero\u200bwidth\u200dspace"),
    ],
)
async def test_unicode_is_stored_and_returned_exactly(
    client: Client, account: Account, title: str, description: str
) -> None:
    task = await create_task(client, account, title=title, description=description)

    assert (task["title"], task["description"]) == (title, description)
    stored = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
    assert (stored["title"], stored["description"]) == (title, description)
    listed = (await client.get(account.tasks_url, headers=account.headers)).json()["items"][0]
    assert (listed["title"], listed["description"]) == (title, description)


async def test_title_length_counts_code_points_not_bytes(client: Client, account: Account) -> None:
    response = await client.post(account.tasks_url, json={"title": "😀" * 256}, headers=account.headers)

    assert_validation_error(response, "title")
    assert await total_tasks(client, account) == 0


@pytest.mark.parametrize("body", [None, {}, {"completed": None}, {"completed": "yes"}, {"completed": True, "x": 1}])
async def test_complete_without_a_boolean_is_refused(client: Client, account: Account, body: Any) -> None:
    task = await create_task(client, account)
    url = f"{account.tasks_url}/{task['id']}"

    response = await client.patch(f"{url}/complete", json=body, headers=account.headers)

    assert 400 <= response.status_code < 500
    error = response.json()
    assert set(error) >= ERROR_FIELDS
    assert error["status_code"] == response.status_code
    assert error["error_code"] in {"VALIDATION_ERROR", "MALFORMED_REQUEST"}
    assert (await client.get(url, headers=account.headers)).json() == task
