"""The events listener listens only on the channels of owners with open streams (a real PostgreSQL).

A write that nobody watches must wake no process: each process LISTENs on an owner's channel when
that owner's first stream opens and UNLISTENs when the last one closes. And it must take no
notification at all (migration 0008): the trigger notifies only while a process's row in
``event_watchers`` says it watches the owner.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import pytest

from tests.factories import make_settings
from tests.servers import fresh_postgres_database, migrate
from todo_service.events.hub import Hub, Limits
from todo_service.events.listener import Listener, channel_of
from todo_service.security.access import Caller

if TYPE_CHECKING:
    from litestar import Litestar

    from todo_service.events.feed import Feed, Position

LIMITS = Limits(per_user=5, per_process=50, queue_size=8, heartbeat_seconds=15, poll_seconds=60)


async def channels(listener: Listener) -> set[str]:
    assert listener.connection is not None
    return {row[0] for row in await listener.connection.fetch("SELECT pg_listening_channels()")}


async def settle(listener: Listener) -> None:
    for _ in range(100):  # bounded: LISTEN/UNLISTEN run as tasks of their own
        if not listener.changes:
            return
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
async def listener_url(postgres_admin_url: str) -> str:
    """A migrated PostgreSQL database of this module's own (the watcher rows are its state)."""
    url = await fresh_postgres_database(postgres_admin_url, "todo_listener")
    await asyncio.to_thread(migrate, url)
    return url


async def watchers(url: str) -> set[tuple[uuid.UUID, uuid.UUID]]:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return {(row[0], row[1]) for row in await connection.fetch("SELECT user_id, listener_id FROM event_watchers")}
    finally:
        await connection.close()


async def test_the_listener_follows_the_owners_with_streams(listener_url: str) -> None:
    hub = Hub(cast("Feed", None), LIMITS)  # no stream reads the feed here: only who is listened to
    listener = Listener(make_settings(listener_url), hub)
    woken: list[tuple[uuid.UUID, int]] = []
    hub.wake = lambda owner_id, revision=0: woken.append((owner_id, revision))  # type: ignore[method-assign]
    alice, bob = uuid.uuid4(), uuid.uuid4()
    caller = Caller(user_id=alice, session_id=uuid.uuid4())
    start: Position = cast("Any", (0, uuid.UUID(int=0)))
    async with listener.lifespan()(cast("Litestar", None)):
        await asyncio.wait_for(listener.connected.wait(), 10)
        assert await channels(listener) == set()
        first = hub.open(caller, alice, start)
        second = hub.open(caller, alice, start)
        await settle(listener)
        assert await channels(listener) == {channel_of(alice)}
        assert await watchers(listener_url) == {(alice, listener.listener_id)}  # so alice's writes notify
        assert woken == [(alice, 0)]  # a re-read once listening: nothing committed meanwhile is missed

        notifier = await asyncpg.connect(listener_url.replace("+asyncpg", ""))
        try:
            await notifier.execute(f"NOTIFY {channel_of(alice)}, '42'")
            await notifier.execute(f"NOTIFY {channel_of(bob)}, '43'")  # nobody here watches bob
            for _ in range(100):
                if len(woken) > 1:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert woken == [(alice, 0), (alice, 42)]

            hub.forget(first)
            await settle(listener)
            assert await channels(listener) == {channel_of(alice)}  # one stream of hers is still open
            hub.forget(second)
            await settle(listener)
            assert await channels(listener) == set()
            assert await watchers(listener_url) == set()
        finally:
            await notifier.close()


async def test_the_listener_renews_its_rows_and_drops_lapsed_ones(listener_url: str) -> None:
    hub = Hub(cast("Feed", None), LIMITS)
    listener = Listener(make_settings(listener_url), hub)
    listener.check_seconds = 0.05
    alice, gone = uuid.uuid4(), uuid.uuid4()
    start: Position = cast("Any", (0, uuid.UUID(int=0)))
    admin = await asyncpg.connect(listener_url.replace("+asyncpg", ""))
    try:
        # The row of a process that died a while ago: the next renewal anywhere drops it.
        await admin.execute(
            "INSERT INTO event_watchers VALUES ($1, $2, now() - interval '1 second')", gone, uuid.uuid4()
        )
        async with listener.lifespan()(cast("Litestar", None)):
            await asyncio.wait_for(listener.connected.wait(), 10)
            hub.open(Caller(user_id=alice, session_id=uuid.uuid4()), alice, start)
            await settle(listener)
            first = await admin.fetchval("SELECT expires_at FROM event_watchers WHERE user_id = $1", alice)
            renewed = first
            for _ in range(100):  # bounded: a renewal every 0.05 s
                await asyncio.sleep(0.02)
                renewed = await admin.fetchval("SELECT expires_at FROM event_watchers WHERE user_id = $1", alice)
                if renewed > first:
                    break
            assert renewed > first
            assert await admin.fetchval("SELECT count(*) FROM event_watchers WHERE user_id = $1", gone) == 0
            hub.close_all()
    finally:
        await admin.execute("DELETE FROM event_watchers")
        await admin.close()


async def _notified_on(connection: asyncpg.Connection[Any], channel: str, write: Any) -> list[str]:
    """The payloads ``channel`` got while ``write()`` ran and shortly after (bounded)."""
    payloads: list[str] = []

    def received(*args: Any) -> None:
        payloads.append(args[3])

    await connection.add_listener(channel, received)
    try:
        await write()
        for _ in range(20):
            await asyncio.sleep(0.02)
        return payloads
    finally:
        await connection.remove_listener(channel, received)


async def test_a_write_notifies_only_while_its_owner_is_watched(listener_url: str) -> None:
    admin = await asyncpg.connect(listener_url.replace("+asyncpg", ""))
    listening = await asyncpg.connect(listener_url.replace("+asyncpg", ""))
    owner = uuid.uuid4()
    channel = channel_of(owner)

    async def write() -> None:
        await admin.execute(
            "INSERT INTO tasks (id, user_id, title, completed, priority, created_at, updated_at, revision,"
            " list_id, position) SELECT gen_random_uuid(), $1, 't', false, 'medium', now(), now(),"
            " pg_current_xact_id()::text::bigint, id, 'n' || md5(random()::text) FROM task_lists WHERE user_id = $1",
            owner,
        )

    try:
        await admin.execute(
            "INSERT INTO users (id, email, password_hash, first_name, last_name, role, is_active, created_at,"
            " updated_at) VALUES ($1, $2, 'x', 'A', 'B', 'user', true, now(), now())",
            owner,
            f"{owner.hex}@example.com",
        )
        assert await _notified_on(listening, channel, write) == []  # LISTENing is not enough: nobody watches

        watcher = uuid.uuid4()
        await admin.execute("INSERT INTO event_watchers VALUES ($1, $2, now() + interval '1 minute')", owner, watcher)
        notified = await _notified_on(listening, channel, write)
        revision = await admin.fetchval("SELECT max(revision) FROM tasks WHERE user_id = $1", owner)
        assert notified == [str(revision)]

        await admin.execute("UPDATE event_watchers SET expires_at = now() - interval '1 second'")
        assert await _notified_on(listening, channel, write) == []  # the lease lapsed
        assert await admin.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", owner) == 3
    finally:
        await admin.execute("DELETE FROM event_watchers")
        await listening.close()
        await admin.close()
