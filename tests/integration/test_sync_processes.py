"""Sync across replicas: two ``todo-service run`` processes on one PostgreSQL database.

Idempotency keys live in the database: the same key sent to both replicas at the same moment still
creates one task. And two "devices" syncing through the change feed with ``If-Match``, each through
its own replica, end with the same state and a 412 where they conflicted.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.factories import PASSWORD
from tests.processes import run_console, running_service, service_env
from tests.servers import fresh_postgres_database

KEYS = 12


@pytest.fixture(scope="module")
async def replicas(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[str]]:
    """Two replicas (one process each) on one fresh, migrated database: their base URLs."""
    name = f"todo_sync_processes_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = await fresh_postgres_database(postgres_admin_url, name)
    workdir = tmp_path_factory.mktemp("sync-processes")
    env = service_env(DATABASE_URL=url, RATE_LIMIT_ENABLED="false")
    migration = run_console("database", "upgrade", "--no-prompt", cwd=workdir, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr
    with running_service(cwd=workdir, env=env) as first, running_service(cwd=workdir, env=env) as second:
        yield [first.base_url, second.base_url]


async def _account(base_url: str, email: str) -> tuple[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        body = {"email": email, "password": PASSWORD, "first_name": "Two", "last_name": "Replicas"}
        registered = await http.post("/api/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
    user = registered.json()
    return f"/api/v1/users/{user['user']['id']}/tasks", {"Authorization": f"Bearer {user['access_token']}"}


async def test_the_same_key_at_both_replicas_at_once_creates_one_task(replicas: list[str]) -> None:
    tasks, auth = await _account(replicas[0], "keys@example.com")
    clients = [httpx.AsyncClient(base_url=base, timeout=20) for base in replicas]
    try:
        answers = await asyncio.gather(
            *(
                client.post(tasks, json={"title": f"key {n}"}, headers={**auth, "Idempotency-Key": f"key-{n}"})
                for n in range(KEYS)
                for client in clients
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        # Each key: one 201 that created, and a replay (201) or an "in use" (409) from the other replica.
        assert statuses.count(201) >= KEYS
        assert set(statuses) <= {201, 409}
        listing = await clients[1].get(tasks, params={"limit": 100}, headers=auth)
        titles = sorted(task["title"] for task in listing.json()["items"])
        assert titles == sorted(f"key {n}" for n in range(KEYS))
        # Every retry now, at either replica, is the first response again.
        for n in range(KEYS):
            for client in clients:
                again = await client.post(
                    tasks, json={"title": f"key {n}"}, headers={**auth, "Idempotency-Key": f"key-{n}"}
                )
                assert again.status_code == 201
                assert again.headers["idempotent-replayed"] == "true"
    finally:
        for client in clients:
            await client.aclose()


class Device:
    """A client app with a local copy of the tasks, kept in step through the change feed."""

    def __init__(self, base_url: str, tasks: str, auth: dict[str, str]) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10, headers=auth)
        self.tasks = tasks
        self.local: dict[str, dict[str, Any]] = {}
        self.cursor: str | None = None
        self.conflicts = 0

    async def sync(self) -> None:
        while True:
            params = {"cursor": self.cursor} if self.cursor else {}
            page = (await self.http.get(f"{self.tasks}/changes", params=params)).json()
            for change in page["changes"]:
                if change["op"] == "upsert":
                    self.local[change["task"]["id"]] = change["task"]
                else:
                    self.local.pop(change["task_id"], None)
            self.cursor = page["next_cursor"]
            if not page["has_more"]:
                return

    async def edit(self, task_id: str, **fields: Any) -> bool:
        """A change made offline, sent with the tag of the copy it was made on; False on a conflict."""
        response = await self.http.put(
            f"{self.tasks}/{task_id}", json=fields, headers={"If-Match": self.local[task_id]["etag"]}
        )
        if response.status_code == 412:
            self.conflicts += 1
            return False
        assert response.status_code == 200, response.text
        return True


async def test_two_devices_editing_offline_converge_through_the_feed(replicas: list[str]) -> None:
    tasks, auth = await _account(replicas[0], "devices@example.com")
    phone, laptop = Device(replicas[0], tasks, auth), Device(replicas[1], tasks, auth)
    try:
        created = [(await phone.http.post(tasks, json={"title": f"shared {n}"})).json()["id"] for n in range(3)]
        await phone.sync()
        await laptop.sync()
        assert phone.local == laptop.local
        # Offline, both edit task 0 (a conflict); each edits one task of its own.
        assert await phone.edit(created[0], title="phone's title")
        assert not await laptop.edit(created[0], title="laptop's title")  # 412: its copy is stale
        assert await laptop.edit(created[1], priority="urgent")
        assert await phone.edit(created[2], completed=True)
        # The laptop resolves its conflict as a user would: sync, look, edit the fresh copy.
        await laptop.sync()
        assert laptop.local[created[0]]["title"] == "phone's title"
        assert await laptop.edit(created[0], description="merged on the laptop")
        await phone.sync()
        await laptop.sync()
        assert phone.local == laptop.local
        final = {task["id"]: task for task in (await phone.http.get(tasks)).json()["items"]}
        assert phone.local == final
        assert final[created[0]]["title"] == "phone's title"
        assert final[created[0]]["description"] == "merged on the laptop"
        assert final[created[1]]["priority"] == "urgent"
        assert final[created[2]]["completed"] is True
        assert (phone.conflicts, laptop.conflicts) == (0, 1)
    finally:
        await phone.http.aclose()
        await laptop.http.aclose()
