"""The tasks' SQL: every statement of the feature, built once per dialect and shape with placeholders.

Reads and writes are scoped to the owner (``:owner_id``) and guarded by the caller's permission
(:func:`~todo_service.security.access.guard`); a deleted task is a tombstone (``deleted_at``)
that only the change feed sees. Every write stamps a revision (:mod:`todo_service.db.revisions`)
inside the same statement: the task's ETag and its place in the change feed.
:class:`~todo_service.tasks.repository.TaskRepository` runs them. (Over 300 lines on purpose: every
statement of the feature in one file, so that the owner in each ``WHERE`` is checked in one place.)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    outerjoin,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from todo_service.core.pagination import PageQuery
from todo_service.db.models import Priority, Task, TaskLabel, TaskList, User
from todo_service.db.revisions import etag, next_revision, visible_below
from todo_service.security.access import guard
from todo_service.tasks.labelling import LabelIds, among, label_params
from todo_service.tasks.schemas import TaskRead

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql import Delete, Insert, Update
    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.sql.elements import BindParameter, UnaryExpression

    from todo_service.tasks.schemas import TaskFilters

__all__ = (
    "AFTER_ID",
    "AFTER_REVISION",
    "FEED_LIMIT",
    "NOW",
    "OWNER",
    "TASK",
    "TASK_COLUMNS",
    "TRACEPARENT",
    "TRASH_EXPIRES",
    "as_utc",
    "delete_task",
    "delete_tombstones",
    "insert_task",
    "keys_of",
    "list_of_owner",
    "page_params",
    "raise_feed_floors",
    "restore_task",
    "scroll_params",
    "select_changes",
    "select_page",
    "select_scroll",
    "select_task",
    "select_trash",
    "update_task",
)

# The ETag, made in SQL from the revision: '"<revision>"' (strong; it changes with every write).
# What TaskRead's fields are read from: its columns of the same name, and the ETag.
_COMPUTED: dict[str, ColumnElement[Any]] = {"etag": etag(Task.revision), "label_ids": LabelIds().label("label_ids")}
# The columns of TaskRead, in its field order: one definition (the struct), never typed twice.
TASK_COLUMNS: tuple[Any, ...] = tuple(
    _COMPUTED.get(field.name, getattr(Task, field.name, None)) for field in msgspec.structs.fields(TaskRead)
)
_COLUMNS = Task.__table__.c
_LIVE = Task.deleted_at.is_(None)
_PRIORITY_RANKS = {p.value: rank for rank, p in enumerate(Priority)}
_PRIORITY_RANK = case(_PRIORITY_RANKS, value=Task.priority)
_SORTABLE: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "due_date": Task.due_date,
    "priority": _PRIORITY_RANK,
    "title": Task.title,
    "completed": Task.completed,
    "position": Task.position,
}
# Placeholders of the statements below.
OWNER, TASK, NOW = "owner_id", "task_id", "now"
AFTER_REVISION, AFTER_ID, FEED_LIMIT = "after_revision", "after_id", "feed_limit"
TRACEPARENT = "traceparent"
_PAGE_LIMIT = "page_limit"  # as a page's (core/pagination.py)
TRACE_SETTING = "todo_service.traceparent"  # read by the webhook outbox trigger (migration 0005)
_LIKE_ESCAPE = "/"  # as SQLAlchemy's autoescape: a backslash would need escaping in PostgreSQL's literal

# A search with three letters or digits in a row gives the trigram indexes (migration 0010) something
# to look up; a shorter one (``q``, ``ab``, ``a b``) has no trigram and would read them whole.
_TRIGRAM = re.compile(r"[^\W_]{3}")


def _too_short(search: str | None) -> bool:
    """A search without a trigram: it takes the plain scan (see :func:`_searched`)."""
    return bool(search) and not _TRIGRAM.search(search or "")


class _Contains(FunctionElement[bool]):
    """The second text is in the first, taken literally (compiled per dialect below)."""

    type = Boolean()
    inherit_cache = True
    name = "contains_text"


@compiles(_Contains, "postgresql")
def _contains_postgresql(element: _Contains, compiler: SQLCompiler, **kw: Any) -> str:  # noqa: ANN401
    return f"strpos({compiler.process(element.clauses, **kw)}) > 0"


@compiles(_Contains)
def _contains_sqlite(element: _Contains, compiler: SQLCompiler, **kw: Any) -> str:  # noqa: ANN401
    return f"instr({compiler.process(element.clauses, **kw)}) > 0"


def _now() -> BindParameter[datetime]:
    """The request's clock, as a placeholder (one value per statement)."""
    return bindparam(NOW, type_=_COLUMNS["updated_at"].type)


