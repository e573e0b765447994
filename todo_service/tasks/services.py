"""Tasks: the rules of the task routes, over :class:`~todo_service.tasks.repository.TaskRepository`.

The repository answers None when a statement found nothing it may touch; the service tells the
caller why (:func:`~todo_service.security.access.refuse`: a 404 for a task that is not there or not
theirs, a 403 or 401 when their own permission is the reason).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from todo_service.core.errors import AppError, Forbidden
from todo_service.core.pagination import Page
from todo_service.security.access import refuse
from todo_service.tasks.errors import TaskNotFound
from todo_service.tasks.repository import as_utc
from todo_service.tasks.schemas import TaskRead

if TYPE_CHECKING:
    from uuid import UUID

    from todo_service.security.access import Caller
    from todo_service.tasks.repository import TaskRepository
    from todo_service.tasks.schemas import TaskCreate, TaskFilters

__all__ = ("TaskService",)


class TaskService:
    """A user's tasks. One per app, shared by every request."""

    def __init__(self, repository: TaskRepository) -> None:
        self.repository = repository

    async def list_page(self, caller: Caller, owner_id: UUID, filters: TaskFilters) -> Page[TaskRead]:
        """One page of ``owner_id``'s tasks and the total, in one round trip (two past the last page)."""
        rows, total = await self.repository.page(caller, owner_id, filters)
        return Page.of([TaskRead(*row) for row in rows], total=total, page=filters.page, limit=filters.limit)

    async def get_task(self, caller: Caller, owner_id: UUID, task_id: UUID) -> TaskRead:
        """One task of ``owner_id``.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        row = await self.repository.one(caller, owner_id, task_id)
        if row is None:
            await self._refuse(caller, owner_id, write=False, otherwise=TaskNotFound())
        return TaskRead(*row)

    async def create_task(self, caller: Caller, owner_id: UUID, data: TaskCreate) -> TaskRead:
        """Add a task to ``owner_id``'s list (one INSERT … SELECT, guarded by the caller's permission)."""
        now = datetime.now(UTC)
        values = {
            "id": uuid.uuid4(),
            "title": data.title,
            "description": data.description,
            "completed": data.completed,
            "priority": data.priority,
            "due_date": as_utc(data.due_date),
            "completed_at": now if data.completed else None,
            "created_at": now,
            "updated_at": now,
        }
        row = await self.repository.insert(caller, owner_id, values)
        if row is None:
            # Allowed now but refused a moment ago means the caller's role changed in between.
            await self._refuse(caller, owner_id, write=True, otherwise=Forbidden())
        return TaskRead(*row)

    async def update_task(self, caller: Caller, owner_id: UUID, task_id: UUID, changes: dict[str, Any]) -> TaskRead:
        """Change the given fields (``None`` clears an optional one); completion stamps ``completed_at``.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        if "due_date" in changes:
            changes = {**changes, "due_date": as_utc(changes["due_date"])}
        row = await self.repository.update_fields(caller, owner_id, task_id, changes, datetime.now(UTC))
        if row is None:
            await self._refuse(caller, owner_id, write=True, otherwise=TaskNotFound())
        return TaskRead(*row)

    async def complete(self, caller: Caller, owner_id: UUID, task_id: UUID, *, completed: bool) -> TaskRead:
        """Mark a task done (stamping ``completed_at``) or not done (clearing it)."""
        return await self.update_task(caller, owner_id, task_id, {"completed": completed})

    async def delete_task(self, caller: Caller, owner_id: UUID, task_id: UUID) -> None:
        """Delete a task for good.

        Raises:
            TaskNotFound: no such task, or it belongs to someone else.
        """
        if not await self.repository.remove(caller, owner_id, task_id):
            await self._refuse(caller, owner_id, write=True, otherwise=TaskNotFound())

    async def _refuse(self, caller: Caller, owner_id: UUID, *, write: bool, otherwise: AppError) -> NoReturn:
        await refuse(self.repository.statements, caller, owner_id=owner_id, write=write, otherwise=otherwise)
