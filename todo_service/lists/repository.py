"""The lists' statements: each a named method, owner-scoped and guarded like the tasks'.

A list's tasks move with one statement when the list is deleted: to another list, or to the trash
(their ``list_id`` becomes the Inbox, so that a restore lands there). Each live task moved gets a
new revision (:mod:`todo_service.db.revisions`), so the change feed, live events and webhooks
report it; tombstones only follow the foreign key.

Positions (docs/domain.md, "Manual order") are ranks among siblings, and two lists can hold the same
keys. The list's top-level tasks get ``:after_key`` (a rank after the target's last, with no
fraction) followed by their own key without its trailing zeros: every new key is after the
target's, their order is kept (a key's trailing zeros are those of an integer part, and no other
key falls between it and its stripped form), they stay distinct, and each is a valid rank (it ends
in a non-zero digit). Subtasks keep their keys under a parent that moved with them.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update

from todo_service.core.pagination import PageQuery, fetch_page
from todo_service.db.models import Task, TaskList
from todo_service.db.revisions import etag, next_revision
from todo_service.security.access import caller_params, explain_refusal, guard

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from sqlalchemy.sql import Delete, Insert, Select, Update

    from todo_service.db.statements import Row, Statements
    from todo_service.security.access import Caller

__all__ = ("LIST_COLUMNS", "ListRepository")

LIST_COLUMNS: tuple[Any, ...] = (
    TaskList.id,
    TaskList.user_id,
    TaskList.name,
    TaskList.is_default,
    TaskList.created_at,
    TaskList.updated_at,
    etag(TaskList.version),
)
_OWNED = (TaskList.user_id == bindparam("owner_id"),)
_THIS = (*_OWNED, TaskList.id == bindparam("list_id"))
_NOW = bindparam("now", type_=TaskList.updated_at.type)
_VERSION = bindparam("if_match", type_=TaskList.version.type)


@cache
def _insert(*, own: bool) -> Insert:
    names = ("id", "user_id", "name")
    values = [bindparam(name, type_=TaskList.__table__.c[name].type) for name in names]
    source = select(*values, bindparam("is_default", value=False), _NOW, _NOW).where(guard(own=own, write=True))
    return (
        insert(TaskList)
        .from_select([*names, "is_default", "created_at", "updated_at"], source)
        .returning(*LIST_COLUMNS)
    )


@cache
def _page(*, own: bool) -> PageQuery:
    return PageQuery.build(
        source=TaskList.__table__,
        columns=LIST_COLUMNS,
        where=list(_OWNED),
        guard=guard(own=own, write=False),
        order_by=[TaskList.is_default.desc(), TaskList.created_at.asc(), TaskList.id.asc()],
    )


@cache
def _one(*, own: bool, lock: bool = False) -> Select[Any]:
    found = select(*LIST_COLUMNS).where(*_THIS, guard(own=own, write=False))
    # FOR UPDATE (PostgreSQL; SQLite serialises writers anyway): a task going into the list waits
    # for the list's deletion to end, then finds it gone, instead of landing in it after its tasks moved.
    return found.with_for_update(of=TaskList) if lock else found


@cache
def _inbox(*, own: bool) -> Select[Any]:
    return select(TaskList.id).where(*_OWNED, TaskList.is_default, guard(own=own, write=False))


@cache
def _rename(*, own: bool, expected: bool) -> Update:
    changed = TaskList.name != bindparam("was_name", type_=TaskList.name.type)
    where = [*_THIS, guard(own=own, write=True)]
    if expected:
        where.append(TaskList.version == _VERSION)
    return (
        update(TaskList)
        .where(*where)
        .values(
            name=bindparam("set_name", type_=TaskList.name.type),
            version=case((changed, TaskList.version + 1), else_=TaskList.version),
            updated_at=case((changed, _NOW), else_=TaskList.updated_at),
        )
        .returning(*LIST_COLUMNS)
    )


@cache
def _last_position() -> Select[Any]:
    """The last position among the owner's top-level live tasks of ``:target``."""
    return select(func.max(Task.position)).where(
        Task.user_id == bindparam("owner_id"),
        Task.list_id == bindparam("target", type_=Task.list_id.type),
        Task.parent_id.is_(None),
        Task.deleted_at.is_(None),
    )


@cache
def _move_tasks(dialect: str, *, own: bool, trash: bool) -> Update:
    """Every task of the list to ``:target``, top-level ones after ``:after_key``.

    Live ones get a new revision, and with ``trash`` go to the trash.
    """
    live = Task.deleted_at.is_(None)
    after = bindparam("after_key", type_=Task.position.type) + func.rtrim(Task.position, "0")
    values: dict[str, Any] = {
        "list_id": bindparam("target", type_=Task.list_id.type),
        "position": case((Task.parent_id.is_(None), after), else_=Task.position),
        "revision": case((live, next_revision(dialect)), else_=Task.revision),
        "updated_at": case((live, _NOW), else_=Task.updated_at),
    }
    if trash:
        expires = bindparam("trash_expires_at", type_=Task.trash_expires_at.type)
        values["deleted_at"] = func.coalesce(Task.deleted_at, _NOW)
        values["trash_expires_at"] = case((live, expires), else_=Task.trash_expires_at)
    where = [Task.user_id == bindparam("owner_id"), Task.list_id == bindparam("list_id"), guard(own=own, write=True)]
    return update(Task).where(*where).values(values)


