"""Where the rules run: every rule at once inside authentication, and refused callers outside it.

Which rules apply is declared by the route, in its ``opt``
(:data:`~todo_service.core.request_context.RATE_LIMIT`). Both are plain ASGI middleware (listed
through ``DefineMiddleware``), not Litestar's ``ASGIMiddleware``: that class checks per request
whether to bypass it, and app middleware only sees requests a route matched, whose own option
decides here (the app has no WebSocket route; a handshake to one would count as a request).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.exceptions import NotAuthorizedException

from todo_service.core.errors import Unauthorized
from todo_service.core.request_context import RATE_LIMIT

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from todo_service.ratelimit.limiter import RateLimiter

__all__ = ("RateLimits", "RefusedCallers")

COUNTED = "rate_limit_counted"  # in ``scope["state"]``: the request went through RateLimits


def _declared(scope: Scope) -> str | bool | None:
    """The route's :data:`RATE_LIMIT` option: its own rule's name, False (never limited), or None."""
    handler = scope.get("route_handler")  # app middleware runs for matched routes only
    return None if handler is None else handler.opt.get(RATE_LIMIT)


class RateLimits:
    """Inside authentication: the route's own rule, the per-IP rule and the caller's, in one check."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request against every rule that applies, unless the route opts out."""
        declared = _declared(scope)
        if declared is not False:
            scope.setdefault("state", {})[COUNTED] = True
            checks = self.limiter.checks(scope, declared if isinstance(declared, str) else None, with_user=True)
            await self.limiter.enforce(scope, checks)
        await self.app(scope, receive, send)


class RefusedCallers:
    """Outside authentication: a request it refuses (a 401) still counts against the per-IP rule."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it only when authentication refused it before RateLimits ran."""
        try:
            await self.app(scope, receive, send)
        except (Unauthorized, NotAuthorizedException):
            declared = _declared(scope)
            if declared is not False and not scope.get("state", {}).get(COUNTED):
                checks = self.limiter.checks(scope, declared if isinstance(declared, str) else None, with_user=False)
                await self.limiter.enforce(scope, checks)  # a flood of bad tokens ends in 429s
            raise
