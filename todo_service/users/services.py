"""Accounts: creating them, finding them for login, and the caller's own profile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from todo_service.audit.log import Event, Outcome
from todo_service.core.errors import Forbidden
from todo_service.core.service import Service
from todo_service.db.models import Role, User
from todo_service.security.access import caller_may, refuse
from todo_service.security.passwords import check_password_policy
from todo_service.security.sessions import revoke_sessions
from todo_service.users.errors import EmailAlreadyRegistered, UserNotFound
from todo_service.users.schemas import UserRead

if TYPE_CHECKING:
    from uuid import UUID

    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.audit.log import AuditTrail
    from todo_service.security.access import Caller
    from todo_service.security.passwords import Passwords
    from todo_service.users.schemas import PasswordChange, UserUpdate

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

    def __init__(self, session: AsyncSession, *, passwords: Passwords, audit: AuditTrail) -> None:
        super().__init__(session=session)
        self.passwords = passwords
        self.audit = audit

    async def create_account(
        self, *, email: str, password_hash: str, first_name: str, last_name: str, role: Role = Role.USER
    ) -> UserRead:
        """Insert a user (nobody can register as an admin: only the command line makes one).

        Raises:
            EmailAlreadyRegistered: the email is taken (in any letter case).
        """
        user = User(
            email=normalize_email(email),
            first_name=first_name,
            last_name=last_name,
            password_hash=password_hash,
            role=role,
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

    async def promote_to_admin(self, email: str) -> UserRead | None:
        """Make the account with this email an admin (None: no such account)."""
        row = (
            await self.db.execute(
                update(User)
                .where(User.email == normalize_email(email))
                .values(role=Role.ADMIN, updated_at=datetime.now(UTC))
                .returning(*USER_COLUMNS)
            )
        ).one_or_none()
        return None if row is None else UserRead(*row)

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
        """Change the caller's names or email; omitted fields stay. A new email logs out other sessions.

        Raises:
            EmailAlreadyRegistered: the new email belongs to another account.
            Forbidden: the caller is a guest.
        """
        changes = data.sent_fields()
        new_email = normalize_email(changes["email"]) if "email" in changes else None
        email_changes = new_email is not None and new_email != await self._current_email(caller)
        if new_email is not None:
            changes["email"] = new_email
        # With nothing to change the statement still runs: it checks the caller may write.
        values = {**changes, "updated_at": datetime.now(UTC) if changes else User.updated_at}
        statement = (
            update(User)
            .where(User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=True))
            .values(values)
            .returning(*USER_COLUMNS)
        )
        try:
            row = (await self.db.execute(statement)).one_or_none()
        except IntegrityError:
            raise EmailAlreadyRegistered from None
        if row is None:
            await refuse(self.db, caller, owner_id=caller.user_id, write=True, otherwise=UserNotFound())
        if email_changes:
            await revoke_sessions(self.db, caller.user_id, keep=caller.session_id)
            self.audit.record(Event.EMAIL_CHANGED, Outcome.SUCCESS, user_id=caller.user_id, email=new_email)
        return UserRead(*row)

    async def change_password(self, caller: Caller, data: PasswordChange) -> None:
        """Replace the caller's password after checking the current one; other sessions are logged out.

        Raises:
            Forbidden: the current password is wrong, or the caller is a guest.
            WeakPassword: the new password breaks the policy.
        """
        statement = select(User.email, User.password_hash).where(
            User.id == caller.user_id, caller_may(caller, owner_id=caller.user_id, write=True)
        )
        row = (await self.db.execute(statement)).one_or_none()
        if row is None:
            await refuse(self.db, caller, owner_id=caller.user_id, write=True, otherwise=UserNotFound())
        if not await self.passwords.verify(row.password_hash, data.current_password):
            raise Forbidden("The current password is not correct")
        check_password_policy(data.new_password, row.email)
        await self.db.execute(
            update(User)
            .where(User.id == caller.user_id)
            .values(password_hash=await self.passwords.hash(data.new_password), updated_at=datetime.now(UTC))
        )
        await revoke_sessions(self.db, caller.user_id, keep=caller.session_id)
        self.audit.record(Event.PASSWORD_CHANGED, Outcome.SUCCESS, user_id=caller.user_id)

    async def _current_email(self, caller: Caller) -> str | None:
        return (await self.db.execute(select(User.email).where(User.id == caller.user_id))).scalar_one_or_none()
