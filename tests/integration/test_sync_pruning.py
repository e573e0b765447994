"""The sync tables stay bounded: tombstones past their retention and expired idempotency keys are pruned."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest
from sqlalchemy import func, select, update

from tests.factories import SameLoopClient, create_task, make_settings
from todo_service.app import create_app
from todo_service.core.periodic import periodic
from todo_service.db.models import IdempotencyKey, Task

if TYPE_CHECKING:
    from litestar import Litestar
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client

WAIT_SECONDS = 10


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        tasks = (await connection.execute(select(func.count()).select_from(Task))).scalar_one()
        keys = (await connection.execute(select(func.count()).select_from(IdempotencyKey))).scalar_one()
    return int(tasks), int(keys)


@pytest.mark.usefixtures("preserved_logging")
async def test_the_apps_pruner_removes_old_tombstones_and_expired_keys_at_start(
    client: Client, account: Account, database_url: str, db_engine: AsyncEngine
) -> None:
    kept = await create_task(client, account)
    old, recent = await create_task(client, account), await create_task(client, account)
    for task in (old, recent):
        await client.delete(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    for key in ("old", "fresh"):
        headers = {**account.headers, "Idempotency-Key": key}
        await client.post(account.tasks_url, json={"title": key}, headers=headers)
    long_ago = datetime.now(UTC) - timedelta(days=31)
    async with db_engine.begin() as connection:
        # Deleted long ago, so its time in the trash is over too.
        expired = long_ago + timedelta(days=30)
        await connection.execute(
            update(Task).where(Task.id == old["id"]).values(deleted_at=long_ago, trash_expires_at=expired)
        )
        await connection.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old").values(expires_at=long_ago))
    assert await counts(db_engine) == (5, 2)

    async with SameLoopClient(app=create_app(make_settings(database_url))):
        for _ in range(WAIT_SECONDS * 10):
            if await counts(db_engine) == (4, 1):
                break
            await asyncio.sleep(0.1)

    assert await counts(db_engine) == (4, 1)  # kept, the recent tombstone, the two keyed creates
    feed = await client.get(f"{account.tasks_url}/changes", headers=account.headers)
    ops = {(c["op"], c.get("task_id") or c["task"]["id"]) for c in feed.json()["changes"]}
    assert ("delete", recent["id"]) in ops
    assert ("upsert", kept["id"]) in ops
    assert old["id"] not in {task_id for _, task_id in ops}


async def test_housekeeping_runs_again_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def step() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database away")
        return "pruned 3"

    with caplog.at_level(logging.INFO, logger="todo_service.core.periodic"):
        async with periodic("prune-test", 0.01, step)(cast("Litestar", None)):
            for _ in range(WAIT_SECONDS * 100):
                if calls >= 2:
                    break
                await asyncio.sleep(0.01)
    messages = [(record.levelno, record.getMessage()) for record in caplog.records if record.name.endswith("periodic")]
    assert messages[0] == (logging.ERROR, "prune-test failed; retrying in 0.01 s")
    assert (logging.INFO, "prune-test: pruned 3") in messages
