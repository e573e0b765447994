"""The labels' statements: each a named method, owner-scoped and guarded like the tasks'.

A name is unique per user through ``name_key`` (the case-folded name, one unique index): an insert
that clashes inserts nothing (``ON CONFLICT DO NOTHING``, the same on both databases), a rename
that would clash changes nothing (``NOT EXISTS`` in its ``WHERE``). Deleting a label first gives
every live task that carries it a new revision (its ``label_ids`` change: the change feed, live
events and webhooks report it), then the label goes, and ``task_labels`` with it (cascade).
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, false, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from todo_service.core.pagination import PageQuery, fetch_page
from todo_service.db.models import Label, Task, TaskLabel
from todo_service.db.revisions import etag, next_revision
from todo_service.security.access import caller_params, explain_refusal, guard

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from sqlalchemy.sql import Delete, Insert, Select, Update

    from todo_service.db.statements import Row, Statements
    from todo_service.security.access import Caller

__all__ = ("LABEL_COLUMNS", "LabelRepository")

LABEL_COLUMNS: tuple[Any, ...] = (
    Label.id,
    Label.user_id,
    Label.name,
    Label.color,
    Label.created_at,
    Label.updated_at,
    etag(Label.version),
)
_OWNED = (Label.user_id == bindparam("owner_id"),)
_THIS = (*_OWNED, Label.id == bindparam("label_id"))
_NOW = bindparam("now", type_=Label.updated_at.type)
_COLUMNS = Label.__table__.c


@cache
def _insert(dialect: str, *, own: bool) -> Insert:
    names = ("id", "user_id", "name", "name_key", "color")
    values = [bindparam(name, type_=_COLUMNS[name].type) for name in names]
    source = select(*values, _NOW, _NOW).where(guard(own=own, write=True))
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        dialect_insert(Label)
        .from_select([*names, "created_at", "updated_at"], source)
        .on_conflict_do_nothing()
        .returning(*LABEL_COLUMNS)
    )


@cache
def _page(*, own: bool) -> PageQuery:
    return PageQuery.build(
        source=Label.__table__,
        columns=LABEL_COLUMNS,
        where=list(_OWNED),
        guard=guard(own=own, write=False),
        order_by=[Label.name_key.asc(), Label.id.asc()],
    )


@cache
def _one(*, own: bool) -> Select[Any]:
    return select(*LABEL_COLUMNS).where(*_THIS, guard(own=own, write=False))


@cache
def _clash() -> Select[Any]:
    """Another label of the owner with the name key ``:name_key``."""
    return select(Label.id).where(*_OWNED, Label.name_key == bindparam("name_key"), Label.id != bindparam("label_id"))


@cache
def _update(fields: frozenset[str], *, own: bool, expected: bool) -> Update:
    """Set ``fields`` (name, which also sets name_key, and color); the version moves only when a value differs."""
    columns = {"name", "name_key", "color"} & ({*fields, "name_key"} if "name" in fields else set(fields))
    # An empty PATCH changes nothing: false(), so it answers the label as it is (If-Match still applies).
    changed = or_(false(), *(_COLUMNS[name] != bindparam(f"was_{name}", type_=_COLUMNS[name].type) for name in columns))
    values: dict[str, Any] = {name: bindparam(f"set_{name}", type_=_COLUMNS[name].type) for name in columns}
    values["version"] = case((changed, Label.version + 1), else_=Label.version)
    values["updated_at"] = case((changed, _NOW), else_=Label.updated_at)
    other = aliased(Label, name="other")
    clash = select(other.id).where(
        other.user_id == Label.user_id, other.name_key == bindparam("set_name_key"), other.id != Label.id
    )
    where = [*_THIS, guard(own=own, write=True)]
    if "name" in fields:
        where.append(~clash.exists())
    if expected:
        where.append(Label.version == bindparam("if_match", type_=Label.version.type))
    return update(Label).where(*where).values(values).returning(*LABEL_COLUMNS)


def _version_matches(*, expected: bool) -> list[Any]:
    return [Label.version == bindparam("if_match", type_=Label.version.type)] if expected else []


@cache
def _touch_tasks(dialect: str, *, own: bool, expected: bool) -> Update:
    """A new revision for the owner's live tasks carrying ``:label_id`` (their label_ids are about to change)."""
    carrying = select(TaskLabel.task_id).where(TaskLabel.label_id == bindparam("label_id"))
    deleting = select(Label.id).where(*_THIS, *_version_matches(expected=expected)).exists()
    where = [Task.user_id == bindparam("owner_id"), Task.deleted_at.is_(None), Task.id.in_(carrying), deleting]
    return (
        update(Task)
        .where(*where, guard(own=own, write=True))
        .values(revision=next_revision(dialect), updated_at=bindparam("now", type_=Task.updated_at.type))
    )


