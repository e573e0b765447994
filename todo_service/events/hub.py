"""The streams of this process, by owner: who to wake when an owner's tasks change.

A notification carries no change, only "``owner``'s tasks changed (up to revision R)": each woken
:class:`EventStream` reads the feed from its own cursor (:mod:`todo_service.events.feed`). The
feed is the source of truth, so a lost or doubled notification costs a delay or a read, never a
gap or a repeat; every stream also reads it every ``EVENTS_POLL_SECONDS`` without one.

Resources are bounded: streams per owner and per process (429 ``TOO_MANY_STREAMS`` beyond), and
each stream's send queue (``EVENTS_QUEUE_SIZE`` events): a client that does not take what is
queued within ``SEND_GRACE_SECONDS`` is dropped (it reconnects with ``Last-Event-ID`` and loses
nothing); the process never buffers more for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from todo_service.core.errors import AppError, ServiceUnavailable
from todo_service.events.errors import TooManyStreams
from todo_service.events.schemas import KEEP_ALIVE, encode_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from uuid import UUID

    from todo_service.events.feed import Event, Feed, Position
    from todo_service.security.access import Caller

__all__ = ("EventStream", "Hub", "Limits")

logger = logging.getLogger(__name__)

SEND_GRACE_SECONDS = 5.0  # a full send queue must get room within this, or its client is dropped
PAGE = 100  # changes per read of the feed
# After a notification, read again after these pauses until the notified change shows: on PostgreSQL the
# feed hands out a revision only once every older transaction has ended (docs/adr/0003); on SQLite a write
# inside a batch notifies before its transaction commits. The poll catches whatever is later than this.
RETRY_PAUSES = (0.0, 0.01, 0.04, 0.16, 0.64)


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of the streams (settings ``EVENTS_*``)."""

    per_user: int
    per_process: int
    queue_size: int
    heartbeat_seconds: float
    poll_seconds: float


class _SlowConsumerError(Exception):
    """The client did not take its queued events in time."""


class Hub:
    """This process's open streams, by owner. One per app."""

    def __init__(self, feed: Feed, limits: Limits) -> None:
        self.feed = feed
        self.limits = limits
        self.streams: dict[UUID, set[EventStream]] = {}
        self.count = 0
        self.closing = False
        # Told when an owner's first stream opens and its last one closes (the listener's channels).
        self.on_first_stream: Callable[[UUID], None] | None = None
        self.on_last_stream: Callable[[UUID], None] | None = None

    def open(self, caller: Caller, owner_id: UUID, position: Position) -> EventStream:
        """A new stream of ``owner_id``'s changes after ``position``, counted against the limits.

        Raises:
            TooManyStreams: the owner, or this process, holds as many streams as allowed.
            ServiceUnavailable: the process is shutting down.
        """
        if self.closing:
            raise ServiceUnavailable("The server is shutting down: reconnect in a moment")
        owners = self.streams.setdefault(owner_id, set())
        if len(owners) >= self.limits.per_user:
            raise TooManyStreams(f"At most {self.limits.per_user} open event streams per user")
        if self.count >= self.limits.per_process:
            raise TooManyStreams("This server holds as many event streams as it may: retry in a moment")
        stream = EventStream(self, caller, owner_id, position)
        owners.add(stream)
        self.count += 1
        if len(owners) == 1 and self.on_first_stream is not None:
            self.on_first_stream(owner_id)
        return stream

    def wake(self, owner_id: UUID, revision: int = 0) -> None:
        """``owner_id``'s tasks changed (up to ``revision``; 0: unknown): their streams read the feed."""
        for stream in self.streams.get(owner_id, ()):
            stream.wake(revision)

    def wake_all(self) -> None:
        """Every stream reads the feed (notifications may have been missed: the listener reconnected)."""
        for owners in self.streams.values():
            for stream in owners:
                stream.wake(0)

    def close_all(self) -> None:
        """End every stream and open no more: the process is stopping."""
        self.closing = True
        for owners in list(self.streams.values()):
            for stream in list(owners):
                stream.close()

    def forget(self, stream: EventStream) -> None:
        """Stop counting a closed stream."""
        owners = self.streams.get(stream.owner_id)
        if owners is not None and stream in owners:
            owners.discard(stream)
            self.count -= 1
            if not owners:
                del self.streams[stream.owner_id]
                if self.on_last_stream is not None:
                    self.on_last_stream(stream.owner_id)