def _order_by(sort: tuple[str, ...]) -> list[UnaryExpression[Any]]:
    """``("-due_date", "priority")`` → ORDER BY clauses; tasks without a due date come last; id breaks ties."""
    clauses: list[UnaryExpression[Any]] = []
    for key in sort:
        descending = key.startswith("-")
        column = _SORTABLE[key.lstrip("-")]
        clause = column.desc() if descending else column.asc()
        clauses.append(clause.nulls_last() if key.lstrip("-") == "due_date" else clause)
    clauses.append(Task.id.desc() if sort[0].startswith("-") else Task.id.asc())
    return clauses


class _Shape(NamedTuple):
    """Which filters a listing uses (their values are parameters): the key of its statements."""

    completed: bool
    priority: bool
    search: bool
    short_search: bool  # no trigram to look up: see _TRIGRAM
    due_before: bool
    due_after: bool
    overdue: bool | None
    list_id: bool = False
    labels: int = 0  # how many label ids the label filter names
    all_labels: bool = False  # label_match=all
    completed_since: bool = False
    parent_id: bool = False
    top_level: bool | None = None

    @classmethod
    def of(cls, filters: TaskFilters) -> _Shape:
        return cls(
            completed=filters.completed is not None,
            priority=filters.priority is not None,
            search=bool(filters.search),
            short_search=_too_short(filters.search),
            due_before=filters.due_before is not None,
            due_after=filters.due_after is not None,
            overdue=filters.overdue,
            list_id=filters.list_id is not None,
            labels=len(filters.labels),
            all_labels=filters.label_match == "all",
            completed_since=filters.completed_since is not None,
            parent_id=filters.parent_id is not None,
            top_level=filters.top_level,
        )