@cache
def _delete(*, own: bool, expected: bool) -> Delete:
    return delete(Label).where(*_THIS, guard(own=own, write=True), *_version_matches(expected=expected))


class LabelRepository:
    """A user's labels; None (or False) when the guarded statement found nothing."""

    def __init__(self, statements: Statements) -> None:
        self.statements = statements

    @staticmethod
    def _params(caller: Caller, owner_id: UUID, **values: Any) -> dict[str, Any]:  # noqa: ANN401
        return {**caller_params(caller), "owner_id": owner_id, **values}

    async def add(
        self, caller: Caller, owner_id: UUID, values: dict[str, Any], now: datetime, *, db: Statements | None
    ) -> Row | None:
        """Insert a label (``values``: name, name_key, color); None if refused or the name is taken."""
        db = db or self.statements
        params = self._params(caller, owner_id, id=uuid.uuid4(), user_id=owner_id, now=now, **values)
        return await db.one(_insert(db.dialect_name, own=owner_id == caller.user_id), params)

    async def page(self, caller: Caller, owner_id: UUID, *, page: int, limit: int) -> tuple[list[tuple[Any, ...]], int]:
        """One page of the owner's labels, by name, and their total."""
        return await fetch_page(
            self.statements,
            _page(own=owner_id == caller.user_id),
            self._params(caller, owner_id),
            page=page,
            limit=limit,
            on_empty=lambda: explain_refusal(self.statements, caller, owner_id=owner_id),
        )

    async def one(self, caller: Caller, owner_id: UUID, label_id: UUID, *, db: Statements | None = None) -> Row | None:
        """One label of ``owner_id``."""
        params = self._params(caller, owner_id, label_id=label_id)
        return await (db or self.statements).one(_one(own=owner_id == caller.user_id), params)

    async def name_taken(self, caller: Caller, owner_id: UUID, key: str, *, but: UUID | None = None) -> bool:
        """Whether another label of the owner has the name key ``key``."""
        params = self._params(caller, owner_id, name_key=key, label_id=but or uuid.UUID(int=0))
        return await self.statements.one(_clash(), params) is not None

    async def change(  # noqa: PLR0913  (the label, its changes, the clock and the precondition)
        self,
        caller: Caller,
        owner_id: UUID,
        label_id: UUID,
        changes: dict[str, Any],
        now: datetime,
        *,
        if_match: int | None,
    ) -> Row | None:
        """Set ``changes`` (name with name_key, color); None if missing, refused, stale, or the name clashes."""
        params = self._params(caller, owner_id, label_id=label_id, now=now)
        for name, value in changes.items():
            params[f"set_{name}"] = params[f"was_{name}"] = value
        if if_match is not None:
            params["if_match"] = if_match
        fields = frozenset(changes) - {"name_key"}
        statement = _update(fields, own=owner_id == caller.user_id, expected=if_match is not None)
        return await self.statements.one(statement, params)

    async def remove(
        self, caller: Caller, owner_id: UUID, label_id: UUID, now: datetime, *, if_match: int | None
    ) -> tuple[bool, int]:
        """Delete the label; whether it was deleted, and how many live tasks carried it (each got a new revision)."""
        params = self._params(caller, owner_id, label_id=label_id, now=now)
        if if_match is not None:
            params["if_match"] = if_match
        own, expected = owner_id == caller.user_id, if_match is not None
        async with self.statements.transaction() as db:
            touched = await db.affected(_touch_tasks(db.dialect_name, own=own, expected=expected), params)
            deleted = await db.affected(_delete(own=own, expected=expected), params) > 0
        return deleted, touched
