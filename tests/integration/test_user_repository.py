"""UserRepository and AdminRepository: the caller's permission is in the WHERE of every statement on their data."""

from __future__ import annotations

import inspect
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from advanced_alchemy.exceptions import DuplicateKeyError
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import caller_of, register
from todo_service.admin.repository import AUDIT_COLUMNS, AdminRepository
from todo_service.core.errors import Forbidden, TokenRevoked
from todo_service.db.models import Role, User
from todo_service.security.access import Caller, explain_refusal
from todo_service.users.repository import USER_COLUMNS, UserRepository, normalize_email

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client

CALLER_FIRST = {
    UserRepository: ("own", "update_own", "own_password", "change_own_password"),
    AdminRepository: ("page_users", "set_role_and_status", "page_audit_events"),
}
BEFORE_A_CALLER = ("find_for_login", "promote_to_admin", "set_password_hash", "email_of", "revoke_sessions")


async def set_role(engine: AsyncEngine, account: Account, role: Role) -> None:
    async with engine.begin() as connection:
        await connection.execute(update(User).where(User.id == uuid.UUID(account.id)).values(role=role))


def columns(row: Sequence[Any] | None) -> dict[str, Any]:
    assert row is not None
    return dict(zip([c.key for c in USER_COLUMNS], row, strict=True))


def test_every_statement_is_a_named_method_and_those_on_the_callers_data_take_the_caller_first() -> None:
    own = {name for name, member in vars(UserRepository).items() if inspect.iscoroutinefunction(member)}
    assert own == {*CALLER_FIRST[UserRepository], *BEFORE_A_CALLER}
    admin = {name for name, member in vars(AdminRepository).items() if inspect.iscoroutinefunction(member)}
    assert admin - {"_page"} == {*CALLER_FIRST[AdminRepository], "role_and_status"}
    for repository, names in CALLER_FIRST.items():
        for name in names:
            assert list(inspect.signature(getattr(repository, name)).parameters)[1] == "caller", name
    assert issubclass(UserRepository, SQLAlchemyAsyncRepository)
    assert UserRepository.model_type is User
    assert AdminRepository.model_type is User


