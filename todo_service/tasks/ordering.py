"""Manual order: where a new task goes, and moving a task before or after a sibling (one row).

A task's ``position`` (a rank of :mod:`todo_service.tasks.ranks`) orders it among its siblings: the
tasks of the same list and parent. A new task is appended by its creation instant (plus two random
digits against ties), with no read of the list. A move reads the two neighbours of the place it goes,
takes a key between them and writes that one row; two moves that chose the same key at the same
time meet the siblings' unique index (``uq_tasks_*_position``) and the loser retries with the
neighbours it now sees (at most :data:`MAX_ATTEMPTS` times), so the order stays total.

When a key grows past :data:`~todo_service.tasks.ranks.MAX_KEY_LENGTH` (some 170 moves into one
gap), the siblings are given fresh short keys in one transaction: temporary keys first, then the
final ones, so the unique index holds at every statement. That rewrites every sibling (each gets
a new revision, and the change feed shows them), rarely.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import Select, Update, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.db.models import Task
from todo_service.db.revisions import next_revision
from todo_service.security.access import caller_params, guard
from todo_service.tasks.ranks import DIGITS, MAX_KEY_LENGTH, key_between, spread, time_key
from todo_service.tasks.schemas import TaskRead

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from uuid import UUID

    from todo_service.db.statements import Row, Statements
    from todo_service.security.access import Caller
    from todo_service.tasks.repository import TaskRepository

__all__ = (
    "MAX_ATTEMPTS",
    "Siblings",
    "duplicate_position",
    "move_task",
    "new_rank",
    "place",
    "rebalance",
    "reposition_trashed",
)

MAX_ATTEMPTS = 10
_OWNER, _LIST, _PARENT, _EXCLUDE, _POSITION = "owner_id", "list_id", "parent_id", "exclude_id", "position"
_COLUMNS = Task.__table__.c


def new_rank(now: datetime) -> str:
    """The rank of a task created (or moved to the end of its siblings) at ``now``."""
    return time_key(now) + secrets.choice(DIGITS) + secrets.choice(DIGITS[1:])


def duplicate_position(exc: BaseException) -> bool:
    """Whether a write failed on a unique index (the siblings' positions, the one a task write can meet)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return True
    return isinstance(exc, IntegrityError) and "UNIQUE" in str(exc.orig).upper()


class Siblings:
    """The group a task is ordered in: its list and its parent (None: top level)."""

    def __init__(self, list_id: UUID, parent_id: UUID | None) -> None:
        self.list_id = list_id
        self.parent_id = parent_id

    def params(self, owner_id: UUID) -> dict[str, Any]:
        """The placeholders of the group's statements."""
        params: dict[str, Any] = {_OWNER: owner_id, _LIST: self.list_id}
        if self.parent_id is not None:
            params[_PARENT] = self.parent_id
        return params


def _in_group(*, top_level: bool) -> list[Any]:
    return [
        Task.user_id == bindparam(_OWNER, type_=Task.user_id.type),
        Task.list_id == bindparam(_LIST, type_=Task.list_id.type),
        Task.parent_id.is_(None) if top_level else Task.parent_id == bindparam(_PARENT, type_=Task.id.type),
        Task.deleted_at.is_(None),
        Task.id != bindparam(_EXCLUDE, type_=Task.id.type),
    ]


@cache
def _bound(*, top_level: bool, after: bool, anchored: bool) -> Select[Any]:
    """The nearest sibling position after (or before) ``:position`` (not anchored: the first or the last)."""
    conditions = _in_group(top_level=top_level)
    if anchored:
        position = bindparam(_POSITION, type_=_COLUMNS["position"].type)
        conditions.append(Task.position > position if after else Task.position < position)
    nearest = func.min(Task.position) if after else func.max(Task.position)
    return select(nearest).where(*conditions)


async def place(  # noqa: PLR0913  (the task, its group, and where in it)
    db: Statements,
    owner_id: UUID,
    task_id: UUID,
    group: Siblings,
    *,
    anchor: str | None,
    after: bool,
    attempt: int = 0,
) -> str:
    """The key for ``task_id`` right after (or before) the sibling at ``anchor`` (None: first, or last).

    A retry (``attempt`` > 0: a concurrent move took the key) takes a random key in the same gap
    (``2 * attempt`` random halvings), so that movers racing into one gap stop choosing the same one.
    """
    params = {**group.params(owner_id), _EXCLUDE: task_id}
    if anchor is not None:
        params[_POSITION] = anchor
    row = await db.one(_bound(top_level=group.parent_id is None, after=after, anchored=anchor is not None), params)
    neighbour = row[0] if row is not None else None
    if anchor is None:  # after nothing: before the current first; before nothing: after the current last
        low, high = (None, neighbour) if after else (neighbour, None)
    else:
        low, high = (anchor, neighbour) if after else (neighbour, anchor)
    key = key_between(low, high)
    for _ in range(2 * attempt):
        low, high = (low, key) if secrets.randbelow(2) else (key, high)
        key = key_between(low, high)
    return key


async def with_retries(attempt: Callable[[int], Awaitable[Row | None]]) -> Row | None:
    """Run ``attempt`` (given its number) again when it met a sibling's position (a concurrent move took the key)."""
    for number in range(MAX_ATTEMPTS):
        try:
            return await attempt(number)
        except Exception as exc:
            if number == MAX_ATTEMPTS - 1 or not duplicate_position(exc):
                raise
    msg = "unreachable"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover


def needs_rebalance(key: str) -> bool:
    """Whether a key is long enough for its siblings to be given fresh keys."""
    return len(key) > MAX_KEY_LENGTH


@cache
def _group_ids(*, top_level: bool) -> Select[Any]:
    return select(Task.id).where(*_in_group(top_level=top_level)).order_by(Task.position, Task.id)


@cache
def _set_position(dialect: str, *, own: bool) -> Update:
    now = bindparam("now", type_=_COLUMNS["updated_at"].type)
    return (
        update(Task)
        .where(
            Task.id == bindparam("task_id", type_=Task.id.type),
            Task.user_id == bindparam(_OWNER),
            Task.deleted_at.is_(None),
            guard(own=own, write=True),
        )
        .values(
            position=bindparam("new_position", type_=_COLUMNS["position"].type),
            updated_at=now,
            revision=next_revision(dialect),
        )
    )


async def rebalance(db: Statements, caller: Caller, owner_id: UUID, group: Siblings, now: datetime) -> int:
    """Give every sibling of ``group`` a fresh short key in order (inside ``db``'s transaction); how many."""
    params = {**group.params(owner_id), _EXCLUDE: owner_id}  # an id no task has: exclude nothing
    ids = [row[0] for row in await db.all(_group_ids(top_level=group.parent_id is None), params)]
    statement = _set_position(db.dialect_name, own=owner_id == caller.user_id)
    base = {**caller_params(caller), _OWNER: owner_id, "now": now}
    for task_id in ids:  # out of the way first: no final key can meet an old one
        await db.affected(statement, {**base, "task_id": task_id, "new_position": "~" + task_id.hex})
    for task_id, key in zip(ids, spread(len(ids)), strict=True):
        await db.affected(statement, {**base, "task_id": task_id, "new_position": key})
    return len(ids)


def invalid_anchor(field: str, message: str) -> ValidationFailed:
    """A 422 naming the move's ``before`` or ``after``."""
    return ValidationFailed(
        f"Invalid {field}: {message}", errors=[FieldError(field=field, message=message, source="body")]
    )


async def move_task(  # noqa: PLR0913  (the task, where it goes, the precondition)
    repository: TaskRepository,
    caller: Caller,
    owner_id: UUID,
    task_id: UUID,
    *,
    anchor_id: UUID | None,
    after: bool,
    if_match: tuple[int, ...] = (),
) -> Row | None:
    """Move ``task_id`` right after (or before) its sibling ``anchor_id`` (None: first, or last): one row.

    None when the task is not there for the caller (the service says why).

    Raises:
        ValidationFailed: the anchor is missing, the task itself, or not a sibling.
    """
    field = "after" if after else "before"

    async def attempt(number: int) -> Row | None:
        row = await repository.one(caller, owner_id, task_id)
        if row is None:
            return None
        task = TaskRead(*row)
        anchor = None
        if anchor_id is not None:
            if anchor_id == task_id:
                raise invalid_anchor(field, "a task cannot move next to itself")
            found = await repository.one(caller, owner_id, anchor_id)
            if found is None:
                raise invalid_anchor(field, "no such task among the owner's tasks")
            sibling = TaskRead(*found)
            if (sibling.list_id, sibling.parent_id) != (task.list_id, task.parent_id):
                raise invalid_anchor(field, "must be a sibling: a task of the same list and parent")
            anchor = sibling.position
        group = Siblings(task.list_id, task.parent_id)
        statements = repository.statements
        key = await place(statements, owner_id, task_id, group, anchor=anchor, after=after, attempt=number)
        now = datetime.now(UTC)
        moved = await repository.update_fields(caller, owner_id, task_id, {"position": key}, now, if_match=if_match)
        if moved is not None and needs_rebalance(key):
            async with repository.statements.transaction() as tx:
                await rebalance(tx, caller, owner_id, group, now)
                moved = await repository.one(caller, owner_id, task_id, db=tx)
        return moved

    return await with_retries(attempt)


@cache
def _reposition_trashed() -> Update:
    return (
        update(Task)
        .where(
            Task.id == bindparam("task_id", type_=Task.id.type),
            Task.user_id == bindparam(_OWNER, type_=Task.user_id.type),
            Task.deleted_at.is_not(None),
        )
        .values(position=bindparam("new_position", type_=_COLUMNS["position"].type), updated_at=Task.updated_at)
    )


async def reposition_trashed(db: Statements, owner_id: UUID, task_id: UUID, now: datetime) -> None:
    """Give a task in the trash a new position, last among its siblings (its own was taken meanwhile).

    A tombstone's position is no one's business until it is restored: no revision moves.
    """
    params = {_OWNER: owner_id, "task_id": task_id, "new_position": new_rank(now)}
    await db.affected(_reposition_trashed(), params)
