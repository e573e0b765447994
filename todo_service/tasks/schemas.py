"""Bodies and query of the ``/users/{user_id}/tasks`` routes.

(Over 300 lines on purpose: every shape the task routes take or answer, the change feed's and the
batch's included, in one file, so that the OpenAPI schema of a task is read in one place.)
"""

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from todo_service.core.schema import NO_NUL, NON_BLANK, RequestBody, explain_pattern
from todo_service.db.models import Priority
from todo_service.tasks.labelling import MAX_LABELS

__all__ = (
    "MAX_BATCH",
    "READ_ONLY_FIELDS",
    "SORT_PATTERN",
    "BatchRequest",
    "BatchResponse",
    "ChangePage",
    "CompleteOperation",
    "CreateOperation",
    "DeleteOperation",
    "FiredReminder",
    "Operation",
    "OperationResult",
    "TaskCompletion",
    "TaskCreate",
    "TaskDeleted",
    "TaskFilters",
    "TaskMove",
    "TaskRead",
    "TaskScroll",
    "TaskUpdate",
    "TaskUpserted",
    "TrashedTask",
    "UpdateOperation",
)

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=NON_BLANK, examples=["Write the report"])]
Description = Annotated[str, msgspec.Meta(max_length=1000, pattern=NO_NUL, examples=["Two pages, with figures"])]
DueDate = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="ISO 8601 with a UTC offset (a value without one is refused).",
        examples=["2030-01-31T17:00:00Z"],
    ),
]

ParentId = Annotated[
    UUID,
    msgspec.Meta(description="The parent task (same owner and list; subtasks nest at most 3 levels): a subtask."),
]
DueOn = Annotated[
    date,
    msgspec.Meta(
        description="An all-day due date (YYYY-MM-DD) in the task's time zone, instead of due_date.",
        examples=["2030-01-31"],
    ),
]
TimeZone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$",
        description="An IANA time zone; none: the owner's (GET /users/me), else UTC.",
        examples=["Europe/Berlin"],
    ),
]
Rule = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=500,
        pattern=NO_NUL,
        description=(
            "An RFC 5545 RRULE (FREQ=DAILY..YEARLY, COUNT<=1000 or UNTIL, BYxxx), evaluated in the task's "
            "time zone from its due; needs due_date or due_on. Completing the task moves it to the next occurrence."
        ),
        examples=["FREQ=WEEKLY;BYDAY=MO,TH"],
    ),
]

_SORT_KEY = r"-?(created_at|updated_at|due_date|priority|title|completed|position)"
SORT_PATTERN = explain_pattern(
    rf"^{_SORT_KEY}(,{_SORT_KEY})*$",
    "of comma-separated fields among created_at, updated_at, due_date, priority, title, completed, position "
    "(each may start with '-' for descending)",
)


class TaskFilters(msgspec.Struct, frozen=True, kw_only=True):
    """What a listing asks for: filters, order and page (``None`` means no filter)."""

    completed: bool | None = None
    priority: Priority | None = None
    search: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool | None = None
    list_id: UUID | None = None
    labels: tuple[UUID, ...] = ()
    label_match: str = "any"  # any | all of ``labels``
    completed_since: datetime | None = None
    parent_id: UUID | None = None  # that task's subtasks only
    top_level: bool | None = None  # tasks without a parent (True), subtasks (False)
    sort: tuple[str, ...] = ("-created_at",)
    page: int = 1
    limit: int = 20


class TaskRead(msgspec.Struct, frozen=True):
    """A task. The repository selects its columns from these fields, in this order.

    ``etag`` is the task's ``ETag`` header value (quotes included): send it back in ``If-Match``.
    """

    id: UUID
    user_id: UUID
    title: str
    description: str | None
    completed: bool
    priority: Priority
    due_date: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    etag: str
    list_id: UUID
    label_ids: list[UUID]
    parent_id: UUID | None
    position: str
    due_on: date | None
    timezone: str | None
    rrule: str | None
    overdue_at: datetime | None
    reminded_at: datetime | None


class TaskScroll(msgspec.Struct, frozen=True):
    """A stretch of a listing read by cursor (``cursor=start``, then ``next_cursor``): no total.

    ``has_more``: ask again with ``next_cursor`` for the tasks after these; it is null at the end.
    """

    items: list[TaskRead]
    limit: int
    next_cursor: str | None
    has_more: bool


class TrashedTask(TaskRead, frozen=True):
    """A task in the trash: restore it before ``trash_expires_at`` (``POST .../tasks/{id}/restore``)."""

    deleted_at: datetime
    trash_expires_at: datetime


LabelIdList = Annotated[
    list[UUID],
    msgspec.Meta(max_length=MAX_LABELS, description=f"Ids of the owner's labels (at most {MAX_LABELS})."),
]


class TaskCreate(RequestBody, kw_only=True):
    """A new task; only the title is required. It goes to the owner's Inbox unless ``list_id`` names a list."""

    title: Title
    description: Description | None = None
    completed: bool = False
    priority: Priority = Priority.MEDIUM
    due_date: DueDate | None = None
    list_id: UUID | None = None
    label_ids: LabelIdList = msgspec.field(default_factory=list)
    parent_id: ParentId | None = None
    due_on: DueOn | None = None
    timezone: TimeZone | None = None
    rrule: Rule | None = None


