"""List in manual order and move, for one user with 100,000 tasks, on a throwaway PostgreSQL (in process).

Seeds the tasks with COPY (creation ranks, as migration 0007 gives existing tasks), prints the plan
of a list's first page in ``position`` order, then the latency of ``GET .../tasks?list_id&top_level
&sort=position`` (first page, and page 2,500: the offset's cost), of the default listing beside it,
of ``POST .../tasks/{id}/move`` (after a random sibling; first), of a parent's subtasks and of
deleting a parent with its subtree. The figures include the
in-process client and the page's exact total. usage: uv run --frozen python bench/order_100k.py
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from litestar.testing import AsyncTestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.factories import make_settings
from tests.servers import fresh_postgres_database, migrate, postgres_server
from todo_service.app import create_app
from todo_service.tasks.ranks import time_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

TASKS = 100_000
COLUMNS = ["id", "user_id", "title", "completed", "priority", "created_at", "updated_at", "list_id", "position"]


async def timed(call: Callable[[], Awaitable[Any]], times: int = 200) -> str:
    """p50 and p95 of ``times`` calls, in ms."""
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        response = await call()
        spent.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    spent.sort()
    return f"p50 {statistics.median(spent):.1f} ms, p95 {spent[int(len(spent) * 0.95)]:.1f} ms"


async def main() -> None:
    """Seed, then measure."""
    with postgres_server() as server:
        url = await fresh_postgres_database(server.url, "order_bench")
        await asyncio.to_thread(migrate, url)
        async with AsyncTestClient(create_app(make_settings(url, rate_limit_enabled=False))) as client:
            body = {"email": "big@example.com", "password": "Correct-Horse-42", "first_name": "B", "last_name": "U"}
            registered = (await client.post("/api/v1/auth/register", json=body)).json()
            uid, headers = registered["user"]["id"], {"Authorization": f"Bearer {registered['access_token']}"}
            tasks = f"/api/v1/users/{uid}/tasks"
            list_id = (await client.post(tasks, json={"title": "first"}, headers=headers)).json()["list_id"]
            base = datetime.now(UTC) - timedelta(days=400)
            rows = []
            for n in range(TASKS):
                at = base + timedelta(seconds=36 * n)
                owner, in_list = uuid.UUID(uid), uuid.UUID(list_id)
                rows.append((uuid.uuid4(), owner, f"task {n}", False, "medium", at, at, in_list, time_key(at) + "1"))
            connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                await connection.copy_records_to_table("tasks", records=rows, columns=COLUMNS)
                await connection.execute("ANALYZE tasks")
                plan = await connection.fetch(
                    "EXPLAIN ANALYZE SELECT id FROM tasks WHERE user_id = $1 AND list_id = $2 AND parent_id IS NULL "
                    "AND deleted_at IS NULL ORDER BY position, id LIMIT 20",
                    uuid.UUID(uid),
                    uuid.UUID(list_id),
                )
            finally:
                await connection.close()
            print("\n".join(row[0] for row in plan))
            ids = [str(row[0]) for row in rows]
            ordered = {"list_id": list_id, "top_level": "true", "sort": "position", "limit": 20}
            print(
                "list, sort=position, page 1:", await timed(lambda: client.get(tasks, params=ordered, headers=headers))
            )
            far = {**ordered, "page": 2500}
            print(
                "list, sort=position, page 2500:",
                await timed(lambda: client.get(tasks, params=far, headers=headers), 50),
            )
            newest = {"limit": 20}
            print(
                "list, default order, page 1:", await timed(lambda: client.get(tasks, params=newest, headers=headers))
            )

            def move(after: str | None) -> Awaitable[Any]:
                return client.post(f"{tasks}/{random.choice(ids)}/move", json={"after": after}, headers=headers)  # noqa: S311

            print("move after a random sibling:", await timed(lambda: move(random.choice(ids))))  # noqa: S311
            print("move first:", await timed(lambda: move(None)))

            parent = (await client.post(tasks, json={"title": "parent"}, headers=headers)).json()["id"]
            for n in range(3):
                await client.post(tasks, json={"title": f"child {n}", "parent_id": parent}, headers=headers)
            children = {"parent_id": parent, "sort": "position"}
            print("list a parent's subtasks:", await timed(lambda: client.get(tasks, params=children, headers=headers)))
            spent = []
            for _ in range(20):
                doomed = (await client.post(tasks, json={"title": "doomed"}, headers=headers)).json()["id"]
                for _ in range(3):
                    await client.post(tasks, json={"title": "kid", "parent_id": doomed}, headers=headers)
                start = time.perf_counter()
                assert (await client.delete(f"{tasks}/{doomed}", headers=headers)).status_code == 200
                spent.append((time.perf_counter() - start) * 1000)
            print(f"delete a parent with 3 subtasks (to the trash): p50 {statistics.median(spent):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
