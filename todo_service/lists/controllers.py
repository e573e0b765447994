"""``/api/v1/users/{user_id}/lists``: a user's task lists. Another user's list answers 404, like a missing one."""

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from todo_service.core.errors import Forbidden, NotFound, PreconditionFailed
from todo_service.core.pagination import Page, PageNumber, PageSize
from todo_service.core.schema import MessageResponse
from todo_service.db.statements import Statements
from todo_service.http.conditional import IfMatch, IfNoneMatch, conditional, page_etag, revisions_in
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from todo_service.idempotency.responses import IdempotencyKey, run_once
from todo_service.lists.errors import DefaultListUndeletable, ListNotFound
from todo_service.lists.schemas import ListCreate, ListRead, ListTasks, ListUpdate
from todo_service.lists.services import ListService
from todo_service.security.access import Caller

__all__ = ("ListController",)

_NOT_MODIFIED = {304: ResponseSpec(None, description="Not Modified: the ETag in If-None-Match is current (no body)")}
_READ_ERRORS = {**error_responses(*AUTHENTICATED, Forbidden, NotFound), **_NOT_MODIFIED}
_ONE_ERRORS = {**error_responses(*AUTHENTICATED, Forbidden, NotFound, ListNotFound), **_NOT_MODIFIED}
_CREATE_ERRORS = error_responses(
    *AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, IdempotencyKeyReused, IdempotencyKeyInUse
)
_WRITE_ERRORS = error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, ListNotFound, PreconditionFailed)
_DELETE_ERRORS = error_responses(
    *AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, ListNotFound, DefaultListUndeletable, PreconditionFailed
)
_ETAG = [ResponseHeader(name="ETag", description="The version of what was returned", documentation_only=True)]


class ListController(Controller):
    """A user's lists of tasks; the Inbox (``is_default``) is always there and cannot be deleted."""

    path = "/api/v1/users/{user_id:uuid}/lists"
    tags = ["lists"]

    @get(summary="List lists", responses=_READ_ERRORS, response_headers=_ETAG)
    async def list_lists(  # noqa: PLR0913  (the path, the page, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        list_service: NamedDependency[ListService],
        page: PageNumber = 1,
        limit: PageSize = 20,
        if_none_match: IfNoneMatch = None,
    ) -> Response[Page[ListRead]]:
        """The user's lists: the Inbox first, then the others, oldest first.

        The page answers an ``ETag``; ``If-None-Match`` with it answers 304 while nothing in the page,
        nor its total, changed (a sync client polls this cheaply).
        """
        found = await list_service.list_page(request.user, user_id, page=page, limit=limit)
        return conditional(found, page_etag(found), if_none_match)

    @post(summary="Create a list", responses=_CREATE_ERRORS, response_headers=_ETAG)
    async def create_list(
        self,
        *,
        user_id: FromPath[UUID],
        data: JSONBody[ListCreate],
        request: Request[Caller, Any, Any],
        list_service: NamedDependency[ListService],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ListRead]:
        """Add a list; the ``Location`` header points at it. Retry safely with an ``Idempotency-Key``."""

        async def create(db: Statements | None = None) -> Response[ListRead]:
            created = await list_service.create_list(request.user, user_id, data.name, db=db)
            headers = {"Location": f"/api/v1/users/{user_id}/lists/{created.id}", "ETag": created.etag}
            return Response(created, status_code=201, headers=headers)

        if idempotency_key is None:
            return await create()
        return await run_once(request, list_service.idempotency, idempotency_key, create)

    @get("/{list_id:uuid}", summary="Read a list", responses=_ONE_ERRORS, response_headers=_ETAG)
    async def get_list(
        self,
        *,
        user_id: FromPath[UUID],
        list_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        list_service: NamedDependency[ListService],
        if_none_match: IfNoneMatch = None,
    ) -> Response[ListRead]:
        """One list, with its ``ETag``. Its tasks: ``GET .../tasks?list_id=...``."""
        found = await list_service.get_list(request.user, user_id, list_id)
        return conditional(found, found.etag, if_none_match)

    @patch("/{list_id:uuid}", summary="Rename a list", responses=_WRITE_ERRORS, response_headers=_ETAG)
    async def rename_list(  # noqa: PLR0913  (the path, the body, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        list_id: FromPath[UUID],
        data: JSONBody[ListUpdate],
        request: Request[Caller, Any, Any],
        list_service: NamedDependency[ListService],
        if_match: IfMatch = None,
    ) -> Response[ListRead]:
        """Rename a list (the Inbox too); with ``If-Match``, only if it is still at that version."""
        renamed = await list_service.rename(request.user, user_id, list_id, data.name, if_match=revisions_in(if_match))
        return Response(renamed, headers={"ETag": renamed.etag})

    @delete("/{list_id:uuid}", status_code=200, summary="Delete a list", responses=_DELETE_ERRORS)
    async def delete_list(  # noqa: PLR0913  (the path, what becomes of the tasks, the precondition, the context)
        self,
        *,
        user_id: FromPath[UUID],
        list_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        list_service: NamedDependency[ListService],
        tasks: Annotated[
            Literal["move", "delete"],
            QueryParameter(
                description="move (default): the list's tasks go to `to` or the Inbox; delete: to the trash "
                "(restorable into the Inbox)"
            ),
        ] = "move",
        to: Annotated[
            UUID | None, QueryParameter(description="With tasks=move: another of the user's lists (default: the Inbox)")
        ] = None,
        if_match: IfMatch = None,
    ) -> MessageResponse:
        """Delete a list (never the Inbox: 409 DEFAULT_LIST); its tasks move or go to the trash, in one transaction."""
        fate = ListTasks(tasks)
        moved = await list_service.delete_list(
            request.user, user_id, list_id, tasks=fate, to=to, if_match=revisions_in(if_match)
        )
        verb = "moved" if fate is ListTasks.MOVE else "moved to the trash"
        return MessageResponse(message=f"List deleted successfully; {moved} task(s) {verb}")
