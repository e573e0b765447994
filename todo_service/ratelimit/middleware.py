"""Where the rules run: before authentication (per IP, the route's own) and after it (per user).

Which rules apply is declared by the route, in its ``opt``
(:data:`~todo_service.core.request_context.RATE_LIMIT`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from todo_service.core.request_context import RATE_LIMIT

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from todo_service.ratelimit.limiter import RateLimiter

__all__ = ("PerClientLimits", "PerUserLimits")


def _declared(scope: Scope) -> str | bool | None:
    """The route's :data:`RATE_LIMIT` option: its own rule's name, False (never limited), or None."""
    handler = scope.get("route_handler")  # app middleware runs for matched routes only
    return None if handler is None else handler.opt.get(RATE_LIMIT)


class PerClientLimits(ASGIMiddleware):
    """Before authentication: the per-IP rule on every route, plus the route's own rule."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count the request against the per-IP rule and the route's own, unless the route opts out."""
        declared = _declared(scope)
        if declared is not False:
            ip = self.limiter.client_address.of(scope)
            checks = [("per_ip", self.limiter.per_ip, ip)]
            if isinstance(declared, str):  # the tighter rule first: a refusal spends no per-IP slot
                checks.insert(0, (declared, self.limiter.routes[declared], ip))
            await self.limiter.enforce(scope, checks)
        await next_app(scope, receive, send)


class PerUserLimits(ASGIMiddleware):
    """After authentication: the per-user rule, for requests that carry a valid token."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Count an authenticated request against its caller's rule, unless the route opts out."""
        user_id = getattr(scope.get("user"), "user_id", None)  # the caller, when a valid token came
        if user_id is not None and _declared(scope) is not False:
            await self.limiter.enforce(scope, [("per_user", self.limiter.per_user, str(user_id))])
        await next_app(scope, receive, send)
