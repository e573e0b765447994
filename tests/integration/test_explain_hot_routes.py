"""The hot routes' SQL reads ``tasks`` through its indexes, not a sequential scan, once a user has 100,000 tasks.

On a real PostgreSQL: one user with 100,000 tasks beside 1,000 others with 200 each, VACUUMed and ANALYZEd, then
``EXPLAIN`` of the statements the routes really run: built by ``todo_service/tasks/queries.py``,
compiled for asyncpg exactly as the app compiles them (:class:`CompiledStatement`), with the values
a request gives them. None may scan ``tasks`` sequentially: a sequential scan reads every user's
tasks, so its cost grows with the whole table instead of the page asked for (issue 16).

The app's connections plan every statement once, generically (``plan_cache_mode`` is
``force_generic_plan``: db/database.py), so each plan is checked twice: as PostgreSQL plans it
with the request's values, and as the app's connections plan it, without them. Search reads the
trigram indexes of migration 0011 (led by the owner), both of them (a BitmapOr), for the word's
tasks of that owner only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.servers import fresh_postgres_database, migrate
from todo_service.db.compiled import CompiledStatement
from todo_service.security.access import Caller, caller_params
from todo_service.tasks.queries import (
    AFTER_ID,
    AFTER_REVISION,
    FEED_LIMIT,
    OWNER,
    TASK,
    page_params,
    scroll_params,
    select_changes,
    select_page,
    select_scroll,
    select_task,
)
from todo_service.tasks.schemas import TaskFilters

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.sql import Executable

DATABASE = "todo_explain_hot_routes"
BIG_USER_TASKS = 100_000
OTHER_USERS, OTHER_TASKS = 1000, 200  # the big user holds a third of the table, as one of many would less
PAGE_SIZE = 20
# The page's placeholders (core/pagination.py fills them from the page number and size).
PAGE_LIMIT, PAGE_OFFSET = "page_limit", "page_offset"
SEARCHED = "Quarterly"  # in 1% of the titles (as in `just bench large`)
TRIGRAM_INDEXES = {"ix_tasks_live_owner_title_trgm", "ix_tasks_live_owner_description_trgm"}  # migration 0011

# Seeding only (the statements under test come from the application): users, a live session each, tasks.
USERS = """
INSERT INTO users (id, email, first_name, last_name, password_hash, role, is_active, feed_floor, created_at, updated_at)
SELECT gen_random_uuid(), 'explain-' || g || '@example.com', 'E', 'X', 'not-a-hash', 'user', true, 0, now(), now()
  FROM generate_series(1, $1::int) g
RETURNING id
"""
SESSIONS = """
INSERT INTO auth_sessions (id, user_id, created_at, expires_at, revoked_at)
SELECT gen_random_uuid(), u, now(), now() + interval '1 day', NULL FROM unnest($1::uuid[]) u
RETURNING id, user_id
"""
TASKS = """
INSERT INTO tasks (id, user_id, title, description, completed, priority, revision, created_at, updated_at{more_columns})
SELECT gen_random_uuid(), o.u, 'Task ' || g || CASE WHEN g % 100 = 0 THEN ' quarterly' ELSE '' END,
       'Seeded task ' || g, g % 3 = 0,
       (ARRAY['low', 'medium', 'high', 'urgent'])[g % 4 + 1], g,
       now() - g * interval '36 seconds', now() - g * interval '36 seconds'{more_values}
  FROM unnest($1::uuid[]) AS o(u), generate_series(1, $2::int) g
"""
# Required columns of later migrations: the owner's default list (0006); a rank in the manual order,
# unique among the list's top-level tasks (0007).
LATER_COLUMNS = {
    "list_id": "(SELECT l.id FROM task_lists l WHERE l.user_id = o.u AND l.is_default)",
    "position": "'n0' || lpad(g::text, 15, '0') || '1'",
}
REQUIRED = """
SELECT column_name FROM information_schema.columns
 WHERE table_name = 'tasks' AND is_nullable = 'NO' AND column_default IS NULL
