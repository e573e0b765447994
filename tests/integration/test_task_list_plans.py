"""The list route's filters stay indexed at 100,000 tasks for one user (PostgreSQL): no Seq Scan on tasks.

One user holds 100,000 tasks in 10 lists with 20 labels (one per task), half of them completed, due
dates spread over a year; 20 other users hold 5,000 each. After ANALYZE, each listing statement
(the app's own, compiled as the app compiles it) is planned as the app plans it (a generic plan,
``plan_cache_mode = force_generic_plan``) and as a custom plan for its values; neither may scan
``tasks`` sequentially. The timings printed (``-s``) are EXPLAIN ANALYZE's, on the test machine.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from tests.integration.test_migrations import fresh_url  # noqa: F401  (a fixture)
from tests.servers import migrate
from todo_service.core.pagination import PageQuery
from todo_service.db.compiled import CompiledStatement
from todo_service.security.access import caller_params
from todo_service.tasks.queries import page_params, select_page, select_trash
from todo_service.tasks.schemas import TaskFilters

if TYPE_CHECKING:
    from todo_service.security.access import Caller

OWNER_TASKS, OTHERS, OTHER_TASKS, LISTS, LABELS = 100_000, 40, 10_000, 10, 20

# Each takes the owner ($1) and a count ($2): the other users, the owner's lists besides the Inbox, labels.
_SEED = (
    """INSERT INTO users (id, email, first_name, last_name, password_hash, role, is_active, created_at, updated_at)
    SELECT CASE WHEN n = 0 THEN $1::uuid ELSE gen_random_uuid() END, 'plan' || n || '@example.com', 'P', 'U', 'x',
           'user', true, now(), now()
    FROM generate_series(0, $2::int) AS n""",
    """INSERT INTO task_lists (id, user_id, name, is_default, created_at, updated_at)
    SELECT gen_random_uuid(), $1::uuid, 'List ' || n, false, now(), now() FROM generate_series(1, $2::int) AS n""",
    """INSERT INTO labels (id, user_id, name, name_key, color, created_at, updated_at)
    SELECT gen_random_uuid(), $1::uuid, 'label ' || n, 'label ' || n, '#808080', now(), now()
    FROM generate_series(1, $2::int) AS n""",
)
_SESSION = (
    "INSERT INTO auth_sessions (id, user_id, created_at, expires_at) "
    "VALUES ($2::uuid, $1::uuid, now(), now() + interval '1 day')"
)
_TASKS = f"""
WITH owners AS (
    SELECT u.id AS user_id, CASE WHEN u.id = $1::uuid THEN {OWNER_TASKS} ELSE {OTHER_TASKS} END AS how_many,
           array_agg(l.id ORDER BY l.created_at, l.id) AS lists
    FROM users AS u JOIN task_lists AS l ON l.user_id = u.id GROUP BY u.id
)
INSERT INTO tasks (id, user_id, list_id, title, completed, priority, due_date, completed_at, revision, created_at,
                   updated_at{{extra_columns}})
SELECT gen_random_uuid(), o.user_id, o.lists[1 + n % cardinality(o.lists)], 'Task ' || n, n % 2 = 0, 'medium',
       timestamptz '2030-01-01' + (n % 365) * interval '1 day',
       CASE WHEN n % 2 = 0 THEN timestamptz '2026-01-01' + (n % 300) * interval '1 day' END,
       1, timestamptz '2026-01-01' + n * interval '1 minute', now(){{extra_values}}
