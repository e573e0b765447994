"""The users' repository: every statement of the feature, each a named method.

:class:`UserRepository` is an Advanced Alchemy repository of :class:`~todo_service.db.models.User`.
The statements of the caller's own account (``own``, ``update_own``, ``own_password``) take the
caller first and carry their permission (:func:`~todo_service.security.access.caller_may`) in the
``WHERE``: a dead session or a guest's write finds nothing, and the service asks
:attr:`~UserRepository.statements` why. The rest serve login and the command line, before there is
a caller. Every statement runs on the repository's ``session``: the request's transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from todo_service.db.models import Role, User
from todo_service.db.statements import SessionStatements
from todo_service.security.access import caller_may
from todo_service.security.sessions import revoke_sessions

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.security.access import Caller

__all__ = ("USER_COLUMNS", "UserRepository", "normalize_email")

# The columns of UserRead, in its field order.
USER_COLUMNS = (
    User.id,
    User.email,
    User.first_name,
    User.last_name,
    User.role,
    User.is_active,
    User.created_at,
    User.updated_at,
    User.timezone,
)


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively: store and look them up lower-cased."""
    return email.strip().lower()


class UserRepository(SQLAlchemyAsyncRepository[User]):
    """Accounts, in the request's transaction. New ones go in with the inherited ``add``."""

    model_type = User
    # Always a request's (or the command line's) own session, never a scoped one: the security
    # helpers it is handed to take an AsyncSession.
    session: AsyncSession

    def __init__(self, *, session: AsyncSession, **kwargs: Any) -> None:  # noqa: ANN401  (Advanced Alchemy's options)
        super().__init__(session=session, **kwargs)
        self.statements = SessionStatements(session)  # for refuse() and paged listings, in the same transaction

    async def find_for_login(self, email: str) -> Row[Any] | None:
        """The account with this email (``USER_COLUMNS``, then its password hash): the one query that loads it."""
        statement = select(*USER_COLUMNS, User.password_hash).where(User.email == normalize_email(email))
        return (await self.session.execute(statement)).one_or_none()

    async def promote_to_admin(self, email: str) -> Row[Any] | None:
        """Make the account with this email an admin (its ``USER_COLUMNS``); None: no such account."""
        statement = (
            update(User)
            .where(User.email == normalize_email(email))
            .values(role=Role.ADMIN, updated_at=datetime.now(UTC))
            .returning(*USER_COLUMNS)
        )
        return (await self.session.execute(statement)).one_or_none()

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        """Replace a stored hash, the password staying the same (rehashed with current parameters)."""
        await self.session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))

    async def email_of(self, user_id: UUID) -> str | None:
        """The account's current email, or None."""
        return (await self.session.execute(select(User.email).where(User.id == user_id))).scalar_one_or_none()

    async def own(self, caller: Caller) -> Row[Any] | None:
        """The caller's account (``USER_COLUMNS``), or None when the caller may not read it."""
        statement = select(*USER_COLUMNS).where(
            User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=False)
        )
        return (await self.session.execute(statement)).one_or_none()

    async def update_own(self, caller: Caller, changes: dict[str, Any]) -> Row[Any] | None:
        """Set ``changes`` on the caller's account (its ``USER_COLUMNS``), or None when the caller may not write.

        Raises:
            DuplicateKeyError: the email in ``changes`` belongs to another account.
        """
        # With nothing to change the statement still runs: it checks the caller may write.
        values = {**changes, "updated_at": datetime.now(UTC) if changes else User.updated_at}
        statement = (
            update(User)
            .where(User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=True))
            .values(values)
            .returning(*USER_COLUMNS)
        )
        try:
            return (await self.session.execute(statement)).one_or_none()
        except IntegrityError:  # names cannot be null: the one constraint an update can break is the email's
            raise DuplicateKeyError(detail="The email belongs to another account") from None

    async def own_password(self, caller: Caller) -> Row[Any] | None:
        """The caller's email and password hash, or None when the caller may not change them."""
        statement = select(User.email, User.password_hash).where(
            User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=True)
        )
        return (await self.session.execute(statement)).one_or_none()

    async def change_own_password(self, caller: Caller, password_hash: str) -> None:
        """Store the caller's new password hash (after :meth:`own_password` allowed it, in this transaction)."""
        await self.session.execute(
            update(User)
            .where(User.id == caller.user_id)
            .values(password_hash=password_hash, updated_at=datetime.now(UTC))
        )

    async def revoke_sessions(self, user_id: UUID, *, keep: UUID | None = None) -> int:
        """Log the account out of its live sessions (all but ``keep``); how many there were."""
        return await revoke_sessions(self.session, user_id, keep=keep)
