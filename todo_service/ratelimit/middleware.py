"""Where the rules run: every rule at once inside authentication, and refused callers outside it.

Which rules apply is declared by the route, in its ``opt``
(:data:`~todo_service.core.request_context.RATE_LIMIT`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import ASGIMiddleware

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


class RateLimits(ASGIMiddleware):
    """Inside authentication: the route's own rule, the per-IP rule and the caller's, in one check."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the request against every rule that applies, unless the route opts out."""
        declared = _declared(scope)
        if declared is not False:
            scope.setdefault("state", {})[COUNTED] = True
            checks = self.limiter.checks(scope, declared if isinstance(declared, str) else None, with_user=True)
            await self.limiter.enforce(scope, checks)
        await next_app(scope, receive, send)


class RefusedCallers(ASGIMiddleware):
    """Outside authentication: a request it refuses (a 401) still counts against the per-IP rule."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Pass the request on; count it only when authentication refused it before RateLimits ran."""
        try:
            await next_app(scope, receive, send)
        except (Unauthorized, NotAuthorizedException):
            declared = _declared(scope)
            if declared is not False and not scope.get("state", {}).get(COUNTED):
                checks = self.limiter.checks(scope, declared if isinstance(declared, str) else None, with_user=False)
                await self.limiter.enforce(scope, checks)  # a flood of bad tokens ends in 429s
            raise