"""


@dataclass(frozen=True)
class Seeded:
    """The database, the big user (as the caller) and one of its tasks."""

    url: str
    caller: Caller
    task_id: uuid.UUID


@pytest.fixture(scope="module")
async def seeded(postgres_admin_url: str) -> AsyncIterator[Seeded]:
    """A migrated database of its own: the big user's 100,000 tasks and the others', VACUUMed and ANALYZEd."""
    url = await fresh_postgres_database(postgres_admin_url, DATABASE)
    await asyncio.to_thread(migrate, url)
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        required = {row["column_name"] for row in await connection.fetch(REQUIRED)}
        more = [name for name in LATER_COLUMNS if name in required]
        tasks_sql = TASKS.format(
            more_columns="".join(f", {name}" for name in more),
            more_values="".join(f", {LATER_COLUMNS[name]}" for name in more),
        )
        async with connection.transaction():
            users = [row["id"] for row in await connection.fetch(USERS, OTHER_USERS + 1)]
            sessions = {row["user_id"]: row["id"] for row in await connection.fetch(SESSIONS, users)}
            big, others = users[0], users[1:]
            # The tasks without their row triggers (live events, webhook outbox): no one listens, and
            # 300,000 notifications would take most of the seeding time.
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(tasks_sql, [big], BIG_USER_TASKS)
            await connection.execute(tasks_sql, others, OTHER_TASKS)
        # VACUUM too, as autovacuum would have by then: without a visibility map, an index-only count of
        # the big user's third of the table is costed with a heap fetch per row, and PostgreSQL's
        # choice between it and a parallel sequential scan flips from one seeding to the next.
        await connection.execute("VACUUM ANALYZE")
        task_id = await connection.fetchval(
            "SELECT id FROM tasks WHERE user_id = $1 ORDER BY created_at LIMIT 1 OFFSET $2", big, BIG_USER_TASKS // 2
        )
    finally:
        await connection.close()
    yield Seeded(url, Caller(user_id=big, session_id=sessions[big]), task_id)
    admin = create_async_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as server:
            await server.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def plan_of(url: str, statement: Executable, params: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL's plan for ``statement`` compiled as the app compiles it, with these values."""
    engine = create_async_engine(url)
    try:
        compiled = CompiledStatement.of(statement, engine.dialect)
    finally:
        await engine.dispose()
    missing = set(compiled.names) - set(params) - set(compiled.fixed)
    assert not missing, f"the statement takes values the test does not give: {missing}"
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        raw = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {compiled.sql}", *compiled.arguments(params))
    finally:
        await connection.close()
    return dict((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])


