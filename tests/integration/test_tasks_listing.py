"""Listing a user's tasks: page shape, order, pagination, filters, search and sorting."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import insert, select

from tests.factories import Account, Client, create_task
from todo_service.db.models import Task, TaskList

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


async def insert_tasks(db_engine: AsyncEngine, account: Account, rows: list[dict[str, Any]]) -> list[str]:
    """Insert tasks behind the API (to control ``created_at``); returns their ids in the given order."""
    values = []
    for row in rows:
        created_at = row.get("created_at", T0)
        values.append(
            {
                "id": uuid.uuid4(),
                "user_id": uuid.UUID(account.id),
                "title": "Task",
                "description": None,
                "completed": False,
                "priority": "medium",
                "due_date": None,
                "completed_at": None,
                "updated_at": created_at,
                **row,
                "created_at": created_at,
            }
        )
    async with db_engine.begin() as connection:
        inbox = await connection.scalar(
            select(TaskList.id).where(TaskList.user_id == uuid.UUID(account.id), TaskList.is_default)
        )
        await connection.execute(insert(Task), [{"list_id": inbox, **value} for value in values])
    return [str(value["id"]) for value in values]


async def list_tasks(client: Client, account: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(account.tasks_url, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def titles(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["items"]]


async def test_page_shape_and_defaults(client: Client, account: Account) -> None:
    task = await create_task(client, account)

    page = await list_tasks(client, account)

    assert set(page) == {"items", "total", "page", "limit", "pages"}
    assert (page["total"], page["page"], page["limit"], page["pages"]) == (1, 1, 20, 1)
    assert page["items"] == [task]


async def test_user_without_tasks_gets_an_empty_page(client: Client, account: Account) -> None:
    assert await list_tasks(client, account) == {"items": [], "total": 0, "page": 1, "limit": 20, "pages": 0}


async def test_newest_first_with_id_as_tiebreaker(db_engine: AsyncEngine, client: Client, account: Account) -> None:
    middle, oldest, newest = await insert_tasks(
        db_engine,
        account,
        [{"created_at": T0 + timedelta(hours=1)}, {"created_at": T0}, {"created_at": T0 + timedelta(hours=2)}],
    )
    tied = await insert_tasks(db_engine, account, [{"created_at": T0 + timedelta(hours=3)} for _ in range(4)])

    page = await list_tasks(client, account)

    expected_tied = sorted(tied, key=uuid.UUID, reverse=True)
    assert ids(page) == [*expected_tied, newest, middle, oldest]


async def test_pagination_splits_45_tasks_into_three_pages(
    db_engine: AsyncEngine, client: Client, account: Account
) -> None:
    created = await insert_tasks(db_engine, account, [{"created_at": T0 + timedelta(minutes=i)} for i in range(45)])
    newest_first = list(reversed(created))

    first = await list_tasks(client, account)
    second = await list_tasks(client, account, page=2, limit=20)
    third = await list_tasks(client, account, page=3, limit=20)

    assert (len(first["items"]), first["total"], first["limit"], first["pages"]) == (20, 45, 20, 3)
    assert (second["page"], len(second["items"]), second["total"], second["pages"]) == (2, 20, 45, 3)
    assert (third["page"], len(third["items"]), third["total"], third["pages"]) == (3, 5, 45, 3)
    assert ids(first) + ids(second) + ids(third) == newest_first


async def test_page_past_the_end_is_empty_with_the_real_total(
    db_engine: AsyncEngine, client: Client, account: Account
) -> None:
    await insert_tasks(db_engine, account, [{"created_at": T0 + timedelta(minutes=i)} for i in range(45)])

    page = await list_tasks(client, account, page=10)

    assert page == {"items": [], "total": 45, "page": 10, "limit": 20, "pages": 3}


@pytest.mark.parametrize(("limit", "pages", "on_first_page"), [(1, 5, 1), (2, 3, 2), (100, 1, 5)])
async def test_limit_bounds_are_inclusive(
    client: Client, account: Account, limit: int, pages: int, on_first_page: int
) -> None:
    for _ in range(5):
        await create_task(client, account)

    page = await list_tasks(client, account, limit=limit)

    assert (page["limit"], page["pages"], page["total"], len(page["items"])) == (limit, pages, 5, on_first_page)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"sort": "bogus"}, "sort"),
        ({"sort": "title,"}, "sort"),
        ({"priority": "critical"}, "priority"),
        ({"completed": "maybe"}, "completed"),
        ({"due_before": "tomorrow"}, "due_before"),
    ],
)
async def test_bad_query_answers_422(client: Client, account: Account, params: dict[str, str], field: str) -> None:
    response = await client.get(account.tasks_url, params=params, headers=account.headers)

    assert response.status_code == 422
    body = response.json()
    assert (body["error_code"], body["status_code"]) == ("VALIDATION_ERROR", 422)
    assert field in [error["field"] for error in body["errors"]]


async def test_filter_by_completed(client: Client, account: Account) -> None:
    done = await create_task(client, account, completed=True)
    open_task = await create_task(client, account)

    assert ids(await list_tasks(client, account, completed="true")) == [done["id"]]
    assert ids(await list_tasks(client, account, completed="false")) == [open_task["id"]]


async def test_filter_by_priority(client: Client, account: Account) -> None:
    high = await create_task(client, account, priority="high")
    await create_task(client, account, priority="low")
    await create_task(client, account)

    page = await list_tasks(client, account, priority="high")

    assert (ids(page), page["total"]) == ([high["id"]], 1)
    assert (await list_tasks(client, account, priority="urgent"))["total"] == 0


async def test_search_is_case_insensitive_over_title_and_description(client: Client, account: Account) -> None:
    in_title = await create_task(client, account, title="Quarterly REPORT")
    in_description = await create_task(client, account, title="Other", description="draft the report today")
    await create_task(client, account, title="Groceries", description="milk")

    page = await list_tasks(client, account, search="RePoRt")

    assert sorted(ids(page)) == sorted([in_title["id"], in_description["id"]])
    assert page["total"] == 2


@pytest.mark.parametrize(
    ("search", "matching", "not_matching"), [("50%", "50% off", "500 items"), ("a_b", "a_b", "axb")]
)
async def test_search_takes_wildcards_literally(
    client: Client, account: Account, search: str, matching: str, not_matching: str
) -> None:
    hit = await create_task(client, account, title=matching)
    await create_task(client, account, title=not_matching)

    assert ids(await list_tasks(client, account, search=search)) == [hit["id"]]


async def test_short_and_long_searches_find_the_same_as_python(client: Client, account: Account) -> None:
    """Searches with a trigram (3 letters or digits in a row) and without one run different SQL: same answers."""
    tasks = [
        ("Report Q1", None),
        ("quarterly plan", "for the BOARD"),
        ("a b c", "x/y"),
        ("Ab", None),
        ("x_y", "100% done"),
        ("Plain", "q1 notes"),
    ]
    made = {
        (await create_task(client, account, title=title, description=description))["id"]: (title, description)
        for title, description in tasks
    }
    for search in ("q", "Q1", "ab", "a b", "%", "_", "/", "rep", "PLAN", "0% d", "board", "x/y", "zzz"):
        expected = {
            task_id
            for task_id, (title, description) in made.items()
            if search.lower() in title.lower() or search.lower() in (description or "").lower()
        }
        page = await list_tasks(client, account, search=search, limit=100)
        assert (set(ids(page)), page["total"]) == (expected, len(expected)), search


async def test_sql_looking_search_matches_nothing_and_harms_nothing(client: Client, account: Account) -> None:
    for _ in range(3):
        await create_task(client, account)

    for search in ("'; DROP TABLE tasks; --", "' OR '1'='1", '" OR 1=1 --'):
        page = await list_tasks(client, account, search=search)
        assert (page["items"], page["total"]) == ([], 0)

    assert (await list_tasks(client, account))["total"] == 3


async def test_due_before_and_due_after_are_strict(client: Client, account: Account) -> None:
    early = await create_task(client, account, due_date="2030-01-01T00:00:00Z")
    exact = await create_task(client, account, due_date="2030-06-01T00:00:00Z")
    late = await create_task(client, account, due_date="2030-12-01T00:00:00Z")
    await create_task(client, account)

    assert ids(await list_tasks(client, account, due_before="2030-06-01T00:00:00Z")) == [early["id"]]
    assert ids(await list_tasks(client, account, due_after="2030-06-01T00:00:00Z")) == [late["id"]]
    window = await list_tasks(client, account, due_after="2029-12-31T00:00:00Z", due_before="2030-07-01T00:00:00Z")
    assert sorted(ids(window)) == sorted([early["id"], exact["id"]])


async def test_due_bounds_without_an_offset_are_taken_as_utc(client: Client, account: Account) -> None:
    early = await create_task(client, account, due_date="2030-01-01T00:00:00Z")
    late = await create_task(client, account, due_date="2030-01-01T02:00:00Z")

    assert ids(await list_tasks(client, account, due_before="2030-01-01T01:00:00")) == [early["id"]]
    assert ids(await list_tasks(client, account, due_after="2030-01-01T01:00:00")) == [late["id"]]
    # The same instant with an offset: 01:00 UTC is 03:00 in UTC+2.
    assert ids(await list_tasks(client, account, due_before="2030-01-01T03:00:00+02:00")) == [early["id"]]


async def test_overdue_splits_open_past_due_tasks_from_the_rest(client: Client, account: Account) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    overdue = await create_task(client, account, due_date=past)
    done_late = await create_task(client, account, due_date=past, completed=True)
    upcoming = await create_task(client, account, due_date=future)
    undated = await create_task(client, account)

    assert ids(await list_tasks(client, account, overdue="true")) == [overdue["id"]]
    rest = await list_tasks(client, account, overdue="false")
    assert sorted(ids(rest)) == sorted([done_late["id"], upcoming["id"], undated["id"]])


async def test_sort_by_priority_uses_rank_not_alphabet(client: Client, account: Account) -> None:
    for priority in ("high", "low", "urgent", "medium", "low", "urgent"):
        await create_task(client, account, priority=priority)

    ascending = [item["priority"] for item in (await list_tasks(client, account, sort="priority"))["items"]]
    descending = [item["priority"] for item in (await list_tasks(client, account, sort="-priority"))["items"]]

    assert ascending == ["low", "low", "medium", "high", "urgent", "urgent"]
    assert descending == ["urgent", "urgent", "high", "medium", "low", "low"]


async def test_sort_by_due_date_puts_undated_tasks_last(client: Client, account: Account) -> None:
    await create_task(client, account, title="undated")
    await create_task(client, account, title="june", due_date="2030-06-01T00:00:00Z")
    await create_task(client, account, title="january", due_date="2030-01-01T00:00:00Z")
    await create_task(client, account, title="march", due_date="2030-03-01T00:00:00Z")

    assert titles(await list_tasks(client, account, sort="due_date")) == ["january", "march", "june", "undated"]
    assert titles(await list_tasks(client, account, sort="-due_date")) == ["june", "march", "january", "undated"]


async def test_sort_by_title(client: Client, account: Account) -> None:
    for title in ("cherry", "apple", "banana"):
        await create_task(client, account, title=title)

    assert titles(await list_tasks(client, account, sort="title")) == ["apple", "banana", "cherry"]
    assert titles(await list_tasks(client, account, sort="-title")) == ["cherry", "banana", "apple"]


async def test_sort_by_several_keys(client: Client, account: Account) -> None:
    await create_task(client, account, title="late-high", due_date="2030-06-01T00:00:00Z", priority="high")
    await create_task(client, account, title="undated-low", priority="low")
    await create_task(client, account, title="late-low", due_date="2030-06-01T00:00:00Z", priority="low")
    await create_task(client, account, title="early-urgent", due_date="2030-01-01T00:00:00Z", priority="urgent")

    page = await list_tasks(client, account, sort="-due_date,priority")

    assert titles(page) == ["late-low", "late-high", "early-urgent", "undated-low"]


async def test_filters_combine(client: Client, account: Account) -> None:
    wanted = await create_task(client, account, title="Send report", priority="high")
    await create_task(client, account, title="Send report", priority="high", completed=True)
    await create_task(client, account, title="Send report", priority="low")
    await create_task(client, account, title="Buy milk", priority="high")

    page = await list_tasks(client, account, completed="false", priority="high", search="report")

    assert (ids(page), page["total"], page["pages"]) == ([wanted["id"]], 1, 1)


async def test_filtered_pagination_counts_only_matching_tasks(
    db_engine: AsyncEngine, client: Client, account: Account
) -> None:
    rows = [{"created_at": T0 + timedelta(minutes=i), "completed": i % 3 == 0} for i in range(30)]
    await insert_tasks(db_engine, account, rows)

    page = await list_tasks(client, account, completed="true", limit=4, page=3)

    assert (page["total"], page["pages"], len(page["items"])) == (10, 3, 2)
    assert all(item["completed"] for item in page["items"])
