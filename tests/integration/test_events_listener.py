"""The events listener listens only on the channels of owners with open streams (a real PostgreSQL).

A write that nobody watches must wake no process: each process LISTENs on an owner's channel when
that owner's first stream opens and UNLISTENs when the last one closes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from tests.factories import make_settings
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


async def test_the_listener_follows_the_owners_with_streams(postgres_admin_url: str) -> None:
    hub = Hub(cast("Feed", None), LIMITS)  # no stream reads the feed here: only who is listened to
    listener = Listener(make_settings(postgres_admin_url), hub)
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
        assert woken == [(alice, 0)]  # a re-read once listening: nothing committed meanwhile is missed

        notifier = await asyncpg.connect(postgres_admin_url.replace("+asyncpg", ""))
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
        finally:
            await notifier.close()
