"""PostgreSQL LISTEN: one dedicated connection per process wakes the streams of whoever's tasks changed.

Migration 0004 makes every task write send ``NOTIFY task_events_<owner id>, '<revision>'``,
delivered when the writing transaction commits, to every connection of every replica listening on
that owner's channel. This process listens on the channels of the owners it holds streams of, and
on no other: a write that nobody watches costs no process anything (the hub says when an owner's
first stream opens and its last one closes).
This process listens on one connection of its own, beside the engine's pool (why: docs/adr/0004):
LISTEN is state of the connection's session, which a pooled connection loses when it is handed
back, and a pool connection held for the process's lifetime would be one fewer for requests.
For the same reason it connects to ``DATABASE_DIRECT_URL`` when set: PgBouncer in transaction mode
would hand the LISTEN to a server connection other clients then use, and lose its notifications.

The trigger notifies only for owners that some process watches (migration 0008): with each LISTEN
this process writes its row in ``event_watchers`` (a lease of :data:`LEASE_SECONDS`), renews its
rows every :data:`CHECK_SECONDS` (which also checks the connection) and deletes the row with the
UNLISTEN; a process that dies leaves rows that lapse by themselves. A write whose trigger ran just
before the row was written is not notified: its stream finds it at its next poll
(``EVENTS_POLL_SECONDS``), never later and never lost.

When the connection drops (or a renewal fails or takes over :data:`CHECK_TIMEOUT`), the listener
connects again with a growing pause, and on every (re)connection watches and wakes every stream:
each reads the feed from its own cursor, so what was notified while nobody listened is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy.engine import make_url

from todo_service.events.models import EventWatcher

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from litestar import Litestar

    from todo_service.core.settings import Settings
    from todo_service.events.hub import Hub

__all__ = ("CHANNEL_PREFIX", "Listener", "channel_of")

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "task_events_"
FIRST_PAUSE = 0.5  # seconds before connecting again; doubles up to MAX_PAUSE
MAX_PAUSE = 30.0
CHECK_SECONDS = 15.0  # the watcher rows are renewed this often; a renewal over CHECK_TIMEOUT replaces the connection
CHECK_TIMEOUT = 5.0
LEASE_SECONDS = 4 * CHECK_SECONDS  # a watcher row not renewed for this long no longer makes notifications
# The watcher rows of this process (migration 0008): written with each LISTEN, renewed with every check
# (which also drops whatever lapsed, e.g. the rows of a process that died), deleted with the UNLISTEN.
_WATCHERS = EventWatcher.__tablename__
_WATCH = f"""INSERT INTO {_WATCHERS} (user_id, listener_id, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (user_id, listener_id) DO UPDATE SET expires_at = EXCLUDED.expires_at"""  # noqa: S608  (constants)
_RENEW = f"""WITH lapsed AS (DELETE FROM {_WATCHERS} WHERE expires_at < now())
UPDATE {_WATCHERS} SET expires_at = now() + make_interval(secs => $2) WHERE listener_id = $1"""  # noqa: S608
_UNWATCH = f"DELETE FROM {_WATCHERS} WHERE user_id = $1 AND listener_id = $2"  # noqa: S608  (constants)


def channel_of(owner_id: UUID) -> str:
    """The channel of ``owner_id``'s task changes (as migration 0004's trigger names it)."""
    return CHANNEL_PREFIX + owner_id.hex


class Listener:
    """LISTENs on the channels of the owners with open streams, and wakes their streams when notified."""

    def __init__(self, settings: Settings, hub: Hub) -> None:
        # PostgreSQL itself when a pooler stands in DATABASE_URL's place: LISTEN is session state.
        url = make_url(settings.database_direct_url or settings.database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.ssl = settings.db_sslmode
        self.connect_timeout = settings.db_pool_timeout
        self.hub = hub
        self.connected = asyncio.Event()  # set while listening (the tests wait for it)
        self.connection: asyncpg.Connection[Any] | None = None
        self.changes: set[asyncio.Task[None]] = set()  # LISTEN/UNLISTEN under way
        self.listener_id = uuid4()  # this process's watcher rows
        self.check_seconds = CHECK_SECONDS
        hub.on_first_stream = self.listen_to
        hub.on_last_stream = self.stop_listening_to

    def listen_to(self, owner_id: UUID) -> None:
        """Listen on ``owner_id``'s channel (its first stream opened); then wake its streams.

        The wake closes the gap between the stream's first read and the LISTEN taking effect.
        """
        self._change(owner_id, listen=True)

    def stop_listening_to(self, owner_id: UUID) -> None:
        """Stop listening on ``owner_id``'s channel (its last stream closed)."""
        self._change(owner_id, listen=False)

    def _change(self, owner_id: UUID, *, listen: bool) -> None:
        connection = self.connection
        if connection is None or connection.is_closed():
            return  # (re)connecting: the new connection listens for every owner with streams
        task = asyncio.get_running_loop().create_task(self._apply(connection, owner_id, listen=listen))
        self.changes.add(task)
        task.add_done_callback(self.changes.discard)

    async def _apply(self, connection: asyncpg.Connection[Any], owner_id: UUID, *, listen: bool) -> None:
        try:
            if listen:
                await self._watch(connection, owner_id)
                self.hub.wake(owner_id)
            elif owner_id not in self.hub.streams:  # unless a stream of theirs opened again meanwhile
                await connection.remove_listener(channel_of(owner_id), self._notified)
                await connection.execute(_UNWATCH, owner_id, self.listener_id)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The connection is failing: the listener replaces it and listens for every owner again.
            logger.warning("task events: could not change what is listened to (%s)", type(exc).__name__)

    def lifespan(self) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
        """A lifespan that listens while the app runs."""

        @contextlib.asynccontextmanager
        async def listening(_: Litestar) -> AsyncIterator[None]:
            task = asyncio.create_task(self.run(), name="task-events-listener")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        return listening

    async def run(self) -> None:
        """Listen until cancelled, connecting again after any failure."""
        pause = FIRST_PAUSE
        while True:
            try:
                connection = await asyncpg.connect(
                    self.dsn,
                    ssl=self.ssl,
                    timeout=self.connect_timeout,
                    server_settings={"application_name": "todo-service events"},
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("task events: cannot listen (%s); again in %.1f s", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE)
                continue
            try:
                await self._listen(connection)
                pause = FIRST_PAUSE  # it worked for a while: the next failure starts from a short pause
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("task events: the listening connection failed (%s)", type(exc).__name__)
            finally:
                self.connected.clear()
                self.connection = None
                connection.terminate()
            logger.warning("task events: listening again in %.1f s", pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)

    async def _listen(self, connection: asyncpg.Connection[Any]) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        self.connection = connection
        for owner_id in list(self.hub.streams):
            await self._watch(connection, owner_id)
        self.connected.set()
        self.hub.wake_all()  # whatever was notified while nobody listened
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_seconds):
                    await lost.wait()
            if not lost.is_set():
                await connection.execute(_RENEW, self.listener_id, LEASE_SECONDS, timeout=CHECK_TIMEOUT)

    async def _watch(self, connection: asyncpg.Connection[Any], owner_id: UUID) -> None:
        """Say this process watches ``owner_id`` (so their writes notify), then listen on their channel."""
        await connection.execute(_WATCH, owner_id, self.listener_id, LEASE_SECONDS)
        await connection.add_listener(channel_of(owner_id), self._notified)

    def _notified(self, _connection: object, _pid: int, channel: str, payload: object) -> None:
        try:
            self.hub.wake(UUID(hex=channel.removeprefix(CHANNEL_PREFIX)), int(str(payload) or 0))
        except ValueError:
            logger.warning("task events: a notification on %s that is not a revision was ignored", channel)
