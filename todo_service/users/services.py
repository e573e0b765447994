"""Accounts: the rules of creating them and of the caller's own profile, over :class:`UserRepository`.

The repository answers None when a statement found nothing the caller may touch; the service tells
the caller why (:func:`~todo_service.security.access.refuse`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from todo_service.audit.log import Event, Outcome
from todo_service.core.errors import FieldError, Forbidden, ValidationFailed
from todo_service.db.models import Role, User
from todo_service.security.access import refuse
from todo_service.security.passwords import check_password_policy
from todo_service.users.errors import EmailAlreadyRegistered, UserNotFound
from todo_service.users.repository import USER_COLUMNS, UserRepository, normalize_email
from todo_service.users.schemas import UserRead

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.audit.log import AuditTrail
    from todo_service.security.access import Caller
    from todo_service.security.passwords import Passwords
    from todo_service.users.schemas import PasswordChange, UserUpdate

__all__ = ("UserService",)


def _check_zone(name: str) -> None:
    """A 422 unless ``name`` is a known IANA time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"is not a known IANA time zone: {name}"
        raise ValidationFailed(
            f"Invalid timezone: {message}", errors=[FieldError(field="timezone", message=message, source="body")]
        ) from None


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    """Accounts."""

    repository_type = UserRepository

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

    async def promote_to_admin(self, email: str) -> UserRead | None:
        """Make the account with this email an admin (None: no such account)."""
        row = await self.repository.promote_to_admin(email)
        return None if row is None else UserRead(*row)

    async def get_me(self, caller: Caller) -> UserRead:
        """The caller's account.

        Raises:
            TokenRevoked, InvalidToken: the caller's session is no longer valid.
        """
        row = await self.repository.own(caller)
        if row is None:
            await self._refuse(caller, write=False)
        return UserRead(*row)

    async def update_me(self, caller: Caller, data: UserUpdate) -> UserRead:
        """Change the caller's names or email; omitted fields stay. A new email logs out other sessions.

        Raises:
            EmailAlreadyRegistered: the new email belongs to another account.
            Forbidden: the caller is a guest.
        """
        changes = data.sent_fields()
        if changes.get("timezone") is not None:
            _check_zone(changes["timezone"])
        new_email = normalize_email(changes["email"]) if "email" in changes else None
        email_changes = new_email is not None and new_email != await self.repository.email_of(caller.user_id)
        if new_email is not None:
            changes["email"] = new_email
        try:
            row = await self.repository.update_own(caller, changes)
        except DuplicateKeyError:
            raise EmailAlreadyRegistered from None
        if row is None:
            await self._refuse(caller, write=True)
        if email_changes:
            await self.repository.revoke_sessions(caller.user_id, keep=caller.session_id)
            self.audit.record(Event.EMAIL_CHANGED, Outcome.SUCCESS, user_id=caller.user_id, email=new_email)
        return UserRead(*row)

    async def change_password(self, caller: Caller, data: PasswordChange) -> None:
        """Replace the caller's password after checking the current one; other sessions are logged out.

        Raises:
            Forbidden: the current password is wrong, or the caller is a guest.
            WeakPassword: the new password breaks the policy.
        """
        row = await self.repository.own_password(caller)
        if row is None:
            await self._refuse(caller, write=True)
        if not await self.passwords.verify(row.password_hash, data.current_password):
            raise Forbidden("The current password is not correct")
        check_password_policy(data.new_password, row.email)
        await self.repository.change_own_password(caller, await self.passwords.hash(data.new_password))
        await self.repository.revoke_sessions(caller.user_id, keep=caller.session_id)
        self.audit.record(Event.PASSWORD_CHANGED, Outcome.SUCCESS, user_id=caller.user_id)

    async def _refuse(self, caller: Caller, *, write: bool) -> NoReturn:
        """Raise why the caller's own account was out of reach (a missing one is UserNotFound)."""
        await refuse(self.repository.statements, caller, owner_id=caller.user_id, write=write, otherwise=UserNotFound())