async def generic_plan_of(url: str, statement: Executable, params: dict[str, Any]) -> dict[str, Any]:
    """The plan the app's connections make for ``statement``: generic, once, without the values.

    PostgreSQL 15 explains a generic plan only through ``EXECUTE`` of a prepared statement, whose
    values are written in (as literals: they do not shape a generic plan).
    """
    engine = create_async_engine(url)
    try:
        compiled = CompiledStatement.of(statement, engine.dialect)
    finally:
        await engine.dispose()
    literals = ", ".join("NULL" if value is None else literal(value) for value in compiled.arguments(params))
    connection = await asyncpg.connect(
        url.replace("+asyncpg", ""), server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    try:
        await connection.execute(f"PREPARE hot_route AS {compiled.sql}")
        raw = await connection.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE hot_route({literals})")
    finally:
        await connection.close()
    return dict((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])


def literal(value: object) -> str:
    """A value as an SQL string literal (of the prepared statement's parameter type)."""
    return "'" + str(value).replace("'", "''") + "'"


PLANNERS = {"with the values": plan_of, "generic, as the app": generic_plan_of}


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a plan, depth first."""
    found = [plan]
    for child in plan.get("Plans", ()):
        found += nodes(child)
    return found


def page(seeded: Seeded, filters: TaskFilters) -> tuple[Executable, dict[str, Any]]:
    """A listing's statement and values, as TaskRepository.page and fetch_page make them."""
    values = {
        **caller_params(seeded.caller),
        OWNER: seeded.caller.user_id,
        **page_params(filters),
        PAGE_LIMIT: filters.limit,
        PAGE_OFFSET: (filters.page - 1) * filters.limit,
    }
    return select_page(filters, own=True).rows, values


def hot_routes(seeded: Seeded) -> dict[str, tuple[Executable, dict[str, Any]]]:
    """Route -> (statement, values): what each hot route runs for the big user."""
    mine = {**caller_params(seeded.caller), OWNER: seeded.caller.user_id}
    return {
        "list, first page": page(seeded, TaskFilters(page=1, limit=PAGE_SIZE)),
        "list, page 500": page(seeded, TaskFilters(page=500, limit=PAGE_SIZE)),
        "list, completed=false": page(seeded, TaskFilters(completed=False, page=1, limit=PAGE_SIZE)),
        "search": page(seeded, TaskFilters(search=SEARCHED, page=1, limit=PAGE_SIZE)),
        "get": (select_task(own=True), {**mine, TASK: seeded.task_id}),
        "changes after a revision": (
            select_changes("postgresql", own=True),
            {**mine, AFTER_REVISION: BIG_USER_TASKS - 100, AFTER_ID: uuid.UUID(int=0), FEED_LIMIT: 100},
        ),
    }


ROUTES = ["list, first page", "list, page 500", "list, completed=false", "search", "get", "changes after a revision"]


@pytest.mark.parametrize("planner", list(PLANNERS))
@pytest.mark.parametrize("route", ROUTES)
async def test_no_sequential_scan_of_tasks(seeded: Seeded, route: str, planner: str) -> None:
    statement, values = hot_routes(seeded)[route]
    plan = await PLANNERS[planner](seeded.url, statement, values)
    on_tasks = [node for node in nodes(plan) if node.get("Relation Name") == "tasks"]
    assert on_tasks, f"{route}: the plan reads no tasks at all: {json.dumps(plan)[:2000]}"
    scans = sorted({node["Node Type"] for node in on_tasks})
    assert "Seq Scan" not in scans, f"{route}: sequential scan of tasks: {json.dumps(plan, indent=1)[:4000]}"
    assert all(node.get("Index Name") for node in on_tasks if "Index" in node["Node Type"]), scans


@pytest.mark.parametrize("planner", list(PLANNERS))
async def test_search_reads_both_trigram_indexes(seeded: Seeded, planner: str) -> None:
    """The page and its total find the word's tasks through the two trigram indexes, OR-ed as bitmaps."""
    statement, values = hot_routes(seeded)["search"]
    plan = await PLANNERS[planner](seeded.url, statement, values)
    found = nodes(plan)
    used = {node.get("Index Name") for node in found}
    assert used >= TRIGRAM_INDEXES, f"trigram indexes unused: {json.dumps(plan, indent=1)[:4000]}"
    ored = [node for node in found if node["Node Type"] == "BitmapOr"]
    assert ored, f"no BitmapOr: {json.dumps(plan, indent=1)[:4000]}"
    assert all({child.get("Index Name") for child in node["Plans"]} <= TRIGRAM_INDEXES for node in ored)


async def test_search_through_the_indexes_finds_what_a_scan_finds(seeded: Seeded) -> None:
    """The same rows, in the same order, with the trigram indexes as without (GIN serves bitmap scans only)."""
    statement, values = page(seeded, TaskFilters(search=SEARCHED, page=3, limit=100))
    engine = create_async_engine(seeded.url)
    try:
        compiled = CompiledStatement.of(statement, engine.dialect)
    finally:
        await engine.dispose()
    found = {}
    for bitmaps in ("on", "off"):
        connection = await asyncpg.connect(
            seeded.url.replace("+asyncpg", ""),
            server_settings={"plan_cache_mode": "force_generic_plan", "enable_bitmapscan": bitmaps},
        )
        try:
            found[bitmaps] = [tuple(row) for row in await connection.fetch(compiled.sql, *compiled.arguments(values))]
        finally:
            await connection.close()
    assert found["on"] == found["off"]
    rows = found["on"]
    assert len(rows) == 100
    assert {row[0] for row in rows} == {BIG_USER_TASKS // 100}  # the total rides along in the first column
    assert all(SEARCHED.lower() in " ".join(map(str, row)) for row in rows)


def scroll(seeded: Seeded, filters: TaskFilters, after: list[Any] | None) -> tuple[Executable, dict[str, Any]]:
    """A listing read by cursor, as TaskRepository.scroll makes it: after the sort keys ``after``."""
    values = {
        **caller_params(seeded.caller),
        OWNER: seeded.caller.user_id,
        **page_params(filters),
        **scroll_params(after, filters.limit),
    }
    return select_scroll(filters, own=True, after=after), values


@pytest.mark.parametrize("planner", list(PLANNERS))
@pytest.mark.parametrize("filters", [TaskFilters(), TaskFilters(completed=False)], ids=["all", "completed=false"])
async def test_a_cursor_deep_in_the_list_reads_one_range_of_the_index(
    seeded: Seeded, planner: str, filters: TaskFilters
) -> None:
    """Page 500's tasks by cursor: the newest-first index from the cursor's (created_at, id) on, no sort, no count."""
    connection = await asyncpg.connect(seeded.url.replace("+asyncpg", ""))
    try:
        keys = await connection.fetchrow(
            "SELECT created_at, id FROM tasks WHERE user_id = $1 AND deleted_at IS NULL"
            " ORDER BY created_at DESC, id DESC OFFSET 9979 LIMIT 1",
            seeded.caller.user_id,
        )
    finally:
        await connection.close()
    assert keys is not None
    for after in (None, [keys["created_at"], keys["id"]]):
        plan = await PLANNERS[planner](seeded.url, *scroll(seeded, filters, after))
        on_tasks = [node for node in nodes(plan) if node.get("Relation Name") == "tasks"]
        assert [node["Index Name"] for node in on_tasks] == ["ix_tasks_user_id_created_at"], json.dumps(plan)[:4000]
        assert on_tasks[0]["Scan Direction"] == "Backward"
        sorts = [node["Sort Key"] for node in nodes(plan) if node["Node Type"] == "Sort"]
        assert not [key for key in sorts if "created_at" in str(key)]  # the index's order is the listing's
        if after is not None:
            assert "ROW(created_at, id) < ROW(" in on_tasks[0]["Index Cond"]


async def test_a_search_too_short_for_a_trigram_leaves_the_trigram_indexes_alone(seeded: Seeded) -> None:
    """``q`` has no trigram: read through the indexes, every entry would match (slower than the owner's rows)."""
    plan = await generic_plan_of(seeded.url, *page(seeded, TaskFilters(search="q", limit=PAGE_SIZE)))
    assert not {node.get("Index Name") for node in nodes(plan)} & TRIGRAM_INDEXES, json.dumps(plan)[:4000]
