"""The front door: the first middleware, one layer doing what every matched request needs first.

In this order: the request id goes into the scope state (:func:`~todo_service.http.headers.ensure_request_id`,
so logs, the audit trail and the exception handler can use it), the ``Host`` check
(:func:`~todo_service.http.hosts.check_host`: 400 ``INVALID_HOST``), the request body deadline
(:func:`~todo_service.http.body.bounded_receive`: 408, 499) and then the request's log context
(the observability layer's, handed in: every record the request logs carries its ids).

They were four middlewares; each ASGI layer costs a coroutine frame and Litestar's dispatch per
request, so the ones that always run, in a fixed order, share one (ADR 0002 has the profile). It is
a plain ASGI middleware (listed through :meth:`FrontDoor.define`), not Litestar's ``ASGIMiddleware``:
that class checks per request whether to bypass it (scope types, an opt key, excluded paths), and
this layer is never bypassed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware

from todo_service.http.body import bounded_receive
from todo_service.http.headers import ensure_request_id
from todo_service.http.hosts import AllowedHosts, check_host

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ("FrontDoor", "RequestContext")


class RequestContext(Protocol):
    """What makes a request the context of the records it logs (``RequestLogging`` is one)."""

    def enter(self, scope: Scope) -> Any:  # noqa: ANN401  (a token only ``leave`` reads)
        """Start the request's clock and make it the log context; returns what :meth:`leave` needs."""
        ...

    def leave(self, token: Any) -> None:  # noqa: ANN401
        """Undo :meth:`enter`."""
        ...


class FrontDoor:
    """Request id, Host check, body deadline, log context: first in the app's middleware list."""

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: AllowedHosts | None, body_timeout: float, context: RequestContext
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.body_timeout = body_timeout
        self.context = context

    @classmethod
    def define(
        cls, allowed_hosts: AllowedHosts | None, body_timeout: float, context: RequestContext
    ) -> DefineMiddleware:
        """The entry of the app's middleware list."""
        return DefineMiddleware(cls, allowed_hosts=allowed_hosts, body_timeout=body_timeout, context=context)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its id, its host checked, its body bounded and its log context."""
        # App middleware wraps matched routes only: an HTTP or WebSocket scope, never the lifespan.
        ensure_request_id(scope)
        check_host(scope, self.allowed_hosts)  # always: two Host headers are refused whatever ALLOWED_HOSTS says
        if scope["type"] == ScopeType.HTTP:
            receive = bounded_receive(receive, self.body_timeout)
        token = self.context.enter(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            self.context.leave(token)
