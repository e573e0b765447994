"""``/api/v1/users/{user_id}/tasks/events``: a user's task changes as Server-Sent Events, and stream tickets."""

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Stream

from todo_service.core.errors import Forbidden, NotFound, ServiceUnavailable
from todo_service.events.errors import InvalidTicket, TicketExpired, TooManyStreams
from todo_service.events.feed import LAST_EVENT_ID
from todo_service.events.schemas import EventMessage, StreamTicket
from todo_service.http.openapi import AUTHENTICATED, error_responses
from todo_service.security.access import Caller, explain_refusal
from todo_service.tasks.errors import CursorExpired

if TYPE_CHECKING:
    from todo_service.events.wiring import LiveEvents

__all__ = ("EventsController",)

_STREAM_DESCRIPTION = """\
Server-Sent Events, one per change of the user's tasks in commit order:

```
id: <cursor after this change>
event: task.upserted | task.reminder | task.deleted
data: {"op": "upsert", "task": {...}} | {"op": "upsert", "task": {...}, "reminder": {"fire_at": "..."}}
      | {"op": "delete", "task_id": "...", "deleted_at": "..."}
```

`task.reminder` is a reminder of the task firing: an upsert whose `reminder.fire_at` says when it
was due (show a notification; to sync, treat it as any upsert).

and a comment line (`: keep-alive`) whenever nothing else was sent for `EVENTS_HEARTBEAT_SECONDS`
(at most 15). Reconnect with `Last-Event-ID` (EventSource does) to get exactly what came after."""
_STREAM_RESPONSES = {
    200: ResponseSpec(
        data_container=EventMessage,
        generate_examples=False,
        media_type="text/event-stream",
        description=_STREAM_DESCRIPTION,
    ),
    **error_responses(
        *AUTHENTICATED,
        InvalidTicket,
        TicketExpired,
        Forbidden,
        NotFound,
        CursorExpired,
        TooManyStreams,
        ServiceUnavailable,
    ),
}
_NO_STORE = [ResponseHeader(name="Cache-Control", description="no-cache", documentation_only=True)]


class EventsController(Controller):
    """Live changes of a user's tasks; the same owner rules as the task routes (another user's: 403)."""

    path = "/api/v1/users/{user_id:uuid}/tasks/events"
    tags = ["tasks"]

    @get(
        summary="Stream task changes (Server-Sent Events)",
        # The bearer header, or a ticket in the URL (EventSource sends no headers): checked in the handler.
        exclude_from_auth=True,
        security=[{"BearerToken": []}, {}],
        media_type="text/event-stream",
        responses=_STREAM_RESPONSES,
        response_headers=_NO_STORE,
    )
    async def stream_events(  # noqa: PLR0913  (the path, both credentials and both resume points)
        self,
        *,
        user_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        live_events: NamedDependency["LiveEvents"],
        ticket: Annotated[
            str | None,
            QueryParameter(
                max_length=1024, description="A stream ticket (POST .../events/tokens), instead of the bearer header"
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            QueryParameter(max_length=200, description="Start after this change-feed cursor (default: the beginning)"),
        ] = None,
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name=LAST_EVENT_ID, max_length=200, description="The id of the last event received: resume after it"
            ),
        ] = None,
    ) -> Stream:
        """Every change after ``Last-Event-ID`` (else ``cursor``, else the beginning), then each as it commits."""
        caller = await live_events.authenticate(request, user_id, ticket)
        return await live_events.open(
            caller, user_id, last_event_id or cursor, source=LAST_EVENT_ID if last_event_id else "cursor"
        )

    @post(
        "/tokens",
        summary="Get a stream ticket",
        status_code=201,
        responses=error_responses(*AUTHENTICATED, Forbidden),
    )
    async def issue_ticket(
        self, *, user_id: FromPath[UUID], request: Request[Caller, Any, Any], live_events: NamedDependency["LiveEvents"]
    ) -> StreamTicket:
        """A ticket for ``GET .../tasks/events?ticket=...``: short-lived, for this user's events only."""
        await explain_refusal(live_events.statements, request.user, owner_id=user_id)
        return live_events.issue(request.user, user_id)
