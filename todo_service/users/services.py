"""Accounts: creating them, finding them for login, and the caller's own profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from todo_service.auth.access import caller_may, refuse
from todo_service.db.models import User
from todo_service.lib.errors import EmailAlreadyRegistered, UserNotFound
from todo_service.lib.service import Service
from todo_service.users.schemas import UserRead

if TYPE_CHECKING:
    from uuid import UUID

    from todo_service.auth.access import Caller
    from todo_service.users.schemas import UserUpdate

__all__ = ("USER_COLUMNS", "UserService", "normalize_email")

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
)


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively: store and look them up lower-cased."""
    return email.strip().lower()


class UserService(Service[User]):
    """Accounts."""

    class Repo(SQLAlchemyAsyncRepository[User]):
        """Users."""

        model_type = User

    repository_type = Repo

    async def create_account(self, *, email: str, password_hash: str, first_name: str, last_name: str) -> UserRead:
        """Insert a user with the default role.

        Raises:
            EmailAlreadyRegistered: the email is taken (in any letter case).
        """
        user = User(
            email=normalize_email(email), first_name=first_name, last_name=last_name, password_hash=password_hash
        )
        try:
            user = await self.repository.add(user, auto_refresh=False)
        except DuplicateKeyError:
            raise EmailAlreadyRegistered from None
        return UserRead(*(getattr(user, column.key) for column in USER_COLUMNS))

    async def find_for_login(self, email: str) -> Row[Any] | None:
        """The account with this email, with its password hash (the one query that loads it)."""
        statement = select(*USER_COLUMNS, User.password_hash).where(User.email == normalize_email(email))
        return (await self.db.execute(statement)).one_or_none()

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        """Replace a stored hash (e.g. rehashed with current parameters)."""
        await self.db.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))

    async def get_me(self, caller: Caller) -> UserRead:
        """The caller's account.

        Raises:
            TokenRevoked, InvalidToken: the caller's session is no longer valid.
        """
        statement = select(*USER_COLUMNS).where(
            User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=False)
        )
        row = (await self.db.execute(statement)).one_or_none()
        if row is None:
            await refuse(self.db, caller, owner_id=caller.user_id, write=False, otherwise=UserNotFound())
        return UserRead(*row)

    async def update_me(self, caller: Caller, data: UserUpdate) -> UserRead:
        """Change the caller's names or email; omitted fields stay.

        Raises:
            EmailAlreadyRegistered: the new email belongs to another account.
            Forbidden: the caller is a guest.
        """
        changes = data.sent_fields()
        if not changes:
            return await self.get_me(caller)
        if "email" in changes:
            changes["email"] = normalize_email(changes["email"])
        statement = (
            update(User)
            .where(User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=True))
            .values(**changes, updated_at=datetime.now(UTC))
            .returning(*USER_COLUMNS)
        )
        try:
            row = (await self.db.execute(statement)).one_or_none()
        except IntegrityError:
            raise EmailAlreadyRegistered from None
        if row is None:
            await refuse(self.db, caller, owner_id=caller.user_id, write=True, otherwise=UserNotFound())
        return UserRead(*row)
