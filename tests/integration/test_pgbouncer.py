"""The service behind PgBouncer 1.18 (Debian's) in transaction mode, with ``DATABASE_PGBOUNCER=true``.

PgBouncer keeps ``POOL`` server connections for all the service's client connections, so one client's
consecutive transactions land on different server connections and clients take turns on each: a
statement prepared by name is then missing, or another client's. The first test shows that this
set-up does break named prepared statements (and the service's default start-up parameters); the
next runs a real ``todo-service run`` through it: the task routes (the driver-connection path), the
ORM sessions (accounts, login), the change feed, batches, Idempotency-Key, webhooks (the delivery
worker's lease) and live events, whose LISTEN goes to ``DATABASE_DIRECT_URL``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from tests.factories import PASSWORD, make_settings
from tests.integration.test_events_sse import register, stream
from tests.processes import run_console, running_service, service_env
from tests.scale.servers import pgbouncer
from tests.servers import fresh_postgres_database
from tests.webhook_receiver import webhook_receiver
from todo_service.db.database import create_engine
from todo_service.events.listener import Listener

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tests.processes import LiveService
    from tests.scale.servers import PgBouncer
    from todo_service.events.hub import Hub

POOL = 2  # server connections PgBouncer keeps for the service's (up to 20) client connections
CONCURRENT = 20


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="module")
def bouncer(postgres_admin_url: str) -> Iterator[PgBouncer]:
    with pgbouncer(postgres_admin_url, pool_mode="transaction", pool_size=POOL) as running:
        yield running


@pytest.fixture(scope="module")
async def direct_url(postgres_admin_url: str) -> str:
    """A fresh database on the PostgreSQL server behind PgBouncer (not migrated)."""
    return await fresh_postgres_database(
        postgres_admin_url, f"todo_pgbouncer_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    )


@pytest.fixture(scope="module")
def bounced_env(bouncer: PgBouncer, direct_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The service's settings for PgBouncer; the migration runs on PostgreSQL directly, as documented.

    (Alembic's engine, migrations/env.py, is made from the URL alone: through PgBouncer it would leave
    named prepared statements on PgBouncer's server connections.)
    """
    env = service_env(
        DATABASE_URL=bouncer.url(direct_url),
        DATABASE_PGBOUNCER="true",
        DATABASE_DIRECT_URL=direct_url,
        DB_POOL_SIZE=str(CONCURRENT),
        DB_MAX_OVERFLOW="0",
        RATE_LIMIT_ENABLED="false",
        EVENTS_POLL_SECONDS="60",  # an event within seconds came through NOTIFY and the listener
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        WEBHOOK_POLL_INTERVAL_SECONDS="0.1",
    )
    migrate = {**env, "DATABASE_URL": direct_url, "DATABASE_PGBOUNCER": "false"}
    migration = run_console("database", "upgrade", "--no-prompt", cwd=tmp_path_factory.mktemp("pgb"), env=migrate)
    assert migration.returncode == 0, migration.stdout + migration.stderr
    return env


