"""Subtasks: a task's ``parent_id``, the rules of the tree, and the statements that walk it.

The rules (docs/api.md, "Subtasks"):

- A subtask has the same owner and the same list as its parent; its list follows the parent's
  (a ``list_id`` that differs from the parent's is a 422, and moving a parent to another list
  takes its subtree along).
- No cycles: a task cannot be its own ancestor.
- At most :data:`MAX_DEPTH` levels of subtasks below a top-level task (a top-level task is at
  depth 0, its subtasks at 1, ... at most ``MAX_DEPTH``).
- Completing a parent does not complete its subtasks, and completing every subtask does not
  complete the parent: ``completed`` is each task's own (the anchors differ here; this is the rule
  of Todoist and Microsoft To Do's steps, and the one that never changes a task nobody touched).
- Deleting a parent deletes its subtree (into the trash with it, or for good); restoring it
  restores the subtasks that went to the trash with it. Restoring a subtask whose parent is in
  the trash restores its trashed ancestors too (each alone), into the list of the live ancestor
  it hangs from; below an ancestor gone for good it comes back at the top level (:func:`lineage`).

Each walk is one recursive CTE (PostgreSQL and SQLite alike), bounded by the depth limit, so even a
corrupted tree (which the rules prevent) cannot loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from uuid import UUID  # Lineage's fields, at run time

from sqlalchemy import Integer, Select, Update, and_, bindparam, func, literal, or_, select, update

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.db.models import Task
from todo_service.db.revisions import next_revision
from todo_service.security.access import caller_params, guard

if TYPE_CHECKING:
    from datetime import datetime

    from todo_service.db.statements import Statements
    from todo_service.security.access import Caller

__all__ = (
    "MAX_DEPTH",
    "Lineage",
    "Placement",
    "delete_subtree",
    "lineage",
    "move_subtree_to_list",
    "place_under",
    "reattach",
    "restore_subtree",
)

MAX_DEPTH = 3
_WALK_LIMIT = MAX_DEPTH + 2  # a walk never goes deeper than a valid tree can be (plus one to notice)
_OWNER, _START = "owner_id", "start_id"
_COLUMNS = Task.__table__.c


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid parent_id: {message}", errors=[FieldError(field="parent_id", message=message, source="body")]
    )


@cache
def _ancestors() -> Select[Any]:
    """The live task ``:start_id`` of ``:owner_id`` and its ancestors: (id, list_id, depth above start)."""
    base = select(Task.id, Task.parent_id, Task.list_id, literal(0, Integer).label("depth")).where(
        Task.id == bindparam(_START, type_=Task.id.type),
        Task.user_id == bindparam(_OWNER, type_=Task.user_id.type),
        Task.deleted_at.is_(None),
    )
    walk = base.cte("ancestors", recursive=True)
    step = select(Task.id, Task.parent_id, Task.list_id, walk.c.depth + 1).where(
        Task.id == walk.c.parent_id, Task.user_id == bindparam(_OWNER), walk.c.depth < _WALK_LIMIT
    )
    walk = walk.union_all(step)
    return select(walk.c.id, walk.c.list_id, walk.c.depth)


def _descendants(*, live: bool) -> Any:  # noqa: ANN401  (a CTE)
    """The subtree below ``:start_id`` (not itself), as a CTE of (id, depth below start); ``live``: live tasks only."""
    alive = [Task.deleted_at.is_(None)] if live else []
    base = select(Task.id, literal(1, Integer).label("depth")).where(
        Task.parent_id == bindparam(_START, type_=Task.id.type),
        Task.user_id == bindparam(_OWNER, type_=Task.user_id.type),
        *alive,
    )
    walk = base.cte("descendants", recursive=True)
    step = select(Task.id, walk.c.depth + 1).where(Task.parent_id == walk.c.id, walk.c.depth < _WALK_LIMIT, *alive)
    return walk.union_all(step)


@cache
def _height() -> Select[Any]:
    """How many levels of live subtasks ``:start_id`` has below it (0: none)."""
    walk = _descendants(live=True)
    return select(func.coalesce(func.max(walk.c.depth), 0))


class Placement:
    """Where a task goes under ``parent_id``: the parent's list."""

    def __init__(self, list_id: UUID) -> None:
        self.list_id = list_id


