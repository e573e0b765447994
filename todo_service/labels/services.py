"""Labels: the rules of the label routes, over :class:`~todo_service.labels.repository.LabelRepository`.

Names are unique per user case-insensitively (:func:`~todo_service.labels.schemas.name_key`): a
clash is a 409 ``LABEL_NAME_TAKEN``. Colours are stored lower-case. Deleting a label takes it off
every task that carries it; those tasks get a new revision, so sync clients see the change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from todo_service.core.errors import Forbidden, PreconditionFailed
from todo_service.core.pagination import Page
from todo_service.db.driver_errors import unique_violated
from todo_service.labels.errors import LabelNameTaken, LabelNotFound
from todo_service.labels.schemas import LabelRead, name_key
from todo_service.security.access import refuse

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from todo_service.core.errors import AppError
    from todo_service.db.statements import Statements
    from todo_service.idempotency.store import Idempotency
    from todo_service.labels.repository import LabelRepository
    from todo_service.security.access import Caller

__all__ = ("LabelService",)


class LabelService:
    """A user's labels. One per app, shared by every request.

    ``on_change`` is told the owner's id after tasks changed (SQLite's in-process live events).
    """

    def __init__(
        self, repository: LabelRepository, idempotency: Idempotency, *, on_change: Callable[[UUID], None] | None = None
    ) -> None:
        self.repository = repository
        self.idempotency = idempotency
        self.on_change = on_change

    async def list_page(self, caller: Caller, owner_id: UUID, *, page: int, limit: int) -> Page[LabelRead]:
        """One page of the owner's labels, by name."""
        rows, total = await self.repository.page(caller, owner_id, page=page, limit=limit)
        return Page.of([LabelRead(*row) for row in rows], total=total, page=page, limit=limit)

    async def get_label(self, caller: Caller, owner_id: UUID, label_id: UUID) -> LabelRead:
        """One label of the owner.

        Raises:
            LabelNotFound: no such label, or it belongs to someone else.
        """
        row = await self.repository.one(caller, owner_id, label_id)
        if row is None:
            await self._refuse(caller, owner_id, write=False, otherwise=LabelNotFound())
        return LabelRead(*row)

    async def create_label(
        self, caller: Caller, owner_id: UUID, name: str, color: str, *, db: Statements | None = None
    ) -> LabelRead:
        """Add a label.

        Raises:
            LabelNameTaken: the owner has a label of that name (case-insensitively).
        """
        values = {"name": name, "name_key": name_key(name), "color": color.lower()}
        row = await self.repository.add(caller, owner_id, values, datetime.now(UTC), db=db)
        if row is None:  # refused, or the name is taken (the insert did nothing)
            await self._refuse(caller, owner_id, write=True, otherwise=LabelNameTaken())
        return LabelRead(*row)

    async def change(
        self,
        caller: Caller,
        owner_id: UUID,
        label_id: UUID,
        fields: dict[str, Any],
        *,
        if_match: tuple[int, ...] | None,
    ) -> LabelRead:
        """Rename or recolour a label.

        Raises:
            LabelNotFound: no such label, or it belongs to someone else.
            LabelNameTaken: another label of the owner has that name.
            PreconditionFailed: the label changed since the ``If-Match`` version.
        """
        changes = dict(fields)
        if "name" in changes:
            changes["name_key"] = name_key(changes["name"])
        if "color" in changes:
            changes["color"] = changes["color"].lower()
        expected = if_match[0] if if_match else None
        try:
            row = await self.repository.change(
                caller, owner_id, label_id, changes, datetime.now(UTC), if_match=expected
            )
        except Exception as exc:
            # Two renames to one name at once: both saw it free; the unique index refuses the second.
            if unique_violated(exc):
                raise LabelNameTaken from None
            raise
        if row is None:
            await self._refuse_write(caller, owner_id, label_id, if_match, changes.get("name_key"))
        return LabelRead(*row)

    async def delete_label(
        self, caller: Caller, owner_id: UUID, label_id: UUID, *, if_match: tuple[int, ...] | None
    ) -> int:
        """Delete a label, taking it off its tasks; how many tasks carried it.

        Raises:
            LabelNotFound: no such label, or it belongs to someone else.
            PreconditionFailed: the label changed since the ``If-Match`` version.
        """
        expected = if_match[0] if if_match else None
        deleted, touched = await self.repository.remove(
            caller, owner_id, label_id, datetime.now(UTC), if_match=expected
        )
        if not deleted:
            await self._refuse_write(caller, owner_id, label_id, if_match, None)
        if touched and self.on_change is not None:
            self.on_change(owner_id)
        return touched

    async def _refuse_write(
        self, caller: Caller, owner_id: UUID, label_id: UUID, if_match: tuple[int, ...] | None, key: str | None
    ) -> NoReturn:
        """Why a guarded write found nothing: stale ``If-Match`` (412), a name clash (409), else refused or missing."""
        current = await self.repository.one(caller, owner_id, label_id)
        if (
            current is not None
            and if_match is not None
            and LabelRead(*current).etag.strip('"') not in {str(version) for version in if_match}
        ):
            raise PreconditionFailed(headers={"ETag": LabelRead(*current).etag})
        if (
            current is not None
            and key is not None
            and await self.repository.name_taken(caller, owner_id, key, but=label_id)
        ):
            raise LabelNameTaken
        await self._refuse(caller, owner_id, write=True, otherwise=LabelNotFound() if current is None else Forbidden())

    async def _refuse(self, caller: Caller, owner_id: UUID, *, write: bool, otherwise: AppError) -> NoReturn:
        await refuse(self.repository.statements, caller, owner_id=owner_id, write=write, otherwise=otherwise)