@cache
def _delete(*, own: bool, expected: bool) -> Delete:
    where = [*_THIS, TaskList.is_default.is_(False), guard(own=own, write=True)]
    if expected:
        where.append(TaskList.version == _VERSION)
    return delete(TaskList).where(*where)


class ListRepository:
    """A user's lists; None (or False) when the guarded statement found nothing."""

    def __init__(self, statements: Statements) -> None:
        self.statements = statements

    @staticmethod
    def _params(caller: Caller, owner_id: UUID, **values: Any) -> dict[str, Any]:  # noqa: ANN401
        return {**caller_params(caller), "owner_id": owner_id, **values}

    async def add(
        self, caller: Caller, owner_id: UUID, name: str, now: datetime, *, db: Statements | None
    ) -> Row | None:
        """Insert a list of ``owner_id`` named ``name``."""
        params = self._params(caller, owner_id, id=uuid.uuid4(), user_id=owner_id, name=name, now=now)
        return await (db or self.statements).one(_insert(own=owner_id == caller.user_id), params)

    async def page(self, caller: Caller, owner_id: UUID, *, page: int, limit: int) -> tuple[list[tuple[Any, ...]], int]:
        """One page of the owner's lists (the Inbox first, then oldest first) and their total."""
        return await fetch_page(
            self.statements,
            _page(own=owner_id == caller.user_id),
            self._params(caller, owner_id),
            page=page,
            limit=limit,
            on_empty=lambda: explain_refusal(self.statements, caller, owner_id=owner_id),
        )

    async def one(
        self, caller: Caller, owner_id: UUID, list_id: UUID, *, db: Statements | None = None, lock: bool = False
    ) -> Row | None:
        """One list of ``owner_id`` (``lock``: locked until the transaction ``db`` ends)."""
        params = self._params(caller, owner_id, list_id=list_id)
        return await (db or self.statements).one(_one(own=owner_id == caller.user_id, lock=lock), params)

    async def inbox(self, caller: Caller, owner_id: UUID, *, db: Statements | None = None) -> UUID | None:
        """The id of the owner's Inbox."""
        row = await (db or self.statements).one(_inbox(own=owner_id == caller.user_id), self._params(caller, owner_id))
        return row[0] if row else None

    async def rename(  # noqa: PLR0913  (the list, its name, the clock and the precondition)
        self, caller: Caller, owner_id: UUID, list_id: UUID, name: str, now: datetime, *, if_match: int | None
    ) -> Row | None:
        """Rename the list (its version moves only when the name differs)."""
        params = self._params(caller, owner_id, list_id=list_id, set_name=name, was_name=name, now=now)
        if if_match is not None:
            params["if_match"] = if_match
        statement = _rename(own=owner_id == caller.user_id, expected=if_match is not None)
        return await self.statements.one(statement, params)

    async def move_tasks(  # noqa: PLR0913  (the list, where its tasks go, and the clock)
        self,
        caller: Caller,
        owner_id: UUID,
        list_id: UUID,
        target: UUID,
        now: datetime,
        *,
        trash_until: datetime | None,
        after_key: str,
        db: Statements,
    ) -> int:
        """Move every task of the list to ``target``; with ``trash_until``, live ones go to the trash too.

        The top-level tasks take positions after ``after_key`` (an integer rank after ``target``'s last), in order.
        """
        params = self._params(caller, owner_id, list_id=list_id, target=target, now=now)
        if trash_until is not None:
            params["trash_expires_at"] = trash_until
        params["after_key"] = after_key
        own, trash = owner_id == caller.user_id, trash_until is not None
        return await db.affected(_move_tasks(db.dialect_name, own=own, trash=trash), params)

    async def last_position(self, owner_id: UUID, list_id: UUID, *, db: Statements) -> str | None:
        """The last position among the top-level live tasks of the owner's list (None: it has none)."""
        row = await db.one(_last_position(), {"owner_id": owner_id, "target": list_id})
        return row[0] if row else None

    async def remove(
        self, caller: Caller, owner_id: UUID, list_id: UUID, *, if_match: int | None, db: Statements
    ) -> bool:
        """Delete the list (never the Inbox); its tasks must have left it first."""
        params = self._params(caller, owner_id, list_id=list_id)
        if if_match is not None:
            params["if_match"] = if_match
        statement = _delete(own=owner_id == caller.user_id, expected=if_match is not None)
        return await db.affected(statement, params) > 0
