"""Lists: the rules of the list routes, over :class:`~todo_service.lists.repository.ListRepository`.

Every user has one default list, the Inbox, from the moment the account exists (a trigger on
``users``, migration 0006): it can be renamed, never deleted. Deleting another list moves its tasks
to another of the user's lists (the Inbox unless ``to`` names one) or, with ``tasks=delete``, to the
trash, restorable into the Inbox; then the list goes, all in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from todo_service.core.errors import FieldError, Forbidden, PreconditionFailed, ValidationFailed
from todo_service.core.pagination import Page
from todo_service.lists.errors import DefaultListUndeletable, ListNotFound
from todo_service.lists.schemas import ListRead, ListTasks
from todo_service.security.access import refuse

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from todo_service.core.errors import AppError
    from todo_service.db.statements import Statements
    from todo_service.idempotency.store import Idempotency
    from todo_service.lists.repository import ListRepository
    from todo_service.security.access import Caller

__all__ = ("ListService",)


class ListService:
    """A user's lists. One per app, shared by every request.

    ``key_after`` is the tasks' rank after a key (None: the first), the position the moved tasks
    follow (lists cannot import tasks: the app passes it in). ``on_change`` is told the owner's id
    after tasks moved (SQLite's in-process live events; on PostgreSQL a trigger notifies).
    """

    def __init__(
        self,
        repository: ListRepository,
        idempotency: Idempotency,
        *,
        trash_retention: timedelta,
        key_after: Callable[[str | None], str],
        on_change: Callable[[UUID], None] | None = None,
    ) -> None:
        self.repository = repository
        self.idempotency = idempotency
        self.trash_retention = trash_retention
        self.key_after = key_after
        self.on_change = on_change

    async def list_page(self, caller: Caller, owner_id: UUID, *, page: int, limit: int) -> Page[ListRead]:
        """One page of the owner's lists: the Inbox first, then the others, oldest first."""
        rows, total = await self.repository.page(caller, owner_id, page=page, limit=limit)
        return Page.of([ListRead(*row) for row in rows], total=total, page=page, limit=limit)

    async def get_list(self, caller: Caller, owner_id: UUID, list_id: UUID) -> ListRead:
        """One list of the owner.

        Raises:
            ListNotFound: no such list, or it belongs to someone else.
        """
        row = await self.repository.one(caller, owner_id, list_id)
        if row is None:
            await self._refuse(caller, owner_id, write=False, otherwise=ListNotFound())
        return ListRead(*row)

    async def create_list(self, caller: Caller, owner_id: UUID, name: str, *, db: Statements | None = None) -> ListRead:
        """Add a list (never a default one: the Inbox exists with the account)."""
        row = await self.repository.add(caller, owner_id, name, datetime.now(UTC), db=db)
        if row is None:
            await self._refuse(caller, owner_id, write=True, otherwise=Forbidden())
        return ListRead(*row)

    async def rename(
        self, caller: Caller, owner_id: UUID, list_id: UUID, name: str, *, if_match: tuple[int, ...] | None
    ) -> ListRead:
        """Rename a list (the Inbox too).

        Raises:
            ListNotFound: no such list, or it belongs to someone else.
            PreconditionFailed: the list changed since the ``If-Match`` version.
        """
        expected = if_match[0] if if_match else None
        row = await self.repository.rename(caller, owner_id, list_id, name, datetime.now(UTC), if_match=expected)
        if row is None:
            await self._refuse_write(caller, owner_id, list_id, if_match)
        return ListRead(*row)

    async def delete_list(  # noqa: PLR0913  (the list, what becomes of its tasks, and the precondition)
        self,
        caller: Caller,
        owner_id: UUID,
        list_id: UUID,
        *,
        tasks: ListTasks,
        to: UUID | None,
        if_match: tuple[int, ...] | None,
    ) -> int:
        """Delete a list, moving its tasks (``to``, else the Inbox) or trashing them; how many tasks moved.

        Raises:
            ListNotFound: no such list, or it belongs to someone else.
            DefaultListUndeletable: the list is the Inbox.
            ValidationFailed: ``to`` is not another of the owner's lists, or is given with ``tasks=delete``.
            PreconditionFailed: the list changed since the ``If-Match`` version.
        """
        if to is not None and (tasks is ListTasks.DELETE or to == list_id):
            raise _bad_target("must be another of the user's lists, and only with tasks=move")
        now = datetime.now(UTC)
        async with self.repository.statements.transaction() as db:
            found = await self.repository.one(caller, owner_id, list_id, db=db, lock=True)
            if found is None:
                await self._refuse(caller, owner_id, write=True, otherwise=ListNotFound())
            if ListRead(*found).is_default:
                raise DefaultListUndeletable
            if to is not None and await self.repository.one(caller, owner_id, to, db=db) is None:
                raise _bad_target("must be another of the user's lists")
            target = to or await self.repository.inbox(caller, owner_id, db=db)
            assert target is not None  # every account has its Inbox  # noqa: S101
            until = now + self.trash_retention if tasks is ListTasks.DELETE else None
            # After the target's last task, in their own order: two lists can hold the same positions.
            after = self.key_after(await self.repository.last_position(owner_id, target, db=db))
            moved = await self.repository.move_tasks(
                caller, owner_id, list_id, target, now, trash_until=until, after_key=after, db=db
            )
            expected = if_match[0] if if_match else None
            if not await self.repository.remove(caller, owner_id, list_id, if_match=expected, db=db):
                await self._refuse_write(caller, owner_id, list_id, if_match, db=db)
        if moved and self.on_change is not None:
            self.on_change(owner_id)
        return moved

    async def _refuse_write(
        self,
        caller: Caller,
        owner_id: UUID,
        list_id: UUID,
        if_match: tuple[int, ...] | None,
        db: Statements | None = None,
    ) -> NoReturn:
        """Why a guarded write found nothing: a stale ``If-Match`` (412), else a refusal or a miss."""
        if if_match is not None and (current := await self.repository.one(caller, owner_id, list_id, db=db)):
            raise PreconditionFailed(headers={"ETag": ListRead(*current).etag})
        await self._refuse(caller, owner_id, write=True, otherwise=ListNotFound(), db=db)

    async def _refuse(
        self, caller: Caller, owner_id: UUID, *, write: bool, otherwise: AppError, db: Statements | None = None
    ) -> NoReturn:
        statements = db or self.repository.statements
        await refuse(statements, caller, owner_id=owner_id, write=write, otherwise=otherwise)


def _bad_target(message: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid to: {message}", errors=[FieldError(field="to", message=message, source="query")])
