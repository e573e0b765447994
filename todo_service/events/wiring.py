"""The live events, assembled: one plugin adds the routes, their dependency, the listener and the shutdown step.

On PostgreSQL a :class:`~todo_service.events.listener.Listener` (one connection per process) wakes
the streams of every replica. On SQLite there is nothing to listen to: the task service tells this
process's hub after each write (``TaskService.on_change``), and other processes' streams see the
change at their next poll (``EVENTS_POLL_SECONDS``).
"""

from __future__ import annotations

import asyncio
import signal
import weakref
from typing import TYPE_CHECKING, Any, cast

from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.response import Stream

from todo_service.core.errors import NotAuthenticated
from todo_service.events.controllers import EventsController
from todo_service.events.feed import Feed
from todo_service.events.hub import Hub, Limits
from todo_service.events.listener import Listener
from todo_service.events.schemas import StreamTicket
from todo_service.events.tickets import Tickets

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from uuid import UUID

    from litestar import Request
    from litestar.config.app import AppConfig
    from litestar.types import Receive, Scope, Send

    from todo_service.core.settings import Settings
    from todo_service.db.statements import Statements
    from todo_service.security.access import Caller
    from todo_service.security.tokens import BearerJWTAuth, BearerTokenMiddleware
    from todo_service.tasks.services import TaskService

__all__ = ("LiveEvents",)


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the bearer check this module calls itself (it never passes a request on)."""


class LiveEvents(InitPlugin):
    """The hub, the feed reader, tickets and (on PostgreSQL) the listener of one app."""

    def __init__(self, settings: Settings, tasks: TaskService, jwt_auth: BearerJWTAuth) -> None:
        self.statements: Statements = tasks.repository.statements
        self.feed = Feed(tasks)
        self.hub = Hub(
            self.feed,
            Limits(
                per_user=settings.events_max_streams_per_user,
                per_process=settings.events_max_streams,
                queue_size=settings.events_queue_size,
                heartbeat_seconds=settings.events_heartbeat_seconds,
                poll_seconds=settings.events_poll_seconds,
            ),
        )
        self.tickets = Tickets(settings.signing_key, settings.events_ticket_ttl_seconds)
        # The JWT middleware's own check (same cache of verified tokens), for the one route it skips.
        define = jwt_auth.middleware
        self.bearer = cast("BearerTokenMiddleware", define.middleware(*define.args, app=_no_app, **define.kwargs))
        self.listener: Listener | None = None
        if self.statements.dialect_name == "postgresql":
            self.listener = Listener(settings, self.hub)
        else:
            tasks.on_change = self.hub.wake

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """The routes, the ``live_events`` dependency, the listener's lifespan, the streams' end at shutdown."""
        app_config.route_handlers.append(EventsController)
        app_config.signature_namespace["LiveEvents"] = LiveEvents  # the controller names it (an import cycle)
        app_config.dependencies["live_events"] = Provide(self._provide, use_cache=True, sync_to_thread=False)
        if self.listener is not None:
            app_config.lifespan.append(self.listener.lifespan())
        app_config.on_startup.append(self._end_streams_on_stop)
        app_config.on_shutdown.insert(0, self.hub.close_all)
        return app_config

    def _provide(self) -> LiveEvents:
        return self

    async def authenticate(self, request: Request[Any, Any, Any], owner_id: UUID, ticket: str | None) -> Caller:
        """The caller, from the bearer header (the JWT middleware's check) or else a stream ticket.

        Raises:
            NotAuthenticated: neither was sent.
            InvalidToken, TokenExpired: as any route, for the header.
            InvalidTicket, TicketExpired, Forbidden: for the ticket.
        """
        if request.headers.get(self.bearer.auth_header):
            caller: Caller = (await self.bearer.authenticate_request(request)).user
            return caller
        if ticket is None:
            raise NotAuthenticated
        return self.tickets.caller(ticket, owner_id)

    async def open(self, caller: Caller, owner_id: UUID, cursor: str | None, *, source: str) -> Stream:
        """The stream after ``cursor``; its first page is read here, so a refusal is still an HTTP error."""
        stream = self.hub.open(caller, owner_id, self.feed.position(owner_id, cursor, source=source))
        try:
            await stream.start()
        except BaseException:
            stream.close()
            raise
        return Stream(stream.body(), media_type="text/event-stream", headers=_STREAM_HEADERS)

    def issue(self, caller: Caller, owner_id: UUID) -> StreamTicket:
        """A new ticket for ``caller`` to open ``owner_id``'s stream."""
        return StreamTicket(ticket=self.tickets.issue(caller, owner_id), expires_in=self.tickets.ttl_seconds)

    async def _end_streams_on_stop(self) -> None:
        """End every stream when the worker is told to stop (SIGTERM, SIGINT), not at shutdown.

        The server stops only once every response has ended, and an event stream does not end by
        itself: Litestar's shutdown hooks would run after a wait as long as the longest client.
        granian's worker handles these signals in its event loop (the loop's wakeup fd, which a
        Python-level handler leaves in place); one handler per process comes first and passes the
        signal on. It holds the hubs weakly: an app that is gone (tests build many) is not kept.
        """
        _RUNNING[self.hub] = asyncio.get_running_loop()
        if _RUNNING_HANDLER_INSTALLED:
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(signum, _then_previous(signal.getsignal(signum)))
            except ValueError:  # not the main thread (an embedded server): the shutdown hook ends them
                return
        _RUNNING_HANDLER_INSTALLED.append(True)


# The hubs of this process's running apps, with their loops; the handler is installed once.
_RUNNING: weakref.WeakKeyDictionary[Hub, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
_RUNNING_HANDLER_INSTALLED: list[bool] = []
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _then_previous(previous: Any) -> Callable[[int, FrameType | None], None]:  # noqa: ANN401  (getsignal's)
    """A signal handler: end every running hub's streams in its loop, then whatever handled the signal before."""

    def handler(signum: int, frame: FrameType | None) -> None:
        for hub, loop in list(_RUNNING.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(hub.close_all)
        if callable(previous):
            previous(signum, frame)

    return handler
