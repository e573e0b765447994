"""Account lockout: too many failed logins for one email lock it for a while.

State lives in the database (``login_failures``), so every worker sees it, keyed by a keyed hash
of the email whether or not an account has it: an unknown email locks exactly like a real one,
and the table never says which emails exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from todo_service.db.models import LoginFailure

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ("Lockout", "LockoutPolicy")


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """``threshold`` failures within ``window`` lock the email for ``duration``."""

    threshold: int
    window: timedelta
    duration: timedelta


class Lockout:
    """Counts failed logins per email hash and tells when an email is locked."""

    def __init__(self, db: AsyncSession, policy: LockoutPolicy) -> None:
        self.db = db
        self.policy = policy

    async def seconds_locked(self, email_hash: str) -> int:
        """How long the email stays locked (0: not locked)."""
        now = datetime.now(UTC)
        locked_until = (
            await self.db.execute(select(LoginFailure.locked_until).where(LoginFailure.email_hash == email_hash))
        ).scalar_one_or_none()
        if locked_until is None or locked_until <= now:
            return 0
        return max(1, math.ceil((locked_until - now).total_seconds()))

    async def record_failure(self, email_hash: str) -> bool:
        """Count one failure (atomically, across workers); True when it locks the email."""
        now = datetime.now(UTC)
        window_start = now - self.policy.window
        table = LoginFailure.__table__
        in_window = table.c.first_failed_at > window_start
        insert = postgresql.insert if self.db.bind.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(LoginFailure)
            .values(email_hash=email_hash, failures=1, first_failed_at=now, locked_until=None)
            .on_conflict_do_update(
                index_elements=[LoginFailure.email_hash],
                set_={
                    "failures": case((in_window, table.c.failures + 1), else_=1),
                    "first_failed_at": case((in_window, table.c.first_failed_at), else_=now),
                },
            )
            .returning(LoginFailure.failures)
        )
        failures = (await self.db.execute(statement)).scalar_one()
        if failures < self.policy.threshold:
            return False
        # Locked: start counting afresh once the lock has passed.
        await self.db.execute(
            update(LoginFailure)
            .where(LoginFailure.email_hash == email_hash)
            .values(failures=0, first_failed_at=now, locked_until=now + self.policy.duration)
        )
        return True

    async def clear(self, email_hash: str) -> None:
        """A successful login resets the count."""
        await self.db.execute(delete(LoginFailure).where(LoginFailure.email_hash == email_hash))
