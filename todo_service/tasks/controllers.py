"""``/api/v1/users/{user_id}/tasks``: a user's tasks, their change feed, batches, trash and moves.

Over 300 lines on purpose: one controller per URL prefix, so that a route's code is found from its
URL in one guess; each handler is thin (parse, one service call, the response).
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from todo_service.core.errors import FieldError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from todo_service.core.pagination import Page, PageNumber, PageSize
from todo_service.core.schema import NO_NUL, MessageResponse
from todo_service.db.models import Priority
from todo_service.db.statements import Statements
from todo_service.http.conditional import IfMatch, IfNoneMatch, conditional, revisions_in
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.idempotency.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from todo_service.idempotency.responses import IdempotencyKey, run_once
from todo_service.security.access import Caller
from todo_service.tasks.batch import run_batch
from todo_service.tasks.errors import CursorExpired, TaskNotFound
from todo_service.tasks.labelling import MAX_LABELS
from todo_service.tasks.schemas import (
    SORT_PATTERN,
    BatchRequest,
    BatchResponse,
    ChangePage,
    TaskCompletion,
    TaskCreate,
    TaskFilters,
    TaskMove,
    TaskRead,
    TaskScroll,
    TaskUpdate,
    TrashedTask,
)
from todo_service.tasks.services import TaskService

__all__ = ("TaskController",)


# A malformed id in the path matches no route: 404 NOT_FOUND, like any unknown URL.
_NOT_MODIFIED = {304: ResponseSpec(None, description="Not Modified: the ETag in If-None-Match is current (no body)")}
_READ_ERRORS = {**error_responses(*AUTHENTICATED, Forbidden, NotFound), **_NOT_MODIFIED}
_TASK_ERRORS = {**error_responses(*AUTHENTICATED, Forbidden, NotFound, TaskNotFound), **_NOT_MODIFIED}
_FEED_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound, CursorExpired)
_CONDITIONAL = (*AUTHENTICATED, Forbidden, NotFound, TaskNotFound, PreconditionFailed)
_DELETE_ERRORS = error_responses(*_CONDITIONAL)
_WRITE_ERRORS = error_responses(*_CONDITIONAL, *WITH_BODY)
_CREATE_ERRORS = error_responses(
    *AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, IdempotencyKeyReused, IdempotencyKeyInUse
)
_BATCH_ERRORS = error_responses(*_CONDITIONAL, *WITH_BODY, IdempotencyKeyReused, IdempotencyKeyInUse)
_RESTORE_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound, TaskNotFound)
_TRASH_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound)
_ETAG = [ResponseHeader(name="ETag", description="The version of what was returned", documentation_only=True)]


class TaskController(Controller):
    """A user's tasks. Another user's task answers 404, exactly like a missing one.

    ``task_service`` is the app's one service; the caller is ``request.user`` (set by the JWT
    middleware), not a second dependency: Litestar resolves two dependencies of one level in an
    anyio task group, which costs more per request than the handler's own work.
    """

    path = "/api/v1/users/{user_id:uuid}/tasks"
    tags = ["tasks"]

    @get(summary="List tasks", responses=_READ_ERRORS)
    async def list_tasks(  # noqa: PLR0913  (one argument per documented query parameter)
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        completed: Annotated[bool | None, QueryParameter(description="Only done (true) or open (false) tasks")] = None,
        priority: Annotated[Priority | None, QueryParameter(description="Only tasks of this priority")] = None,
        search: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=200,
                pattern=NO_NUL,
                description="Case-insensitive text in title or description (% and _ match themselves)",
            ),
        ] = None,
        due_before: Annotated[datetime | None, QueryParameter(description="Due strictly before this time")] = None,
        due_after: Annotated[datetime | None, QueryParameter(description="Due strictly after this time")] = None,
        overdue: Annotated[
            bool | None, QueryParameter(description="Only open tasks past their due date (true), or the rest")
        ] = None,
        list_id: Annotated[UUID | None, QueryParameter(description="Only tasks in this list of the user's")] = None,
        label: Annotated[
            list[UUID] | None,
            QueryParameter(
                max_items=MAX_LABELS,
                description=f"Only tasks with these labels (repeat the parameter, up to {MAX_LABELS}; see label_match)",
            ),
        ] = None,
        label_match: Annotated[
            Literal["any", "all"],
            QueryParameter(description="With label: tasks with any of the labels (default), or all of them"),
        ] = "any",
        completed_since: Annotated[
            datetime | None, QueryParameter(description="Only tasks completed at or after this time")
        ] = None,
        parent_id: Annotated[
            UUID | None,
            QueryParameter(description="Only the subtasks of this task (sort=position: their manual order)"),
        ] = None,
        top_level: Annotated[
            bool | None, QueryParameter(description="Only tasks without a parent (true), or only subtasks (false)")
        ] = None,
        sort: Annotated[
            str,
            QueryParameter(
                pattern=SORT_PATTERN,
                description=(
                    "Comma-separated fields, '-' for descending: created_at, updated_at, due_date, priority, "
                    "title, completed, position (the manual order among siblings: use it with list_id or "
                    "parent_id). Tasks without a due date come last; id breaks ties."
                ),
            ),
        ] = "-created_at",
        page: PageNumber = 1,
        limit: PageSize = 20,
        cursor: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=512,
                description=(
                    "Read by cursor instead of page number: 'start' for the first tasks, then the answer's "
                    "next_cursor. The answer has no total and costs the same at any depth (docs: Pagination)"
                ),
            ),
        ] = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response[Page[TaskRead] | TaskScroll]:
        """A page of the user's tasks, newest first unless sorted otherwise, with the total count.

        With ``cursor``, a stretch of the same listing read by keyset: ``{items, limit, next_cursor,
        has_more}``, no total. Deep in a long list this stays as fast as the first page.
        """
        filters = TaskFilters(
            completed=completed,
            priority=priority,
            search=search,
            due_before=due_before,
            due_after=due_after,
            overdue=overdue,
            list_id=list_id,
            labels=tuple(dict.fromkeys(label or ())),
            label_match=label_match,
            completed_since=completed_since,
            parent_id=parent_id,
            top_level=top_level,
            sort=tuple(sort.split(",")),
            page=page,
            limit=limit,
        )
        if cursor is None:
            found, etag = await task_service.list_page(request.user, user_id, filters)
            return conditional(found, etag, if_none_match)
        if page != 1:
            raise ValidationFailed(
                "Give page or cursor, not both",
                errors=[FieldError(field="page", message="cannot be combined with cursor", source="query")],
            )
        scrolled, etag = await task_service.scroll(request.user, user_id, filters, cursor)
        return conditional(scrolled, etag, if_none_match)

    @post(summary="Create a task", responses=_CREATE_ERRORS, response_headers=_ETAG)
    async def create_task(
        self,
        *,
        user_id: FromPath[UUID],
        data: JSONBody[TaskCreate],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TaskRead]:
        """Add a task; the ``Location`` header points at it. Retry safely with an ``Idempotency-Key``."""

        async def create(db: Statements | None = None) -> Response[TaskRead]:
            task = await task_service.create_task(request.user, user_id, data, db=db)
            headers = {"Location": f"{self.path_for(user_id)}/{task.id}", "ETag": task.etag}
            return Response(task, status_code=201, headers=headers)

        if idempotency_key is None:
            return await create()
        return await run_once(request, task_service.idempotency, idempotency_key, create)

    @get("/{task_id:uuid}", summary="Read a task", responses=_TASK_ERRORS, response_headers=_ETAG)
    async def get_task(
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        if_none_match: IfNoneMatch = None,
    ) -> Response[TaskRead]:
        """One task, with its ``ETag``; ``If-None-Match`` with that tag answers 304 while it is current."""
        task = await task_service.get_task(request.user, user_id, task_id)
        return conditional(task, task.etag, if_none_match)

    @put("/{task_id:uuid}", summary="Change a task", responses=_WRITE_ERRORS, response_headers=_ETAG)
    async def update_task(  # noqa: PLR0913  (the path, the body, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        data: JSONBody[TaskUpdate],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        if_match: IfMatch = None,
    ) -> Response[TaskRead]:
        """Change any fields: omitted ones stay as they are, ``null`` clears description or due_date.

        Read-only fields (``id``, ``user_id``, ``completed_at``, ``created_at``, ``updated_at``,
        ``etag``) may be sent back unchanged; a different value is a 422 naming the field.
        """
        fields = data.sent_fields()
        task = await task_service.edit(request.user, user_id, task_id, fields, if_match=revisions_in(if_match))
        return Response(task, headers={"ETag": task.etag})

    @delete("/{task_id:uuid}", status_code=200, summary="Delete a task", responses=_DELETE_ERRORS)
    async def delete_task(  # noqa: PLR0913  (the path, the precondition, the mode and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        if_match: IfMatch = None,
        permanent: Annotated[
            bool,
            QueryParameter(description="Delete for good (a task in the trash too) instead of moving it to the trash"),
        ] = False,
    ) -> MessageResponse:
        """Delete a task: it answers 404 from now on, and the change feed reports the deletion.

        It goes to the trash (``GET .../tasks/trash``), restorable for ``TRASH_RETENTION_DAYS`` (30)
        with ``POST .../tasks/{task_id}/restore``; ``?permanent=true`` deletes it for good.
        """
        await task_service.delete_task(
            request.user, user_id, task_id, if_match=revisions_in(if_match), permanent=permanent
        )
        return MessageResponse(message="Task deleted successfully")

    @post(
        "/{task_id:uuid}/restore",
        status_code=200,
        summary="Restore a task from the trash",
        responses=_RESTORE_ERRORS,
        response_headers=_ETAG,
    )
    async def restore_task(
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
    ) -> Response[TaskRead]:
        """Take a deleted task out of the trash before it expires: it is back, with a new ``ETag``."""
        task = await task_service.restore_task(request.user, user_id, task_id)
        return Response(task, headers={"ETag": task.etag})

    @get("/trash", summary="List the trash", responses=_TRASH_ERRORS)
    async def trash(
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        page: PageNumber = 1,
        limit: PageSize = 20,
    ) -> Page[TrashedTask]:
        """The user's deleted tasks that can still be restored, most recently deleted first."""
        return await task_service.trash(request.user, user_id, page=page, limit=limit)

    @patch(
        "/{task_id:uuid}/complete",
        summary="Mark a task done or not done",
        responses=_WRITE_ERRORS,
        response_headers=_ETAG,
    )
    async def complete_task(  # noqa: PLR0913  (the path, the body, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        data: JSONBody[TaskCompletion],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        if_match: IfMatch = None,
    ) -> Response[TaskRead]:
        """Set ``completed``; ``completed_at`` is stamped on completion and cleared on reopening."""
        task = await task_service.complete(
            request.user, user_id, task_id, completed=data.completed, if_match=revisions_in(if_match)
        )
        return Response(task, headers={"ETag": task.etag})

    @post(
        "/{task_id:uuid}/move",
        status_code=200,
        summary="Move a task among its siblings",
        responses=_WRITE_ERRORS,
        response_headers=_ETAG,
    )
    async def move_task(  # noqa: PLR0913  (the path, the body, the precondition and the request's context)
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        data: JSONBody[TaskMove],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        if_match: IfMatch = None,
    ) -> Response[TaskRead]:
        """Put a task right after (``after``) or before (``before``) a sibling, or first/last (``null``).

        Its ``position`` changes, and nothing else: no other task is rewritten (``sort=position`` lists
        the new order). Exactly one of ``after`` and ``before``; the sibling must be in the same list
        and under the same parent (422 otherwise).
        """
        sent = data.sent_fields()
        if len(sent) != 1:
            message = "give exactly one of after and before"
            errors = [FieldError(field="after", message=message, source="body")]
            raise ValidationFailed(f"Invalid body: {message}", errors=errors)
        [(where, anchor_id)] = sent.items()
        task = await task_service.move(
            request.user,
            user_id,
            task_id,
            anchor_id=anchor_id,
            after=where == "after",
            if_match=revisions_in(if_match),
        )
        return Response(task, headers={"ETag": task.etag})

    @get("/changes", summary="Changes since a cursor", responses=_FEED_ERRORS)
    async def changes(
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        cursor: Annotated[
            str | None,
            QueryParameter(
                min_length=1,
                max_length=200,
                description="next_cursor of the previous answer; none: from the beginning",
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Changes per answer (1..1000)")] = 100,
    ) -> ChangePage:
        """Every change to the user's tasks after ``cursor``, in commit order, each task once in its latest state.

        Store ``next_cursor`` and ask again: you get every later change exactly once, even when
        concurrent writes commit out of order. ``has_more``: ask again at once. A cursor older than
        the tombstones kept (``TOMBSTONE_RETENTION_DAYS``) answers 410 CURSOR_EXPIRED: start again
        without a cursor.
        """
        return await task_service.changes(request.user, user_id, cursor, limit)

    @post("/batch", status_code=200, summary="Run several operations at once", responses=_BATCH_ERRORS)
    async def batch(
        self,
        *,
        user_id: FromPath[UUID],
        data: JSONBody[BatchRequest],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BatchResponse]:
        """1..100 operations (create, update, complete, delete) in one transaction, all or nothing.

        Each obeys its single route's rules (validation, ownership, ``if_match``); the first failure
        answers that operation's error with its index in ``operation``, and nothing is kept.
        """

        async def run(db: Statements | None = None) -> Response[BatchResponse]:
            return Response(await run_batch(task_service, request.user, user_id, data.operations, db))

        if idempotency_key is None:
            return await run()
        return await run_once(request, task_service.idempotency, idempotency_key, run)

    @staticmethod
    def path_for(user_id: UUID) -> str:
        """The collection URL of a user's tasks."""
        return f"/api/v1/users/{user_id}/tasks"