# Past due at the request's time: overdue_at (the due instant, or the end of an all-day task's date in
# its own zone: tasks/schedule.py), except for all-day tasks in their owner's zone, which follow it even
# after it changed: their date is before the owner's today (:owner_today, the request's date there).
_FLOATING = and_(Task.due_on.is_not(None), Task.timezone.is_(None))
_OVERDUE = func.coalesce(
    case(
        (_FLOATING, Task.due_on < bindparam("owner_today", type_=_COLUMNS["due_on"].type)),
        else_=Task.overdue_at < bindparam(NOW, type_=_COLUMNS["updated_at"].type),
    ),
    false(),
)


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a listing (always scoped to the owner), with placeholders."""
    conditions: list[ColumnElement[bool]] = [Task.user_id == bindparam(OWNER), _LIVE]
    if shape.completed:
        conditions.append(Task.completed == bindparam("completed"))
    if shape.priority:
        conditions.append(Task.priority == bindparam("priority"))
    if shape.search:
        conditions.append(_searched(short=shape.short_search))
    if shape.due_before:
        conditions.append(Task.due_date < bindparam("due_before"))
    if shape.due_after:
        conditions.append(Task.due_date > bindparam("due_after"))
    if shape.overdue is True:
        conditions.extend([_OVERDUE, Task.completed.is_(False)])
    elif shape.overdue is False:
        conditions.append(or_(not_(_OVERDUE), Task.completed.is_(True)))
    if shape.parent_id:
        conditions.append(Task.parent_id == bindparam("parent_id", type_=Task.id.type))
    if shape.top_level is not None:
        conditions.append(Task.parent_id.is_(None) if shape.top_level else Task.parent_id.is_not(None))
    return conditions + _organised(shape)


def _searched(*, short: bool) -> ColumnElement[bool]:
    """``:search`` in the title or the description, case-insensitively."""
    text = func.lower(bindparam("search", type_=String))
    if short:  # too short for the trigram indexes (migration 0010), which would be read whole: a plain scan
        return or_(_Contains(func.lower(Task.title), text), _Contains(func.lower(Task.description), text))
    # The pattern is escaped in Python (see _like_pattern): '%' and '_' match themselves. On PostgreSQL
    # the trigram indexes of migration 0010 serve both (a BitmapOr).
    return or_(
        func.lower(Task.title).like(text, escape=_LIKE_ESCAPE),
        func.lower(Task.description).like(text, escape=_LIKE_ESCAPE),
    )


def _organised(shape: _Shape) -> list[ColumnElement[bool]]:
    """The list, label and completed_since conditions of a listing."""
    conditions: list[ColumnElement[bool]] = []
    if shape.list_id:
        conditions.append(Task.list_id == bindparam("list_id", type_=Task.list_id.type))
    if shape.completed_since:
        conditions.append(Task.completed_at >= bindparam("completed_since", type_=Task.completed_at.type))
    if shape.labels:
        labelled = select(TaskLabel.task_id).where(among(TaskLabel.label_id, shape.labels))
        if shape.all_labels:
            labelled = labelled.group_by(TaskLabel.task_id).having(func.count() == shape.labels)
        conditions.append(Task.id.in_(labelled))
    return conditions


def select_page(filters: TaskFilters, *, own: bool) -> PageQuery:
    """A listing's statements for these filters and order (their values come from :func:`page_params`)."""
    return _select_page(_Shape.of(filters), filters.sort, own=own)


@lru_cache(maxsize=256)
def _select_page(shape: _Shape, sort: tuple[str, ...], *, own: bool) -> PageQuery:
    return PageQuery.build(
        source=Task.__table__,
        columns=TASK_COLUMNS,
        where=_conditions(shape),
        guard=guard(own=own, write=False),
        order_by=_order_by(sort),
    )


def select_scroll(filters: TaskFilters, *, own: bool, after: list[Any] | None) -> Select[Any]:
    """A listing read by keyset: the tasks after the one whose sort keys are ``after`` (None: from the first).

    No OFFSET and no count: the statement reads ``:page_limit`` rows from where the cursor points,
    through the same index as the first page, however deep that is. Its values are
    :func:`page_params` and :func:`scroll_params`.
    """
    nulls = None if after is None else tuple(value is None for value in after)
    return _select_scroll(_Shape.of(filters), filters.sort, own=own, nulls=nulls)


def scroll_params(after: list[Any] | None, limit: int) -> dict[str, Any]:
    """The values of :func:`select_scroll`'s keyset placeholders: the cursor's keys, and one row more than asked."""
    params: dict[str, Any] = {_PAGE_LIMIT: limit + 1}
    for i, value in enumerate(after or ()):
        if value is not None:
            params[f"key_{i}"] = value
    return params


@lru_cache(maxsize=256)
def _select_scroll(shape: _Shape, sort: tuple[str, ...], *, own: bool, nulls: tuple[bool, ...] | None) -> Select[Any]:
    where = _conditions(shape)
    if nulls is not None:
        where.append(_after(sort, nulls))
    return (
        select(*TASK_COLUMNS)
        .where(*where, guard(own=own, write=False))
        .order_by(*_order_by(sort))
        .limit(bindparam(_PAGE_LIMIT, type_=Integer))
    )


def keys_of(task: TaskRead, sort: tuple[str, ...]) -> list[Any]:
    """``task``'s values of the sort keys :func:`_after` compares, then its id: where a cursor after it points."""
    keys = [
        _PRIORITY_RANKS[task.priority] if key.lstrip("-") == "priority" else getattr(task, key.lstrip("-"))
        for key in sort
    ]
    return [*keys, task.id]