class EventStream:
    """One client's stream: a producer task reads the feed into a bounded queue; the response body takes from it."""

    def __init__(self, hub: Hub, caller: Caller, owner_id: UUID, position: Position) -> None:
        self.hub = hub
        self.caller = caller
        self.owner_id = owner_id
        self.position = position
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(hub.limits.queue_size)
        self.woken = asyncio.Event()
        self.target = 0  # the highest revision notified and maybe not read yet (0: unknown)
        self.more = True  # the feed may hold changes after ``position`` not read yet
        self.closed = False
        self.last_write = 0.0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The first page, read before the response starts: a refusal or a stale cursor is still an HTTP error."""
        self.last_write = asyncio.get_running_loop().time()
        events, self.more = await self.hub.feed.after(self.caller, self.owner_id, self.position, self._page())
        for event in events:
            self._enqueue(event)

    def body(self) -> AsyncIterator[bytes]:
        """The response body; its end (client gone, shutdown, error) closes the stream."""
        body = self._body()
        # A body never iterated (the client left before it started) runs no ``finally``: this releases it.
        weakref.finalize(body, self.close)
        return body

    async def _body(self) -> AsyncIterator[bytes]:
        self.task = asyncio.create_task(self._produce(), name="task-events")
        try:
            while (chunk := await self.queue.get()) is not None:
                yield chunk
        finally:
            self.close()

    def wake(self, revision: int) -> None:
        """Read the feed soon: the owner's tasks changed."""
        self.target = max(self.target, revision)
        self.woken.set()

    def close(self) -> None:
        """End the stream: its body ends after what it is sending; the hub stops counting it."""
        if self.closed:
            return
        self.closed = True
        self.hub.forget(self)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        while not self.queue.empty():  # what was not sent is read again after Last-Event-ID
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self.hub.limits
        next_poll = loop.time() + limits.poll_seconds
        try:
            if self.more:
                await self._read()
            while not self.closed:
                wait = min(self.last_write + limits.heartbeat_seconds, next_poll) - loop.time()
                if wait > 0 and not self.woken.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self.woken.wait()
                if self.woken.is_set():
                    await self._read_until_seen()
                if loop.time() >= next_poll:
                    await self._read()
                    next_poll = loop.time() + limits.poll_seconds
                if loop.time() - self.last_write >= limits.heartbeat_seconds:
                    await self._put(KEEP_ALIVE)
        except _SlowConsumerError:
            logger.warning("event stream dropped: its client did not take %d queued events", self.queue.qsize())
        except AppError as exc:  # logged out, deactivated, cursor pruned: the reconnect answers why
            logger.info("event stream ended: %s", exc.error_code)
        except Exception:
            logger.exception("event stream failed")
        finally:
            self.close()

    async def _read_until_seen(self) -> None:
        """Read after a notification, again after short pauses until the notified change was read."""
        for pause in RETRY_PAUSES:
            if pause:
                await asyncio.sleep(pause)
            self.woken.clear()
            read = await self._read()
            if (self.position[0] >= self.target) if self.target else read:
                break
        self.target = 0

    async def _read(self) -> int:
        """Queue every change after ``position``; how many."""
        count = 0
        self.more = True
        while self.more:
            events, self.more = await self.hub.feed.after(self.caller, self.owner_id, self.position, self._page())
            for event in events:
                await self._put(encode_event(event.cursor, event.change))
                self.position = event.position
            count += len(events)
        return count

    def _enqueue(self, event: Event) -> None:
        self.queue.put_nowait(encode_event(event.cursor, event.change))
        self.position = event.position

    async def _put(self, chunk: bytes) -> None:
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            try:
                async with asyncio.timeout(SEND_GRACE_SECONDS):
                    await self.queue.put(chunk)
            except TimeoutError:
                raise _SlowConsumerError from None
        self.last_write = asyncio.get_running_loop().time()

    def _page(self) -> int:
        return min(PAGE, self.hub.limits.queue_size)
