"""``/api/v1/users/{user_id}/webhooks``: a user's webhooks, their secrets and their deliveries."""

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from todo_service.core.errors import Forbidden, NotFound
from todo_service.core.schema import MessageResponse
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.security.access import Caller
from todo_service.webhooks.errors import WebhookNotFound, WebhookTargetRefused
from todo_service.webhooks.schemas import (
    DeliveryRead,
    TestQueued,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookSecret,
)
from todo_service.webhooks.services import WebhookService

__all__ = ("WebhookController",)

_LIST_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound)
_ONE_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound, WebhookNotFound)
_CREATE_ERRORS = error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, WebhookTargetRefused)


class WebhookController(Controller):
    """A user's webhooks. Another user's webhook answers 404, exactly like a missing one."""

    path = "/api/v1/users/{user_id:uuid}/webhooks"
    tags = ["webhooks"]

    @post(summary="Register a webhook", responses=_CREATE_ERRORS)
    async def create_webhook(
        self,
        *,
        user_id: FromPath[UUID],
        data: JSONBody[WebhookCreate],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
    ) -> Response[WebhookCreated]:
        """Register a URL for task events; the answer holds the signing ``secret``, shown this once."""
        created = await webhook_service.create(request.user, user_id, data)
        return Response(created, status_code=201, headers={"Location": f"{self.path_for(user_id)}/{created.id}"})

    @staticmethod
    def path_for(user_id: UUID) -> str:
        """The collection's path for ``user_id``."""
        return f"/api/v1/users/{user_id}/webhooks"

    @get(summary="List webhooks", responses=_LIST_ERRORS)
    async def list_webhooks(
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
    ) -> list[WebhookRead]:
        """Every webhook of the user, oldest first; a disabled one says when and why."""
        return await webhook_service.list(request.user, user_id)

    @get("/{webhook_id:uuid}", summary="Read a webhook", responses=_ONE_ERRORS)
    async def get_webhook(
        self,
        *,
        user_id: FromPath[UUID],
        webhook_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
    ) -> WebhookRead:
        """One webhook (never its secret)."""
        return await webhook_service.get(request.user, user_id, webhook_id)

    @delete("/{webhook_id:uuid}", status_code=200, summary="Delete a webhook", responses=_ONE_ERRORS)
    async def delete_webhook(
        self,
        *,
        user_id: FromPath[UUID],
        webhook_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
    ) -> MessageResponse:
        """Delete a webhook: nothing more is sent to it, its undelivered events included."""
        await webhook_service.delete(request.user, user_id, webhook_id)
        return MessageResponse(message="Webhook deleted successfully")

    @post("/{webhook_id:uuid}/rotate-secret", status_code=200, summary="Rotate the secret", responses=_ONE_ERRORS)
    async def rotate_secret(
        self,
        *,
        user_id: FromPath[UUID],
        webhook_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
    ) -> WebhookSecret:
        """A new signing secret, shown this once; every attempt from now on is signed with it."""
        return await webhook_service.rotate_secret(request.user, user_id, webhook_id)

    @post("/{webhook_id:uuid}/test", status_code=202, summary="Send a ping", responses=_ONE_ERRORS)
    async def test_webhook(
        self,
        *,
        user_id: FromPath[UUID],
        webhook_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
    ) -> TestQueued:
        """Queue a signed ``webhook.ping`` event; its attempts show in the deliveries listing."""
        return TestQueued(await webhook_service.ping(request.user, user_id, webhook_id))

    @get("/{webhook_id:uuid}/deliveries", summary="List deliveries", responses=_ONE_ERRORS)
    async def list_deliveries(
        self,
        *,
        user_id: FromPath[UUID],
        webhook_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        webhook_service: NamedDependency[WebhookService],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Deliveries to list (1..100)")] = 20,
    ) -> list[DeliveryRead]:
        """The latest deliveries, newest first, each with every attempt (status, latency, error)."""
        return await webhook_service.deliveries(request.user, user_id, webhook_id, limit)