@pytest.fixture(scope="module")
def service(bounced_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running_service(cwd=tmp_path_factory.mktemp("pgb-service"), env=bounced_env) as live:
        yield live


@pytest.fixture
async def http(service: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=20) as client:
        yield client


async def test_this_pgbouncer_breaks_named_prepared_statements_and_the_default_settings(
    bouncer: PgBouncer, direct_url: str, bounced_env: dict[str, str]
) -> None:
    url = _plain(bouncer.url(direct_url))
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)  # asyncpg's default: a statement cache
    try:
        assert await first.fetchval("SELECT $1::int + 1", 1) == 2  # prepared, by name, on a server connection
        # The second client's transaction holds a server connection, so the first client's statement
        # goes to another: its name there is unknown, or taken by the other client's statement.
        broken = (asyncpg.InvalidSQLStatementNameError, asyncpg.DuplicatePreparedStatementError)
        async with second.transaction():
            await second.fetchval("SELECT 1")
            with pytest.raises(broken, match="prepared statement"):
                await first.fetchval("SELECT $1::int + 1", 1)
    finally:
        await first.close()
        await second.close()
    # Without the setting the service's engine cannot even connect: PgBouncer refuses `jit`.
    engine = create_engine(make_settings(bouncer.url(direct_url)))
    try:
        with pytest.raises(Exception, match="unsupported startup parameter"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def test_the_listener_connects_to_the_direct_url_and_the_setting_requires_it(direct_url: str) -> None:
    bounced = "postgresql+asyncpg://postgres@127.0.0.1:1/db"
    settings = make_settings(bounced, database_pgbouncer=True, database_direct_url=direct_url)
    hub = cast("Hub", SimpleNamespace())  # the listener only registers its callbacks on it here
    assert Listener(settings, hub).dsn == _plain(direct_url)
    assert Listener(make_settings(bounced), hub).dsn == _plain(bounced)
    with pytest.raises(ValueError, match="DATABASE_DIRECT_URL: required with DATABASE_PGBOUNCER=true"):
        make_settings(bounced, database_pgbouncer=True)
    with pytest.raises(ValueError, match="DATABASE_PGBOUNCER: only for a PostgreSQL"):
        make_settings("sqlite+aiosqlite:///x.db", database_pgbouncer=True, database_direct_url=direct_url)
    with pytest.raises(ValueError, match="DATABASE_DIRECT_URL: expected a postgresql:// URL"):
        make_settings(bounced, database_pgbouncer=True, database_direct_url="sqlite+aiosqlite:///x.db")


async def test_every_task_path_works_through_transaction_pooling(
    http: httpx.AsyncClient, service: LiveService, direct_url: str
) -> None:
    user = await register(http)
    # Concurrent writes: 20 client connections of the service take turns on 2 server connections.
    answers = await asyncio.gather(
        *(http.post(user.tasks, json={"title": f"t{n}"}, headers=user.auth) for n in range(CONCURRENT))
    )
    assert [a.status_code for a in answers] == [201] * CONCURRENT, [a.text for a in answers if a.status_code != 201]
    created = [a.json() for a in answers]
    listing = (await http.get(user.tasks, params={"limit": "100"}, headers=user.auth)).json()
    assert listing["total"] == CONCURRENT
    assert {t["id"] for t in listing["items"]} == {t["id"] for t in created}
    reads = await asyncio.gather(*(http.get(f"{user.tasks}/{t['id']}", headers=user.auth) for t in created))
    assert [r.json() for r in reads] == created

    task = created[0]
    url = f"{user.tasks}/{task['id']}"
    assert (await http.get(url, headers={**user.auth, "If-None-Match": task["etag"]})).status_code == 304
    changed = await http.put(url, json={"title": "renamed"}, headers={**user.auth, "If-Match": task["etag"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "renamed"
    stale = await http.put(url, json={"title": "again"}, headers={**user.auth, "If-Match": task["etag"]})
    assert stale.status_code == 412
    done = await http.patch(f"{url}/complete", json={"completed": True}, headers=user.auth)
    assert done.status_code == 200, done.text
    assert done.json()["completed"] is True
    assert (await http.delete(url, headers=user.auth)).status_code == 200
    assert (await http.get(url, headers=user.auth)).status_code == 404

    feed = (await http.get(f"{user.tasks}/changes", params={"limit": "100"}, headers=user.auth)).json()
    ops = [(change["op"], change.get("task", {}).get("id", change.get("task_id"))) for change in feed["changes"]]
    assert ("delete", task["id"]) in ops
    assert len(feed["changes"]) == CONCURRENT  # one change per task, its latest

    batch = await http.post(
        f"{user.tasks}/batch",
        json={"operations": [{"op": "create", "title": "in a batch"}, {"op": "delete", "task_id": created[1]["id"]}]},
        headers=user.auth,
    )
    assert batch.status_code == 200, batch.text
    assert [r["status"] for r in batch.json()["results"]] == [201, 200]

    keyed = {**user.auth, "Idempotency-Key": uuid.uuid4().hex}
    once, twice = [await http.post(user.tasks, json={"title": "once"}, headers=keyed) for _ in range(2)]
    assert (once.status_code, twice.status_code) == (201, 201)
    assert once.json() == twice.json()
    titles = [
        t["title"] for t in (await http.get(user.tasks, params={"limit": "100"}, headers=user.auth)).json()["items"]
    ]
    assert titles.count("once") == 1

    email = f"{uuid.uuid4().hex}@example.com"
    account = {"email": email, "password": PASSWORD, "first_name": "P", "last_name": "B"}
    assert (await http.post("/api/v1/auth/register", json=account)).status_code == 201
    login = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    me = await http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["email"] == email
    assert "Traceback" not in service.output()
    assert await _backends(direct_url) <= POOL  # the service's connections really were pooled by PgBouncer


async def test_webhooks_and_live_events_work_through_pgbouncer(http: httpx.AsyncClient) -> None:
    user = await register(http)
    with webhook_receiver() as receiver:
        hook = await http.post(
            f"/api/v1/users/{user.id}/webhooks",
            json={"url": receiver.url, "events": ["task.upserted"]},
            headers=user.auth,
        )
        assert hook.status_code == 201, hook.text
        async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
            await asyncio.sleep(0.5)  # the listener's LISTEN for this owner (PostgreSQL direct)
            started = time.monotonic()
            created = (await http.post(user.tasks, json={"title": "live"}, headers=user.auth)).json()
            event = await events.next(10)
            assert event.data["task"] == created
            assert time.monotonic() - started < 10  # NOTIFY, not the 60 s poll
        [delivery] = await receiver.wait_for(1, seconds=20)
        await asyncio.sleep(1)  # a second delivery of the same event would arrive by now
        assert len(receiver.requests) == 1
    assert created["id"] in delivery.body.decode()


async def _backends(direct_url: str) -> int:
    """Client backends on the database now, besides this one and the listener's."""
    connection = await asyncpg.connect(_plain(direct_url))
    try:
        count: Any = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND application_name <> 'todo-service events'"
        )
    finally:
        await connection.close()
    return int(count)
