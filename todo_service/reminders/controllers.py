"""``/api/v1/users/{user_id}/tasks/{task_id}/reminders``: a task's reminders."""

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from todo_service.core.errors import Forbidden, NotFound
from todo_service.http.openapi import AUTHENTICATED, WITH_BODY, error_responses
from todo_service.reminders.schemas import ReminderList, ReminderSet
from todo_service.reminders.services import ReminderService
from todo_service.security.access import Caller
from todo_service.tasks.errors import TaskNotFound

__all__ = ("ReminderController",)


class ReminderController(Controller):
    """A task's reminders: each fires once, as a change of the task and a ``task.reminder`` webhook event."""

    path = "/api/v1/users/{user_id:uuid}/tasks/{task_id:uuid}/reminders"
    tags = ["tasks"]

    @get(
        summary="Read a task's reminders", responses=error_responses(*AUTHENTICATED, Forbidden, NotFound, TaskNotFound)
    )
    async def read_reminders(
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        request: Request[Caller, Any, Any],
        reminder_service: NamedDependency[ReminderService],
    ) -> ReminderList:
        """The task's reminders, the next to fire first, with when each fires and fired."""
        return await reminder_service.read(request.user, user_id, task_id)

    @put(
        summary="Set a task's reminders",
        responses=error_responses(*AUTHENTICATED, *WITH_BODY, Forbidden, NotFound, TaskNotFound),
    )
    async def set_reminders(
        self,
        *,
        user_id: FromPath[UUID],
        task_id: FromPath[UUID],
        data: JSONBody[ReminderSet],
        request: Request[Caller, Any, Any],
        reminder_service: NamedDependency[ReminderService],
    ) -> ReminderList:
        """Replace the task's reminders (0 to 10): each ``{"at": time}`` or ``{"before_due": seconds}``.

        ``before_due`` counts back from the task's due (``overdue_at``: the due instant, or the end of
        an all-day task's date) and follows it when it moves. A reminder fires once: the task's
        ``reminded_at`` changes (change feed, live events, webhooks) and a ``task.reminder`` webhook
        event goes out.
        """
        return await reminder_service.replace(request.user, user_id, task_id, data.reminders)
