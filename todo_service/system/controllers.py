"""``/api/v1/health``: liveness and readiness probes (no token needed)."""

from litestar import Controller, get
from litestar.di import NamedDependency

from todo_service.core.errors import InternalError, ServiceUnavailable
from todo_service.core.request_context import RATE_LIMIT
from todo_service.http.openapi import error_responses
from todo_service.observability.traces import UNTRACED
from todo_service.system.schemas import Health, Readiness
from todo_service.system.services import ReadinessProbe

__all__ = ("SystemController",)


class SystemController(Controller):
    """Probes for load balancers and orchestrators."""

    path = "/api/v1/health"
    tags = ["system"]
    opt = {RATE_LIMIT: False, UNTRACED: True}  # probes are never rate limited, nor traced

    @get(exclude_from_auth=True, security=[{}], summary="Liveness", responses=error_responses(InternalError))
    async def health(self) -> Health:
        """The process serves requests. Touches no dependency, so it stays cheap."""
        return Health()

    @get(
        "/ready",
        exclude_from_auth=True,
        security=[{}],
        summary="Readiness",
        responses=error_responses(ServiceUnavailable, InternalError),
    )
    async def ready(self, readiness: NamedDependency[ReadinessProbe]) -> Readiness:
        """200 when the service can serve; 503 naming each required dependency that did not answer in time.

        The database is required. Redis (rate limits) is optional: when it is down the service
        still serves (rate limits fail open: requests are not limited) and the answer is 200 with
        ``status: "degraded"`` and ``degraded`` naming it, so that an orchestrator does not take
        every replica out of rotation at once over a cache.
        """
        return await readiness.check()