def _after(sort: tuple[str, ...], nulls: tuple[bool, ...]) -> ColumnElement[bool]:
    """The rows after the cursor's in the order of ``sort`` (then id): ``key_0``, ... are its values.

    ``nulls`` says which of the cursor's values are null (only a due date can be; they sort last).
    Keys all in one direction and none null: one row comparison, ``(created_at, id) < (:key_0,
    :key_1)``, which PostgreSQL reads as a range of the index. Otherwise the lexicographic
    expansion: the first key beyond, or equal and the second beyond, and so on.
    """
    keys = [(key.lstrip("-"), _SORTABLE[key.lstrip("-")], key.startswith("-")) for key in sort]
    keys.append(("id", Task.id, sort[0].startswith("-")))
    values = [bindparam(f"key_{i}", type_=column.type) for i, (_, column, _) in enumerate(keys)]
    nullable = any(name == "due_date" for name, _, _ in keys)
    if len({descending for _, _, descending in keys}) == 1 and not nullable:
        row, cursor = tuple_(*(column for _, column, _ in keys)), tuple_(*values)
        return row < cursor if keys[0][2] else row > cursor
    alternatives: list[ColumnElement[bool]] = []
    for i, (name, column, descending) in enumerate(keys):
        if nulls[i]:
            continue  # nothing sorts after a null but its ties, which the later keys order
        beyond = column < values[i] if descending else column > values[i]
        if name == "due_date":
            beyond = or_(beyond, column.is_(None))  # tasks without a due date come last either way
        equal = [keys[j][1].is_(None) if nulls[j] else keys[j][1] == values[j] for j in range(i)]
        alternatives.append(and_(*equal, beyond))
    return or_(*alternatives)


def page_params(filters: TaskFilters, owner_zone: tzinfo = UTC) -> dict[str, Any]:
    """The values of :func:`select_page`'s filter placeholders (``owner_zone``: the owner's, for ``overdue``)."""
    params: dict[str, Any] = {}
    if filters.overdue is not None:
        params["now"] = datetime.now(UTC)
        params["owner_today"] = params["now"].astimezone(owner_zone).date()
    if filters.completed is not None:
        params["completed"] = filters.completed
    if filters.priority is not None:
        params["priority"] = filters.priority
    if filters.search:
        params["search"] = filters.search if _too_short(filters.search) else _like_pattern(filters.search)
    if filters.due_before is not None:
        params["due_before"] = as_utc(filters.due_before)
    if filters.due_after is not None:
        params["due_after"] = as_utc(filters.due_after)
    if filters.list_id is not None:
        params["list_id"] = filters.list_id
    if filters.completed_since is not None:
        params["completed_since"] = as_utc(filters.completed_since)
    if filters.parent_id is not None:
        params["parent_id"] = filters.parent_id
    params.update(label_params(filters.labels))
    return params


def _like_pattern(text: str) -> str:
    """``50%_off`` → ``%50/%/_off%``: a substring match (lower-cased in SQL), wildcards taken literally."""
    escaped = (
        text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


@cache
def select_task(*, own: bool) -> Select[Any]:
    """One live task of the owner, if the caller may read it."""
    return select(*TASK_COLUMNS).where(
        Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), _LIVE, guard(own=own, write=False)
    )


# An INSERT gives every column (the list comes from a subquery: see insert_task).
_CREATED = tuple(column.key for column in TASK_COLUMNS if column.key in _COLUMNS and column.key != "list_id")


def _traced(dialect: str, *, traced: bool) -> list[ColumnElement[bool]]:
    """On PostgreSQL, when ``traced``: the writer's traceparent, set for the statement's transaction.

    The webhook outbox trigger (migration 0005) reads it, so a delivery's span links to the request
    that made the change. A condition that is always true; nothing at all without a sampled span.
    """
    if not traced or dialect != "postgresql":
        return []
    local = true()  # set_config(..., is_local): for this transaction only
    return [func.set_config(TRACE_SETTING, bindparam(TRACEPARENT, type_=String), local).is_not(None)]


