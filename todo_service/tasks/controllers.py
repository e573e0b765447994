"""``/api/v1/users/{user_id}/tasks``: a user's tasks."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from todo_service.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from todo_service.core.pagination import Page, PageNumber, PageSize
from todo_service.core.schema import NO_NUL, MessageResponse
from todo_service.db.models import Priority
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.security.access import Caller
from todo_service.tasks.errors import TaskNotFound
from todo_service.tasks.schemas import (
    READ_ONLY_FIELDS,
    SORT_PATTERN,
    TaskCompletion,
    TaskCreate,
    TaskFilters,
    TaskRead,
    TaskUpdate,
)
from todo_service.tasks.services import TaskService

__all__ = ("TaskController",)


# A malformed id in the path matches no route: 404 NOT_FOUND, like any unknown URL.
_READ_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound)
_TASK_ERRORS = error_responses(*AUTHENTICATED, Forbidden, NotFound, TaskNotFound)
_WRITE_ERRORS = error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, TaskNotFound)


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
        sort: Annotated[
            str,
            QueryParameter(
                pattern=SORT_PATTERN,
                description=(
                    "Comma-separated fields, '-' for descending: created_at, updated_at, due_date, priority, "
                    "title, completed. Tasks without a due date come last; id breaks ties."
                ),
            ),
        ] = "-created_at",
        page: PageNumber = 1,
        limit: PageSize = 20,
    ) -> Page[TaskRead]:
        """A page of the user's tasks, newest first unless sorted otherwise, with the total count."""
        filters = TaskFilters(
            completed=completed,
            priority=priority,
            search=search,
            due_before=due_before,
            due_after=due_after,
            overdue=overdue,
            sort=tuple(sort.split(",")),
            page=page,
            limit=limit,
        )
        return await task_service.list_page(request.user, user_id, filters)

    @post(summary="Create a task", responses=_WRITE_ERRORS)
    async def create_task(
        self,
        user_id: FromPath[UUID],
        data: JSONBody[TaskCreate],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
    ) -> Response[TaskRead]:
        """Add a task; the ``Location`` header points at it."""
        task = await task_service.create_task(request.user, user_id, data)
        return Response(task, status_code=201, headers={"Location": f"{self.path_for(user_id)}/{task.id}"})

    @get("/{task_id:uuid}", summary="Read a task", responses=_TASK_ERRORS)
    async def get_task(
        self,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
    ) -> TaskRead:
        """One task."""
        return await task_service.get_task(request.user, user_id, task_id)

    @put("/{task_id:uuid}", summary="Change a task", responses=_WRITE_ERRORS)
    async def update_task(
        self,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        data: JSONBody[TaskUpdate],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
    ) -> TaskRead:
        """Change any fields: omitted ones stay as they are, ``null`` clears description or due_date.

        Read-only fields (``id``, ``user_id``, ``completed_at``, ``created_at``, ``updated_at``) may
        be sent back unchanged; a different value is a 422 naming the field.
        """
        changes = data.sent_fields()
        if stated := {name: changes.pop(name) for name in READ_ONLY_FIELDS if name in changes}:
            stored = await task_service.get_task(request.user, user_id, task_id)
            if differ := [name for name, value in stated.items() if getattr(stored, name) != value]:
                errors = [
                    FieldError(field=name, message="is read-only and differs from the task", source="body")
                    for name in differ
                ]
                raise ValidationFailed(f"Invalid {differ[0]}: is read-only and differs from the task", errors=errors)
        return await task_service.update_task(request.user, user_id, task_id, changes)

    @delete("/{task_id:uuid}", status_code=200, summary="Delete a task", responses=_TASK_ERRORS)
    async def delete_task(
        self,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
    ) -> MessageResponse:
        """Delete a task for good."""
        await task_service.delete_task(request.user, user_id, task_id)
        return MessageResponse(message="Task deleted successfully")

    @patch("/{task_id:uuid}/complete", summary="Mark a task done or not done", responses=_WRITE_ERRORS)
    async def complete_task(
        self,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        data: JSONBody[TaskCompletion],
        request: Request[Caller, Any, Any],
        task_service: NamedDependency[TaskService],
    ) -> TaskRead:
        """Set ``completed``; ``completed_at`` is stamped on completion and cleared on reopening."""
        return await task_service.complete(request.user, user_id, task_id, completed=data.completed)

    @staticmethod
    def path_for(user_id: UUID) -> str:
        """The collection URL of a user's tasks."""
        return f"/api/v1/users/{user_id}/tasks"
