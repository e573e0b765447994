"""``/api/v1/users/{user_id}/labels``: a user's labels. Another user's label answers 404, like a missing one."""

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from todo_service.core.errors import Forbidden, NotFound, PreconditionFailed
from todo_service.core.pagination import Page, PageNumber, PageSize
from todo_service.core.schema import MessageResponse
from todo_service.db.statements import Statements
from todo_service.http.conditional import IfMatch, IfNoneMatch, conditional, page_etag, revisions_in
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from todo_service.idempotency.responses import IdempotencyKey, run_once
from todo_service.labels.errors import LabelNameTaken, LabelNotFound
from todo_service.labels.schemas import LabelCreate, LabelRead, LabelUpdate
from todo_service.labels.services import LabelService
from todo_service.security.access import Caller

__all__ = ("LabelController",)

_NOT_MODIFIED = {304: ResponseSpec(None, description="Not Modified: the ETag in If-None-Match is current (no body)")}
_READ_ERRORS = {**error_responses(*AUTHENTICATED, Forbidden, NotFound), **_NOT_MODIFIED}
_ONE_ERRORS = {**error_responses(*AUTHENTICATED, Forbidden, NotFound, LabelNotFound), **_NOT_MODIFIED}
_CREATE_ERRORS = error_responses(
    *AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, LabelNameTaken, IdempotencyKeyReused, IdempotencyKeyInUse
)
_WRITE_ERRORS = error_responses(
    *AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, LabelNotFound, LabelNameTaken, PreconditionFailed
)
_DELETE_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound, LabelNotFound, PreconditionFailed)
_ETAG = [ResponseHeader(name="ETag", description="The version of what was returned", documentation_only=True)]


class LabelController(Controller):
    """A user's labels: a name unique per user (case-insensitively) and a colour; tasks carry their ids."""

    path = "/api/v1/users/{user_id:uuid}/labels"
    tags = ["labels"]

    @get(summary="List labels", responses=_READ_ERRORS, response_headers=_ETAG)
    async def list_labels(  # noqa: PLR0913  (the path, the page, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        label_service: NamedDependency[LabelService],
        page: PageNumber = 1,
        limit: PageSize = 20,
        if_none_match: IfNoneMatch = None,
    ) -> Response[Page[LabelRead]]:
        """The user's labels, by name.

        The page answers an ``ETag``; ``If-None-Match`` with it answers 304 while nothing in the page,
        nor its total, changed (a sync client polls this cheaply).
        """
        found = await label_service.list_page(request.user, user_id, page=page, limit=limit)
        return conditional(found, page_etag(found), if_none_match)

    @post(summary="Create a label", responses=_CREATE_ERRORS, response_headers=_ETAG)
    async def create_label(
        self,
        *,
        user_id: FromPath[UUID],
        data: JSONBody[LabelCreate],
        request: Request[Caller, Any, Any],
        label_service: NamedDependency[LabelService],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[LabelRead]:
        """Add a label (409 LABEL_NAME_TAKEN if the name exists, case-insensitively); ``Idempotency-Key`` retries."""

        async def create(db: Statements | None = None) -> Response[LabelRead]:
            created = await label_service.create_label(request.user, user_id, data.name, data.color, db=db)
            headers = {"Location": f"/api/v1/users/{user_id}/labels/{created.id}", "ETag": created.etag}
            return Response(created, status_code=201, headers=headers)

        if idempotency_key is None:
            return await create()
        return await run_once(request, label_service.idempotency, idempotency_key, create)

    @get("/{label_id:uuid}", summary="Read a label", responses=_ONE_ERRORS, response_headers=_ETAG)
    async def get_label(
        self,
        *,
        user_id: FromPath[UUID],
        label_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        label_service: NamedDependency[LabelService],
        if_none_match: IfNoneMatch = None,
    ) -> Response[LabelRead]:
        """One label, with its ``ETag``. Its tasks: ``GET .../tasks?label=...``."""
        found = await label_service.get_label(request.user, user_id, label_id)
        return conditional(found, found.etag, if_none_match)

    @patch("/{label_id:uuid}", summary="Rename or recolour a label", responses=_WRITE_ERRORS, response_headers=_ETAG)
    async def change_label(  # noqa: PLR0913  (the path, the body, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        label_id: FromPath[UUID],
        data: JSONBody[LabelUpdate],
        request: Request[Caller, Any, Any],
        label_service: NamedDependency[LabelService],
        if_match: IfMatch = None,
    ) -> Response[LabelRead]:
        """Change name or colour (omitted: unchanged); tasks keep the label."""
        changed = await label_service.change(
            request.user, user_id, label_id, data.sent_fields(), if_match=revisions_in(if_match)
        )
        return Response(changed, headers={"ETag": changed.etag})

    @delete("/{label_id:uuid}", status_code=200, summary="Delete a label", responses=_DELETE_ERRORS)
    async def delete_label(
        self,
        *,
        user_id: FromPath[UUID],
        label_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        label_service: NamedDependency[LabelService],
        if_match: IfMatch = None,
    ) -> MessageResponse:
        """Delete a label: it comes off every task that carried it (each gets a new ETag)."""
        touched = await label_service.delete_label(request.user, user_id, label_id, if_match=revisions_in(if_match))
        return MessageResponse(message=f"Label deleted successfully; removed from {touched} task(s)")