@cache
def insert_task(dialect: str, *, own: bool, traced: bool = False, in_list: bool = False) -> Insert:
    """INSERT … SELECT guarded by the caller's permission: no row is inserted when it is refused.

    The task goes to the owner's list ``:list_id`` (``in_list``) or else their Inbox; a list that
    is not the owner's inserts nothing either.
    """
    values = [bindparam(name, type_=_COLUMNS[name].type) for name in _CREATED]
    chosen = TaskList.id == bindparam("list_id", type_=TaskList.id.type) if in_list else TaskList.is_default
    task_list = select(TaskList.id).where(TaskList.user_id == bindparam("user_id"), chosen).scalar_subquery()
    source = select(*values, next_revision(dialect), task_list).where(
        guard(own=own, write=True), task_list.is_not(None), *_traced(dialect, traced=traced)
    )
    return insert(Task).from_select([*_CREATED, "revision", "list_id"], source).returning(*TASK_COLUMNS)


def _matches(expected: int) -> ColumnElement[bool]:
    """``If-Match``: the task's revision is one of ``expected`` placeholders ``if_match_0``, ..."""
    return or_(*(Task.revision == bindparam(f"if_match_{i}", type_=Task.revision.type) for i in range(expected)))


@lru_cache(maxsize=256)
def update_task(  # noqa: PLR0913  (the shape of the statement: its key in the cache)
    dialect: str, fields: frozenset[str], *, own: bool, expected: int, traced: bool = False, one_off: bool = False
) -> Update:
    """An UPDATE … RETURNING of ``fields``; completion stamps ``completed_at`` (first completion wins).

    A write that changes nothing (completing a completed task, a PUT of what a GET returned) leaves
    ``updated_at`` and the revision alone; with nothing to change the statement still runs: it checks
    the caller may write (and the ``If-Match`` revisions, ``expected`` of them). ``one_off``: only a
    task without a recurrence rule (a recurring one is completed by moving it to its next occurrence).
    """
    values: dict[str, Any] = {name: bindparam(f"set_{name}", type_=_COLUMNS[name].type) for name in fields}
    if "completed" in fields:
        done = bindparam("set_completed", type_=Boolean)
        values["completed_at"] = case((done, func.coalesce(Task.completed_at, _now())), else_=None)
    values["updated_at"] = Task.updated_at
    values["revision"] = Task.revision
    if fields:
        # (Own parameters: PostgreSQL deduces one type per parameter, and SET and IS DISTINCT FROM differ.)
        changes = or_(
            *(_COLUMNS[name].is_distinct_from(bindparam(f"was_{name}", type_=_COLUMNS[name].type)) for name in fields)
        )
        values["updated_at"] = case((changes, _now()), else_=Task.updated_at)
        values["revision"] = case((changes, next_revision(dialect)), else_=Task.revision)
    where = [Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), _LIVE, guard(own=own, write=True)]
    if expected:
        where.append(_matches(expected))
    if one_off:
        where.append(Task.rrule.is_(None))
    return update(Task).where(*where, *_traced(dialect, traced=traced)).values(values).returning(*TASK_COLUMNS)


# In the trash: deleted (a tombstone to every route and the feed) and still restorable.
_TRASHED = and_(Task.deleted_at.is_not(None), Task.trash_expires_at > bindparam(NOW, type_=_COLUMNS["updated_at"].type))
TRASH_EXPIRES = "trash_expires_at"


@lru_cache(maxsize=64)
def delete_task(dialect: str, *, own: bool, expected: int, traced: bool = False, permanent: bool = False) -> Update:
    """A delete leaves a tombstone: ``deleted_at`` and a new revision, for the change feed.

    Into the trash (restorable until ``:trash_expires_at``), or ``permanent``: a live task or one in
    the trash, for good (its tombstone stays for the feed until pruned).
    """
    where = [Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), guard(own=own, write=True)]
    where += [or_(_LIVE, _TRASHED) if permanent else _LIVE, *_traced(dialect, traced=traced)]
    if expected:
        where.append(_matches(expected))
    expires = None if permanent else bindparam(TRASH_EXPIRES, type_=_COLUMNS["trash_expires_at"].type)
    return (
        update(Task)
        .where(*where)
        .values(
            deleted_at=func.coalesce(Task.deleted_at, _now()),
            trash_expires_at=expires,
            updated_at=_now(),
            revision=next_revision(dialect),
        )
    )