async def place_under(
    db: Statements, owner_id: UUID, parent_id: UUID, *, task_id: UUID | None = None, list_id: UUID | None = None
) -> Placement:
    """Check that ``task_id`` (None: a new task) may become a subtask of ``parent_id``; the parent's list.

    Raises:
        ValidationFailed: no such live parent among the owner's tasks, a cycle, the depth limit,
            or a ``list_id`` other than the parent's.
    """
    rows = await db.all(_ancestors(), {_OWNER: owner_id, _START: parent_id})
    if not rows:
        raise _invalid("no such task among the owner's tasks")
    ids = {row[0] for row in rows}
    if task_id is not None and task_id in ids:
        raise _invalid("a task cannot be a subtask of itself or of one of its subtasks")
    parent_list = next(row[1] for row in rows if row[2] == 0)
    if list_id is not None and list_id != parent_list:
        raise _invalid("a subtask is in its parent's list (list_id differs from the parent's)")
    parent_depth = max(row[2] for row in rows)
    height = 0
    if task_id is not None:
        found = await db.one(_height(), {_OWNER: owner_id, _START: task_id})
        height = int(found[0]) if found is not None else 0
    if parent_depth + 1 + height > MAX_DEPTH:
        raise _invalid(f"subtasks nest at most {MAX_DEPTH} levels below a top-level task")
    return Placement(parent_list)


_NOW, _EXPIRES = "now", "trash_expires_at"


@cache
def _delete_subtree(dialect: str, *, permanent: bool, own: bool) -> Update:
    walk = _descendants(live=False)
    now = bindparam(_NOW, type_=_COLUMNS["updated_at"].type)
    live = Task.deleted_at.is_(None)
    # Live subtasks go with their parent; for good, also those in the trash (they went there with it).
    which = or_(live, Task.trash_expires_at > now) if permanent else live
    return (
        update(Task)
        .where(Task.id.in_(select(walk.c.id)), Task.user_id == bindparam(_OWNER), which, guard(own=own, write=True))
        .values(
            deleted_at=func.coalesce(Task.deleted_at, now),
            trash_expires_at=None if permanent else bindparam(_EXPIRES, type_=_COLUMNS["trash_expires_at"].type),
            updated_at=now,
            revision=next_revision(dialect),
        )
    )


async def delete_subtree(  # noqa: PLR0913  (the subtree, the clock, and how)
    db: Statements,
    caller: Caller,
    owner_id: UUID,
    task_id: UUID,
    now: datetime,
    *,
    trash_expires_at: datetime | None,
) -> int:
    """Delete the subtasks of ``task_id`` as it was deleted (trash until ``trash_expires_at``, or None: for good)."""
    permanent = trash_expires_at is None
    params: dict[str, Any] = {**caller_params(caller), _OWNER: owner_id, _START: task_id, _NOW: now}
    if not permanent:
        params[_EXPIRES] = trash_expires_at
    statement = _delete_subtree(db.dialect_name, permanent=permanent, own=owner_id == caller.user_id)
    return await db.affected(statement, params)


@cache
def _restore_subtree(dialect: str, *, own: bool) -> Update:
    walk = _descendants(live=False)
    now = bindparam(_NOW, type_=_COLUMNS["updated_at"].type)
    parent = Task.__table__.alias("parent")
    parent_deleted = select(parent.c.deleted_at).where(parent.c.id == bindparam(_START)).scalar_subquery()
    # In the trash with their parent: deleted at the same instant, and not expired.
    trashed_with_it = and_(Task.deleted_at == parent_deleted, Task.trash_expires_at > now)
    return (
        update(Task)
        .where(Task.id.in_(select(walk.c.id)), Task.user_id == bindparam(_OWNER), trashed_with_it)
        .where(guard(own=own, write=True))
        .values(deleted_at=None, trash_expires_at=None, updated_at=now, revision=next_revision(dialect))
    )


async def restore_subtree(db: Statements, caller: Caller, owner_id: UUID, task_id: UUID, *, now: datetime) -> int:
    """Restore the subtasks that went to the trash with ``task_id``; run it before restoring ``task_id`` itself."""
    params = {**caller_params(caller), _OWNER: owner_id, _START: task_id, _NOW: now}
    return await db.affected(_restore_subtree(db.dialect_name, own=owner_id == caller.user_id), params)


@cache
def _move_subtree(dialect: str, *, own: bool) -> Update:
    walk = _descendants(live=True)
    now = bindparam(_NOW, type_=_COLUMNS["updated_at"].type)
    return (
        update(Task)
        .where(Task.id.in_(select(walk.c.id)), Task.user_id == bindparam(_OWNER), guard(own=own, write=True))
        .values(
            list_id=bindparam("list_id", type_=_COLUMNS["list_id"].type),
            updated_at=now,
            revision=next_revision(dialect),
        )
    )