ReadOnlyId = Annotated[UUID, msgspec.Meta(extra={"read_only": True})]
ReadOnlyTime = Annotated[datetime, msgspec.Meta(tz=True, extra={"read_only": True})]
READ_ONLY_FIELDS = (
    "id",
    "user_id",
    "completed_at",
    "created_at",
    "updated_at",
    "etag",
    "position",
    "overdue_at",
    "reminded_at",
)


class TaskUpdate(RequestBody, kw_only=True):
    """Fields to change: an omitted field stays as it is, ``null`` clears description or due_date.

    The read-only fields of a task may come back (a PUT of what a GET returned): equal to the
    stored value they are ignored, different they are a 422 naming the field.
    """

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    completed: bool | msgspec.UnsetType = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET
    due_date: DueDate | msgspec.UnsetType | None = msgspec.UNSET
    list_id: UUID | msgspec.UnsetType = msgspec.UNSET
    label_ids: LabelIdList | msgspec.UnsetType = msgspec.UNSET
    parent_id: ParentId | msgspec.UnsetType | None = msgspec.UNSET
    due_on: DueOn | msgspec.UnsetType | None = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType | None = msgspec.UNSET
    rrule: Rule | msgspec.UnsetType | None = msgspec.UNSET
    id: ReadOnlyId | msgspec.UnsetType = msgspec.UNSET
    user_id: ReadOnlyId | msgspec.UnsetType = msgspec.UNSET
    completed_at: ReadOnlyTime | msgspec.UnsetType | None = msgspec.UNSET
    created_at: ReadOnlyTime | msgspec.UnsetType = msgspec.UNSET
    updated_at: ReadOnlyTime | msgspec.UnsetType = msgspec.UNSET
    etag: Annotated[str, msgspec.Meta(max_length=64, extra={"read_only": True})] | msgspec.UnsetType = msgspec.UNSET
    position: Annotated[str, msgspec.Meta(max_length=64, extra={"read_only": True})] | msgspec.UnsetType = msgspec.UNSET
    overdue_at: ReadOnlyTime | msgspec.UnsetType | None = msgspec.UNSET
    reminded_at: ReadOnlyTime | msgspec.UnsetType | None = msgspec.UNSET


class TaskMove(RequestBody, kw_only=True):
    """Where a task goes among its siblings (same list and parent): exactly one of ``after`` and ``before``.

    ``{"after": id}``: right after that sibling; ``{"before": id}``: right before it;
    ``{"after": null}``: first; ``{"before": null}``: last. Only the moved task changes.
    """

    after: UUID | msgspec.UnsetType | None = msgspec.UNSET
    before: UUID | msgspec.UnsetType | None = msgspec.UNSET


class TaskCompletion(RequestBody):
    """Mark a task done or not done."""

    completed: bool


# -- the change feed ----------------------------------------------------------------------------


class FiredReminder(msgspec.Struct, frozen=True):
    """A reminder of the task fired: this change is it (``task.reminded_at`` is the same instant)."""

    fire_at: Annotated[datetime, msgspec.Meta(description="When the reminder was due")]


class TaskUpserted(msgspec.Struct, frozen=True, tag="upsert", tag_field="op", omit_defaults=True):
    """The task was created or changed: here it is as it is now.

    ``reminder`` is there only when the change is a reminder firing (SSE names that event
    ``task.reminder``); a client that only syncs treats it as any upsert.
    """

    task: TaskRead
    reminder: FiredReminder | None = None


class TaskDeleted(msgspec.Struct, frozen=True, tag="delete", tag_field="op"):
    """The task was deleted."""

    task_id: UUID
    deleted_at: datetime


class ChangePage(msgspec.Struct, frozen=True):
    """Changes in commit order; ask again with ``next_cursor`` for the ones after them."""

    changes: list[TaskUpserted | TaskDeleted]
    next_cursor: str
    has_more: bool


# -- batches --------------------------------------------------------------------------------------

IfMatch = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1000,
        description="As the If-Match header: the task's etag (or *); a stale one fails the batch with 412.",
        examples=['"8412"'],
    ),
]


class CreateOperation(TaskCreate, kw_only=True, tag="create", tag_field="op"):
    """Create a task (the fields of ``POST .../tasks``)."""


class UpdateOperation(TaskUpdate, kw_only=True, tag="update", tag_field="op"):
    """Change a task (the fields of ``PUT .../tasks/{task_id}``)."""

    task_id: UUID
    if_match: IfMatch | msgspec.UnsetType = msgspec.UNSET


class CompleteOperation(RequestBody, kw_only=True, tag="complete", tag_field="op"):
    """Mark a task done or not done (``PATCH .../tasks/{task_id}/complete``)."""

    task_id: UUID
    completed: bool
    if_match: IfMatch | msgspec.UnsetType = msgspec.UNSET


class DeleteOperation(RequestBody, kw_only=True, tag="delete", tag_field="op"):
    """Delete a task (``DELETE .../tasks/{task_id}``)."""

    task_id: UUID
    if_match: IfMatch | msgspec.UnsetType = msgspec.UNSET


Operation = CreateOperation | UpdateOperation | CompleteOperation | DeleteOperation
MAX_BATCH = 100


class BatchRequest(RequestBody):
    """Operations run in order in one transaction: all of them take effect, or none."""

    operations: Annotated[list[Operation], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class OperationResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one operation did: its status as its single route would answer, and the task."""

    op: str
    status: int
    task: TaskRead | None = None
    task_id: UUID | None = None


class BatchResponse(msgspec.Struct, frozen=True):
    """One result per operation, in order."""

    results: list[OperationResult]
