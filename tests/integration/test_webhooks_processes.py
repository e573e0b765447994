"""Webhooks across real ``todo-service run`` processes: an event outlives a SIGKILL of the process that
made it, and two processes on one PostgreSQL database never attempt one event at the same time."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.factories import PASSWORD
from tests.processes import run_console, running_service, service_env, stop
from tests.servers import fresh_postgres_database
from tests.webhook_receiver import webhook_receiver

if TYPE_CHECKING:
    from pathlib import Path

FAST = {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "RATE_LIMIT_ENABLED": "false", "WEBHOOK_POLL_INTERVAL_SECONDS": "0.05"}
EVENTS = 30


async def _account(http: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    body = {"email": email, "password": PASSWORD, "first_name": "Hook", "last_name": "Owner"}
    registered = await http.post("/api/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    user = registered.json()
    return f"/api/v1/users/{user['user']['id']}", {"Authorization": f"Bearer {user['access_token']}"}


async def _webhook(http: httpx.AsyncClient, base: str, auth: dict[str, str], url: str) -> dict[str, Any]:
    created = await http.post(f"{base}/webhooks", json={"url": url, "events": ["task.upserted"]}, headers=auth)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_an_event_survives_a_sigkill_and_is_delivered_after_restart(tmp_path: Path) -> None:
    env = service_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/kill.db", **FAST)
    migration = run_console("database", "upgrade", "--no-prompt", cwd=tmp_path, env=env, timeout=60)
    assert migration.returncode == 0, migration.stderr
    with webhook_receiver() as receiver:
        # The first process polls the outbox once an hour: the change is committed, not yet delivered.
        with running_service(cwd=tmp_path, env={**env, "WEBHOOK_POLL_INTERVAL_SECONDS": "3600"}) as first:
            async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as http:
                base, auth = await _account(http, "kill@example.com")
                webhook = await _webhook(http, base, auth, receiver.url)
                task = (await http.post(f"{base}/tasks", json={"title": "survives"}, headers=auth)).json()
                [pending] = (await http.get(f"{base}/webhooks/{webhook['id']}/deliveries", headers=auth)).json()
            assert pending["status"] == "pending"
            assert pending["attempts"] == []
            assert stop(first, signal.SIGKILL) == -signal.SIGKILL
        assert receiver.requests == []
        with running_service(cwd=tmp_path, env=env) as second:
            [got] = await receiver.wait_for(1, seconds=30)
            assert got.headers["webhook-id"] == pending["id"]
            async with httpx.AsyncClient(base_url=second.base_url, timeout=10) as http:
                for _ in range(100):
                    [done] = (await http.get(f"{base}/webhooks/{webhook['id']}/deliveries", headers=auth)).json()
                    if done["status"] == "delivered":
                        break
                    await asyncio.sleep(0.1)
    assert done["status"] == "delivered"
    assert [a["status_code"] for a in done["attempts"]] == [200]
    assert task["id"] in got.body.decode()


@pytest.fixture(scope="module")
async def postgres_url(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = f"todo_webhook_processes_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = await fresh_postgres_database(postgres_admin_url, name)
    env = service_env(DATABASE_URL=url)
    migration = run_console(
        "database", "upgrade", "--no-prompt", cwd=tmp_path_factory.mktemp("hooks"), env=env, timeout=60
    )
    assert migration.returncode == 0, migration.stderr
    return url


async def test_two_processes_never_attempt_one_event_at_once(postgres_url: str, tmp_path: Path) -> None:
    env = service_env(DATABASE_URL=postgres_url, **FAST)
    with (
        webhook_receiver() as receiver,
        running_service(cwd=tmp_path, env=env) as first,
        running_service(cwd=tmp_path, env=env) as second,
    ):
        receiver.pause = 0.05  # each attempt takes a while: plenty of time for the other process to take it too
        receiver.statuses = [500] * 10  # and some are retried, by whichever process claims them next
        async with (
            httpx.AsyncClient(base_url=first.base_url, timeout=10) as one,
            httpx.AsyncClient(base_url=second.base_url, timeout=10) as two,
        ):
            base, auth = await _account(one, "replicas@example.com")
            await _webhook(one, base, auth, receiver.url)
            for n in range(EVENTS):
                created = await (one if n % 2 else two).post(f"{base}/tasks", json={"title": f"e{n}"}, headers=auth)
                assert created.status_code == 201
            await receiver.wait_for(EVENTS + 10, seconds=60)
            await asyncio.sleep(0.5)  # anything attempted twice would arrive by now
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(set(ids)) == EVENTS
    assert len(ids) == EVENTS + 10  # ten 500s, each retried once: nothing attempted more than needed
    assert max(receiver.most_at_once.values()) == 1
