"""TaskRepository: an Advanced Alchemy repository whose own methods cannot run without the owner."""

from __future__ import annotations

import inspect
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import caller_of, create_task, register, task_repository
from todo_service.db.models import Priority, Task
from todo_service.tasks.queries import TASK_COLUMNS
from todo_service.tasks.repository import TaskRepository
from todo_service.tasks.schemas import TaskFilters

if TYPE_CHECKING:
    from tests.factories import Account, Client

OWN_METHODS = (
    "page",
    "scroll",
    "_listing_params",
    "one",
    "insert",
    "update_fields",
    "remove",
    "changes",
    "restore",
    "trash_page",
    "owned_labels",
    "owns_list",
    "set_labels",
)
# Housekeeping over every user's rows, on nobody's behalf (the pruner): no caller, no owner.
MAINTENANCE = ("prune_tombstones",)


def test_every_own_method_takes_the_caller_and_the_owner_first() -> None:
    own = [
        name
        for name, member in vars(TaskRepository).items()
        if inspect.iscoroutinefunction(member) and name not in MAINTENANCE
    ]
    assert sorted(own) == sorted(OWN_METHODS)
    for name in own:
        parameters = list(inspect.signature(getattr(TaskRepository, name)).parameters)
        assert parameters[1:3] == ["caller", "owner_id"], name
    assert issubclass(TaskRepository, SQLAlchemyAsyncRepository)
    assert TaskRepository.model_type is Task


async def test_the_owner_is_in_every_statement(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    other = await register(client)
    task = await create_task(client, account, title="mine")
    repo = task_repository(db_engine)
    me, them = await caller_of(db_engine, account), await caller_of(db_engine, other)
    task_id, mine, theirs = uuid.UUID(task["id"]), uuid.UUID(account.id), uuid.UUID(other.id)

    row = await repo.one(me, mine, task_id)
    assert row is not None
    assert dict(zip([c.key for c in TASK_COLUMNS], row, strict=True))["title"] == "mine"
    # The right task id under another owner (theirs, or mine asked by them) is nothing at all.
    assert await repo.one(them, theirs, task_id) is None
    assert await repo.one(me, theirs, task_id) is None
    assert await repo.update_fields(them, theirs, task_id, {"title": "stolen"}, datetime.now(UTC)) is None
    assert await repo.remove(them, theirs, task_id, datetime.now(UTC)) is False
    rows, total = await repo.page(them, theirs, TaskFilters())
    assert (rows, total) == ([], 0)
    rows, total = await repo.page(me, mine, TaskFilters())
    assert total == 1
    assert rows[0][2] == "mine"
    assert await repo.scroll(them, theirs, TaskFilters(), None) == []
    scrolled = await repo.scroll(me, mine, TaskFilters(), None)
    assert [row[2] for row in scrolled] == ["mine"]
    created_at = scrolled[0][[column.key for column in TASK_COLUMNS].index("created_at")]
    after = [created_at, task_id]  # a cursor after it: its sort keys (created_at), then its id
    assert await repo.scroll(me, mine, TaskFilters(), after) == []
    assert await repo.remove(me, mine, task_id, datetime.now(UTC)) is True
    assert await repo.one(me, mine, task_id) is None


async def test_inserted_rows_are_what_the_inherited_methods_read(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    repo = task_repository(db_engine)
    me, mine = await caller_of(db_engine, account), uuid.UUID(account.id)
    now = datetime.now(UTC)
    values = {
        "id": uuid.uuid4(),
        "title": "through the repository",
        "description": None,
        "completed": False,
        "priority": Priority.HIGH,
        "due_date": None,
        "completed_at": None,
        "created_at": now,
        "updated_at": now,
    }
    row = await repo.insert(me, mine, values)
    assert row is not None
    try:
        # Advanced Alchemy's own methods, on the repository's session of this task.
        assert await repo.count(Task.user_id == mine) == 1
        loaded = await repo.get(values["id"])
        assert (loaded.title, loaded.priority, loaded.user_id) == ("through the repository", Priority.HIGH, mine)
    finally:
        await repo.scoped_session.remove()
