"""Idempotency-Key on the creating POSTs: a retry answers the first response again and creates nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Account, Client, make_settings, register
from todo_service.app import create_app
from todo_service.db.database import create_statements
from todo_service.db.models import IdempotencyKey, Task
from todo_service.idempotency.store import Idempotency, StoredResponse, fingerprint


def keyed(account: Account, key: str) -> dict[str, str]:
    return {**account.headers, "Idempotency-Key": key}


async def count_tasks(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(Task))).scalar_one())


async def test_a_retry_answers_the_first_response_and_creates_nothing(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    first = await client.post(account.tasks_url, json={"title": "once"}, headers=keyed(account, "k-1"))
    again = await client.post(account.tasks_url, json={"title": "once"}, headers=keyed(account, "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count_tasks(db_engine) == 1


async def test_the_same_key_with_another_body_is_422(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    await client.post(account.tasks_url, json={"title": "once"}, headers=keyed(account, "k-2"))
    response = await client.post(account.tasks_url, json={"title": "twice"}, headers=keyed(account, "k-2"))
    assert response.status_code == 422
    assert response.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    # Another path is another request too.
    response = await client.post(
        f"{account.tasks_url}/batch",
        json={"operations": [{"op": "create", "title": "once"}]},
        headers=keyed(account, "k-2"),
    )
    assert response.status_code == 422
    assert await count_tasks(db_engine) == 1


async def test_keys_are_scoped_per_user(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    other = await register(client)
    mine = await client.post(account.tasks_url, json={"title": "t"}, headers=keyed(account, "shared"))
    theirs = await client.post(other.tasks_url, json={"title": "t"}, headers=keyed(other, "shared"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert await count_tasks(db_engine) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "del\x7f", "tab\there"])
async def test_a_malformed_key_is_refused(client: Client, account: Account, key: str, db_engine: AsyncEngine) -> None:
    response = await client.post(
        account.tasks_url, json={"title": "t"}, headers={**account.headers, "Idempotency-Key": key}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert body["errors"] == [
        {"field": "Idempotency-Key", "message": "must be 1 to 255 printable ASCII characters", "source": "header"}
    ]
    assert await count_tasks(db_engine) == 0


async def test_a_failed_request_does_not_hold_its_key(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    other = await register(client)
    # Refused (another user's path): nothing is stored, so the retry runs again and is refused again.
    for _ in range(2):
        response = await client.post(other.tasks_url, json={"title": "t"}, headers=keyed(account, "k-3"))
        assert response.status_code == 403
    # A batch that fails keeps nothing, its key included: fixed and retried, it runs.
    bad = {"operations": [{"op": "create", "title": "t"}, {"op": "delete", "task_id": str(uuid.uuid4())}]}
    assert (await client.post(f"{account.tasks_url}/batch", json=bad, headers=keyed(account, "k-4"))).status_code == 404
    assert (await client.post(f"{account.tasks_url}/batch", json=bad, headers=keyed(account, "k-4"))).status_code == 404
    async with db_engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(IdempotencyKey))).scalar_one() == 0
    assert await count_tasks(db_engine) == 0


async def test_a_second_request_while_the_first_runs_is_409(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    body = json.dumps({"title": "slow"}).encode()
    store = Idempotency(create_statements(db_engine), ttl=timedelta(hours=24), lease=timedelta(seconds=60))
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(_: Any) -> StoredResponse:
        started.set()
        await finish.wait()
        return StoredResponse(status=201, body=b"{}")

    print_ = fingerprint("POST", account.tasks_url, body)
    first = asyncio.create_task(store.run(uuid.UUID(account.id), "k-5", print_, slow))
    await asyncio.wait_for(started.wait(), 10)
    headers = {**keyed(account, "k-5"), "Content-Type": "application/json"}
    response = await client.post(account.tasks_url, content=body, headers=headers)
    assert response.status_code == 409
    assert response.json()["error_code"] == "IDEMPOTENCY_KEY_IN_USE"
    finish.set()
    assert (await first) == (StoredResponse(status=201, body=b"{}"), False)
    replay = await client.post(account.tasks_url, content=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"


async def test_a_claim_whose_request_died_is_taken_over_after_its_lease(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    store = Idempotency(create_statements(db_engine), ttl=timedelta(hours=24), lease=timedelta(seconds=60))
    body = json.dumps({"title": "t"}).encode()
    claim = await store._take(uuid.UUID(account.id), "k-6", fingerprint("POST", account.tasks_url, body))
    assert isinstance(claim, uuid.UUID)  # claimed, then the process "died"
    headers = {**keyed(account, "k-6"), "Content-Type": "application/json"}
    assert (await client.post(account.tasks_url, content=body, headers=headers)).status_code == 409
    async with db_engine.begin() as connection:
        await connection.execute(update(IdempotencyKey).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    response = await client.post(account.tasks_url, content=body, headers=headers)
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    assert await count_tasks(db_engine) == 1


async def test_keys_expire_and_are_pruned(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    await client.post(account.tasks_url, json={"title": "a"}, headers=keyed(account, "k-7"))
    async with db_engine.begin() as connection:
        await connection.execute(update(IdempotencyKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    # Expired: the key is free again, for any request.
    response = await client.post(account.tasks_url, json={"title": "b"}, headers=keyed(account, "k-7"))
    assert response.status_code == 201
    assert "idempotent-replayed" not in response.headers
    store = Idempotency(create_statements(db_engine), ttl=timedelta(hours=24), lease=timedelta(seconds=60))
    assert await store.prune(datetime.now(UTC) + timedelta(hours=25)) == 1
    assert await store.prune() == 0


async def test_keys_hold_across_app_instances(client: Client, account: Account, database_url: str) -> None:
    first = await client.post(account.tasks_url, json={"title": "t"}, headers=keyed(account, "k-8"))
    from tests.factories import SameLoopClient  # noqa: PLC0415

    async with SameLoopClient(app=create_app(make_settings(database_url))) as restarted:
        again = await restarted.post(account.tasks_url, json={"title": "t"}, headers=keyed(account, "k-8"))
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