FROM owners AS o, generate_series(1, o.how_many) AS n
"""  # noqa: S608  (constants)
# Columns later migrations add without a default (a manual-order position), filled when present.
_EXTRA = {"position": "lpad(n::text, 8, '0')"}
_TASK_LABELS = """
INSERT INTO task_labels (task_id, label_id)
SELECT t.id, (SELECT array_agg(id ORDER BY id) FROM labels WHERE user_id = $1::uuid)[1 + abs(hashtext(t.id::text)) % $2]
FROM tasks AS t WHERE t.user_id = $1::uuid
"""


async def _seed(url: str, owner: uuid.UUID, session: uuid.UUID) -> None:
    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        for statement, count in zip(_SEED, (OTHERS, LISTS - 1, LABELS), strict=True):
            await connection.execute(statement, str(owner), count)
        await connection.execute(_SESSION, str(owner), str(session))
        rows = await connection.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks'")
        extra = [name for name in _EXTRA if name in {row[0] for row in rows}]
        columns = "".join(f", {name}" for name in extra)
        values = "".join(f", {_EXTRA[name]}" for name in extra)
        await connection.execute(_TASKS.format(extra_columns=columns, extra_values=values), str(owner))
        await connection.execute(_TASK_LABELS, str(owner), LABELS)
        await connection.execute("VACUUM ANALYZE")  # as autovacuum would have: statistics, visibility map
    finally:
        await connection.close()


async def _ids(url: str, owner: uuid.UUID) -> dict[str, list[Any]]:
    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        lists = [r[0] for r in await connection.fetch("SELECT id FROM task_lists WHERE user_id = $1 ORDER BY 1", owner)]
        labels = [r[0] for r in await connection.fetch("SELECT id FROM labels WHERE user_id = $1 ORDER BY 1", owner)]
        return {"lists": lists, "labels": labels}
    finally:
        await connection.close()


def _plans(url: str, query: PageQuery, params: dict[str, Any]) -> Any:
    compiled = CompiledStatement.of(query.rows, asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]
    arguments = compiled.arguments(params)

    async def explain() -> dict[str, Any]:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        found = {}
        for mode in ("force_generic_plan", "force_custom_plan"):
            connection = await asyncpg.connect(dsn, server_settings={"plan_cache_mode": mode, "jit": "off"})
            try:
                rows = await connection.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.sql}", *arguments)
                found[mode] = json.loads(rows[0][0])[0]
            finally:
                await connection.close()
        return found

    return explain()


def _scans(node: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation or index) of every node of a plan."""
    found = [(node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))]
    for child in node.get("Plans", []):
        found += _scans(child)
    return found


async def test_every_listing_filter_is_served_by_an_index_at_100k_tasks(fresh_url: str, backend: str) -> None:  # noqa: F811
    if backend != "postgresql":
        pytest.skip("the planner under test is PostgreSQL's")
    await asyncio.to_thread(migrate, fresh_url, "head")
    owner, session = uuid.uuid4(), uuid.uuid4()
    await _seed(fresh_url, owner, session)
    ids = await _ids(fresh_url, owner)
    caller = _caller(owner, session)
    base = {**caller_params(caller), "owner_id": owner, "page_limit": 20, "page_offset": 0}
    label_a, label_b = ids["labels"][:2]
    cases = {
        "default (newest first)": TaskFilters(),
        "list_id": TaskFilters(list_id=ids["lists"][3]),
        "label any (2)": TaskFilters(labels=(label_a, label_b)),
        "label all (2)": TaskFilters(labels=(label_a, label_b), label_match="all"),
        "due range (1 week)": TaskFilters(
            due_after=datetime(2030, 3, 1, tzinfo=UTC), due_before=datetime(2030, 3, 8, tzinfo=UTC)
        ),
        "completed_since": TaskFilters(completed_since=datetime(2026, 10, 1, tzinfo=UTC)),
        "list_id + label": TaskFilters(list_id=ids["lists"][3], labels=(label_a,)),
    }
    report, seq_scans = [], []
    plans = {name: (select_page(filters, own=True), page_params(filters)) for name, filters in cases.items()}
    plans["trash"] = (select_trash(own=True), {"now": datetime.now(UTC)})
    for name, (query, values) in plans.items():
        for mode, plan in (await _plans(fresh_url, query, {**base, **values})).items():
            scans = _scans(plan["Plan"])
            if ("Seq Scan", "tasks") in scans:
                seq_scans.append((name, mode, scans))
            used = sorted({index for _, index in scans if index.startswith(("ix_", "pk_", "uq_"))})
            report.append(f"{name:24} {mode:19} {plan['Execution Time']:8.2f} ms  {', '.join(used)}")
    print("\n".join(["", *report]))  # noqa: T201  (the figures, with -s)
    assert seq_scans == []


def _caller(owner: uuid.UUID, session: uuid.UUID) -> Caller:
    from todo_service.security.access import Caller  # noqa: PLC0415  (type-only at module level)

    return Caller(user_id=owner, session_id=session)