async def move_subtree_to_list(  # noqa: PLR0913  (the subtree, its new list, the clock)
    db: Statements, caller: Caller, owner_id: UUID, task_id: UUID, *, list_id: UUID, now: datetime
) -> int:
    """Move the live subtasks of ``task_id`` into ``list_id``, after their parent went there."""
    params = {**caller_params(caller), _OWNER: owner_id, _START: task_id, _NOW: now, "list_id": list_id}
    return await db.affected(_move_subtree(db.dialect_name, own=owner_id == caller.user_id), params)


@cache
def _lineage() -> Select[Any]:
    """``:start_id`` and its ancestors in any state, nearest first: (id, parent_id, list_id, live, in the trash)."""
    now = bindparam(_NOW, type_=_COLUMNS["updated_at"].type)
    state = (Task.deleted_at.is_(None).label("live"), and_(Task.deleted_at.is_not(None), Task.trash_expires_at > now))
    base = select(Task.id, Task.parent_id, Task.list_id, *state, literal(0, Integer).label("depth")).where(
        Task.id == bindparam(_START, type_=Task.id.type), Task.user_id == bindparam(_OWNER, type_=Task.user_id.type)
    )
    walk = base.cte("lineage", recursive=True)
    step = select(Task.id, Task.parent_id, Task.list_id, *state, walk.c.depth + 1).where(
        Task.id == walk.c.parent_id, Task.user_id == bindparam(_OWNER), walk.c.depth < _WALK_LIMIT
    )
    walk = walk.union_all(step)
    return select(*walk.c).order_by(walk.c.depth)


@dataclass(frozen=True, slots=True)
class Lineage:
    """What restoring a task brings back above it.

    ``ancestors``: its ancestors in the trash, nearest first, up to a live one or one gone for good
    (expired or pruned); ``top``: the highest task restored (the task itself when no ancestor is);
    ``parent_id``: ``top``'s parent afterwards (a live ancestor, or None: the top level);
    ``list_id``: the list they all come back into (the live ancestor's, else ``top``'s);
    ``reattach``: whether ``top`` changes parent or some of them change list.
    """

    ancestors: tuple[UUID, ...]
    top: UUID
    parent_id: UUID | None
    list_id: UUID
    reattach: bool


async def lineage(db: Statements, owner_id: UUID, task_id: UUID, *, now: datetime) -> Lineage | None:
    """How restoring ``task_id`` reattaches it (None: no such task of the owner's)."""
    rows = await db.all(_lineage(), {_OWNER: owner_id, _START: task_id, _NOW: now})
    if not rows:
        return None
    chain = [rows[0]]  # the task, then each trashed ancestor above it
    anchor = None
    for row in rows[1:]:
        if row[3]:  # live: the chain hangs from it
            anchor = row
            break
        if not row[4]:  # gone for good (the trash expired): the chain stops below it
            break
        chain.append(row)
    top = chain[-1]
    # No live ancestor: the top was top-level already, or its parent is gone for good (expired, pruned).
    parent_id, list_id = (anchor[0], anchor[2]) if anchor is not None else (None, top[2])
    moves = parent_id != top[1] or any(row[2] != list_id for row in chain)
    return Lineage(tuple(row[0] for row in chain[1:]), top[0], parent_id, list_id, moves)


@cache
def _reattach(dialect: str, *, own: bool) -> Update:
    where = (Task.id == bindparam(_START), Task.user_id == bindparam(_OWNER), Task.deleted_at.is_(None))
    return (
        update(Task)
        .where(*where, guard(own=own, write=True))
        .values(
            parent_id=bindparam("parent_id", type_=_COLUMNS["parent_id"].type),
            list_id=bindparam("list_id", type_=_COLUMNS["list_id"].type),
            updated_at=bindparam(_NOW, type_=_COLUMNS["updated_at"].type),
            revision=next_revision(dialect),
        )
    )


async def reattach(db: Statements, caller: Caller, owner_id: UUID, found: Lineage, *, now: datetime) -> None:
    """Put the restored ``found.top`` under ``found.parent_id`` in ``found.list_id``, its live subtree too."""
    params = {**caller_params(caller), _OWNER: owner_id, _START: found.top, _NOW: now}
    params.update(parent_id=found.parent_id, list_id=found.list_id)
    await db.affected(_reattach(db.dialect_name, own=owner_id == caller.user_id), params)
    await move_subtree_to_list(db, caller, owner_id, found.top, list_id=found.list_id, now=now)