async def test_the_callers_own_account_and_nobody_elses(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    other = await register(client, email="grace@example.com")
    me, them = await caller_of(db_engine, account), await caller_of(db_engine, other)
    # My user id with their session: the token's claims do not match one live session.
    forged = Caller(user_id=me.user_id, session_id=them.session_id)
    async with AsyncSession(db_engine) as db:
        repo = UserRepository(session=db)
        mine = await repo.own(me)
        assert mine is not None
        assert columns(mine)["email"] == account.email
        theirs = await repo.own(them)
        assert theirs is not None
        assert columns(theirs)["email"] == "grace@example.com"
        assert await repo.own(forged) is None
        assert await repo.own_password(forged) is None
        assert await repo.update_own(forged, {"first_name": "Mallory"}) is None
        assert (await repo.own_password(me)) is not None
        changed = await repo.update_own(me, {"first_name": "Augusta"})
        assert changed is not None
        assert columns(changed)["first_name"] == "Augusta"
        assert columns(changed)["updated_at"] != columns(mine)["updated_at"]
        # Nothing sent: the statement still checks the caller, and moves nothing.
        unchanged = await repo.update_own(me, {})
        assert unchanged is not None
        assert columns(unchanged)["updated_at"] == columns(changed)["updated_at"]
        assert columns(await repo.own(them))["first_name"] != "Augusta"
        # The refusal is explained on the same transaction.
        with pytest.raises(TokenRevoked):
            await explain_refusal(repo.statements, forged, owner_id=forged.user_id)
        await db.rollback()


async def test_a_guest_reads_but_cannot_write_its_own_account(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await set_role(db_engine, account, Role.GUEST)
    me = await caller_of(db_engine, account)
    async with AsyncSession(db_engine) as db:
        repo = UserRepository(session=db)
        assert await repo.own(me) is not None
        assert await repo.own_password(me) is None
        assert await repo.update_own(me, {"last_name": "Byron"}) is None
        assert await repo.email_of(me.user_id) == account.email


async def test_a_revoked_session_reaches_nothing(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    me = await caller_of(db_engine, account)
    async with AsyncSession(db_engine) as db, db.begin():
        repo = UserRepository(session=db)
        assert await repo.revoke_sessions(me.user_id, keep=me.session_id) == 0
        assert await repo.revoke_sessions(me.user_id) == 1
        assert await repo.revoke_sessions(me.user_id) == 0  # already revoked
        assert await repo.own(me) is None
        assert await repo.own_password(me) is None
        assert await repo.update_own(me, {"first_name": "Ghost"}) is None


async def test_a_taken_email_is_a_duplicate_key(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    other = await register(client, email="grace@example.com")
    me = await caller_of(db_engine, account)
    async with AsyncSession(db_engine) as db:
        repo = UserRepository(session=db)
        with pytest.raises(DuplicateKeyError):
            await repo.update_own(me, {"email": other.email})
        await db.rollback()


async def test_login_lookups_ignore_letter_case_and_the_inherited_add_inserts(
    client: Client, db_engine: AsyncEngine
) -> None:
    async with AsyncSession(db_engine) as db, db.begin():
        repo = UserRepository(session=db)
        user = User(email=normalize_email("  Ada@Example.COM "), first_name="Ada", last_name="L", password_hash="h1")
        user = await repo.add(user, auto_refresh=False)
        found = await repo.find_for_login("ADA@example.com")
        assert found is not None
        assert (found.id, found.email, found.password_hash) == (user.id, "ada@example.com", "h1")
        await repo.set_password_hash(user.id, "h2")
        assert (await repo.find_for_login("ada@example.com")).password_hash == "h2"  # type: ignore[union-attr]
        promoted = await repo.promote_to_admin("Ada@example.com")
        assert promoted is not None
        assert columns(promoted)["role"] == Role.ADMIN
        assert await repo.promote_to_admin("nobody@example.com") is None
        assert await repo.find_for_login("nobody@example.com") is None
        assert await repo.count() == 1


async def test_only_an_admin_reaches_other_accounts(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    other = await register(client, email="grace@example.com")
    await set_role(db_engine, account, Role.ADMIN)
    admin, user = await caller_of(db_engine, account), await caller_of(db_engine, other)
    async with AsyncSession(db_engine) as db:
        repo = AdminRepository(session=db)
        rows, total = await repo.page_users(admin, page=1, limit=10, role=None, is_active=None)
        assert total == 2
        assert [columns(row)["email"] for row in rows] == [account.email, other.email]
        rows, total = await repo.page_users(admin, page=1, limit=10, role=Role.ADMIN, is_active=None)
        assert (len(rows), total) == (1, 1)
        # A user's listing is refused, not empty; their update finds nothing and changes nothing.
        with pytest.raises(Forbidden):
            await repo.page_users(user, page=1, limit=10, role=None, is_active=None)
        with pytest.raises(Forbidden):
            await repo.page_audit_events(user, page=1, limit=10, event=None, user_id=None, email_hash=None)
        assert await repo.set_role_and_status(user, admin.user_id, {"role": Role.GUEST}) is None
        before = await repo.role_and_status(admin.user_id)
        assert before is not None
        assert (before.role, before.is_active) == (Role.ADMIN, True)
        changed = await repo.set_role_and_status(admin, user.user_id, {"is_active": False})
        assert changed is not None
        assert columns(changed)["is_active"] is False
        assert await repo.set_role_and_status(admin, uuid.uuid4(), {"is_active": False}) is None
        assert await repo.role_and_status(uuid.uuid4()) is None
        events, total = await repo.page_audit_events(admin, page=1, limit=10, event=None, user_id=None, email_hash=None)
        assert all(len(event) == len(AUDIT_COLUMNS) for event in events)
        assert total == len(events)
        await db.rollback()
