"""PostgreSQL LISTEN: one dedicated connection per process wakes the streams of whoever's tasks changed.

Migration 0004 makes every task write send ``NOTIFY task_events, '<owner id>:<revision>'``,
delivered when the writing transaction commits, to every listening connection of every replica.
This process listens on one connection of its own, beside the engine's pool (why: docs/adr/0004):
LISTEN is state of the connection's session, which a pooled connection loses when it is handed
back, and a pool connection held for the process's lifetime would be one fewer for requests.

When the connection drops (or stops answering the periodic ``SELECT 1``), the listener connects
again with a growing pause, and on every (re)connection wakes every stream: each reads the feed
from its own cursor, so what was notified while nobody listened is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from litestar import Litestar

    from todo_service.core.settings import Settings
    from todo_service.events.hub import Hub

__all__ = ("CHANNEL", "Listener")

logger = logging.getLogger(__name__)

CHANNEL = "task_events"
FIRST_PAUSE = 0.5  # seconds before connecting again; doubles up to MAX_PAUSE
MAX_PAUSE = 30.0
CHECK_SECONDS = 15.0  # a connection that does not answer SELECT 1 within CHECK_TIMEOUT is replaced
CHECK_TIMEOUT = 5.0


class Listener:
    """LISTENs on ``task_events`` and wakes the hub's streams of the owner each notification names."""

    def __init__(self, settings: Settings, hub: Hub) -> None:
        url = make_url(settings.database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.ssl = settings.db_sslmode
        self.connect_timeout = settings.db_pool_timeout
        self.hub = hub
        self.connected = asyncio.Event()  # set while listening (the tests wait for it)

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
                connection.terminate()
            logger.warning("task events: listening again in %.1f s", pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)

    async def _listen(self, connection: asyncpg.Connection[Any]) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(CHANNEL, self._notified)
        self.connected.set()
        self.hub.wake_all()  # whatever was notified while nobody listened
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_SECONDS):
                    await lost.wait()
            if not lost.is_set():
                await connection.fetchval("SELECT 1", timeout=CHECK_TIMEOUT)

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        owner, _, revision = str(payload).partition(":")
        try:
            self.hub.wake(UUID(owner), int(revision or 0))
        except ValueError:
            logger.warning("task events: a notification that is not '<owner id>:<revision>' was ignored")