@lru_cache(maxsize=64)
def restore_task(dialect: str, *, own: bool, traced: bool = False) -> Update:
    """Take a task out of the trash (before it expires): it is live again, with a new revision."""
    where = [Task.id == bindparam(TASK), Task.user_id == bindparam(OWNER), _TRASHED, guard(own=own, write=True)]
    return (
        update(Task)
        .where(*where, *_traced(dialect, traced=traced))
        .values(deleted_at=None, trash_expires_at=None, updated_at=_now(), revision=next_revision(dialect))
        .returning(*TASK_COLUMNS)
    )


@cache
def list_of_owner(*, own: bool) -> Select[Any]:
    """The owner's list ``:list_id``, if it is theirs and the caller may read it."""
    return select(TaskList.id).where(
        TaskList.id == bindparam("list_id"), TaskList.user_id == bindparam(OWNER), guard(own=own, write=False)
    )


def select_trash(*, own: bool) -> PageQuery:
    """The owner's trash, most recently deleted first: each task with when it was deleted and expires."""
    return _select_trash(own=own)


@cache
def _select_trash(*, own: bool) -> PageQuery:
    return PageQuery.build(
        source=Task.__table__,
        columns=(*TASK_COLUMNS, Task.deleted_at, Task.trash_expires_at),
        where=[Task.user_id == bindparam(OWNER), _TRASHED],
        guard=guard(own=own, write=False),
        order_by=[Task.deleted_at.desc(), Task.id.desc()],
    )


# The feed starts from the owner's row, so that its feed_floor comes back even with no change.
_OWNER = aliased(User, name="owner")


@cache
def select_changes(dialect: str, *, own: bool) -> Select[Any]:
    """The owner's changes after (revision, id), in revision order, below the visibility horizon.

    Each row: the owner's feed floor, the revision, ``deleted_at``, ``reminded_revision`` (equal to the
    revision: the change is a fired reminder), then ``TASK_COLUMNS``.
    """
    after = tuple_(bindparam(AFTER_REVISION, type_=Task.revision.type), bindparam(AFTER_ID, type_=Task.id.type))
    on = [Task.user_id == _OWNER.id, tuple_(Task.revision, Task.id) > after]
    if (horizon := visible_below(dialect)) is not None:
        on.append(Task.revision < horizon)
    return (
        select(_OWNER.feed_floor, Task.revision, Task.deleted_at, Task.reminded_revision, *TASK_COLUMNS)
        .select_from(outerjoin(_OWNER, Task, and_(*on)))
        .where(_OWNER.id == bindparam(OWNER), guard(own=own, write=False))
        .order_by(Task.revision, Task.id)
        .limit(bindparam(FEED_LIMIT, type_=Integer))
    )


def raise_feed_floors() -> Update:
    """Raise each owner's feed floor past their tombstones deleted before ``:before`` (pruned next)."""
    pruned = and_(Task.user_id == User.id, _prunable())
    highest = select(func.max(Task.revision)).where(pruned).scalar_subquery()
    return (
        update(User)
        .where(select(Task.id).where(pruned).exists())
        # updated_at stays: the account did not change (and no Python-side onupdate runs here).
        .values(
            feed_floor=case((highest > User.feed_floor, highest), else_=User.feed_floor),
            updated_at=User.updated_at,
        )
    )


def delete_tombstones() -> Delete:
    """Delete the tombstones deleted before ``:before``."""
    return delete(Task).where(_prunable())


def _prunable() -> ColumnElement[bool]:
    """Tombstones deleted before ``:before`` that are not in the trash any more (its expiry passed ``:now``)."""
    before = Task.deleted_at < bindparam("before", type_=Task.deleted_at.type)
    return and_(before, or_(Task.trash_expires_at.is_(None), Task.trash_expires_at <= _now()))


def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes without an offset are taken as UTC (the API documents this)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
