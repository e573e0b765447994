"""``/api/v1/health``: liveness and readiness probes (no token needed)."""

from litestar import Controller, get
from litestar.di import NamedDependency

from todo_service.lib.errors import InternalError, ServiceUnavailable
from todo_service.lib.openapi import error_responses
from todo_service.system.schemas import Health, Readiness
from todo_service.system.services import ReadinessProbe

__all__ = ("SystemController",)


class SystemController(Controller):
    """Probes for load balancers and orchestrators."""

    path = "/api/v1/health"
    tags = ["system"]

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
        """200 when every dependency answers in time; 503 naming the ones that did not."""
        return await readiness.check()
