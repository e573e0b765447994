"""Account lockout: too many failed logins for one email lock it for a while.

State lives in the database (``login_failures``), so every worker and replica sees it, keyed by a
keyed hash of the email whether or not an account has it: an unknown email locks exactly like a
real one, and the table never says which emails exist.

However many guesses arrive at once, at most ``threshold`` are evaluated (their password hash
verified) within one window. An attempt first *reserves* its place in the window's count: one
atomic upsert, committed before the password is checked, that increments the count and returns
it. Only the first ``threshold`` reservations of a window are evaluated; any later one is refused
as locked, without evaluation. A failed attempt keeps its reservation; the failure that finds the
count at the threshold locks the email for ``duration`` (one row is updated once, on every
backend). A success clears the row only when nothing happened since its own reservation (no later
attempt, no lock), so a success cannot wipe out what concurrent guesses counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from todo_service.db.models import LoginFailure

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.sql.elements import ColumnElement

__all__ = ("Attempt", "Lockout", "LockoutPolicy", "prune_login_failures")


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """At most ``threshold`` attempts are evaluated within ``window``; reaching it locks for ``duration``."""

    threshold: int
    window: timedelta
    duration: timedelta


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved login attempt: its place in the window's count, or how long it must wait."""

    number: int
    window_start: datetime
    seconds_locked: int  # > 0: refused without evaluation

    @property
    def refused(self) -> bool:
        """Whether the attempt must not be evaluated (the email is locked, or the window's count is full)."""
        return self.seconds_locked > 0


class Lockout:
    """Reserves, settles and clears login attempts per email hash."""

    def __init__(self, db: AsyncSession, policy: LockoutPolicy) -> None:
        self.db = db
        self.policy = policy

    async def seconds_locked(self, email_hash: str) -> int:
        """How long the email stays refused (0: an attempt may try to reserve); a read, no write.

        Refused: locked, or the window's count is already full (its attempts are still being
        evaluated, or ended without a lock).
        """
        now = datetime.now(UTC)
        row = (
            await self.db.execute(
                select(LoginFailure.failures, LoginFailure.first_failed_at, LoginFailure.locked_until).where(
                    LoginFailure.email_hash == email_hash
                )
            )
        ).one_or_none()
        return 0 if row is None else self._refusal(row, now, room=1)

    async def reserve(self, email_hash: str) -> Attempt:
        """Count one attempt (atomically, across workers) before it is evaluated; commit it yourself at once.

        A new window starts when the last one has passed, or a lock has ended. During a lock the
        row is left as it is (attempts then neither count nor extend the lock).
        """
        now = datetime.now(UTC)
        statement = self._count(email_hash, now, keep=LoginFailure.locked_until > now).returning(
            LoginFailure.failures, LoginFailure.first_failed_at, LoginFailure.locked_until
        )
        row = (await self.db.execute(statement)).one()
        return Attempt(
            number=row.failures, window_start=row.first_failed_at, seconds_locked=self._refusal(row, now, room=0)
        )

    async def record_failure(self, email_hash: str, attempt: Attempt) -> bool:
        """Settle an evaluated attempt as failed; True when this failure locked the email. Commit it yourself.

        The attempt's reservation already counts it. Only when its row is gone or a new window began
        meanwhile (a success cleared what it saw) is it counted again, in the current window.
        """
        now = datetime.now(UTC)
        mine = LoginFailure.first_failed_at == attempt.window_start
        await self.db.execute(self._count(email_hash, now, keep=or_(mine, LoginFailure.locked_until > now)))
        result = await self.db.execute(
            update(LoginFailure)
            .where(
                LoginFailure.email_hash == email_hash,
                LoginFailure.failures >= self.policy.threshold,
                LoginFailure.locked_until.is_(None),
            )
            .values(locked_until=now + self.policy.duration)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def clear(self, email_hash: str, attempt: Attempt) -> None:
        """A successful login resets the count, unless other attempts came after it or a lock was reached."""
        await self.db.execute(
            delete(LoginFailure).where(
                LoginFailure.email_hash == email_hash,
                LoginFailure.failures == attempt.number,
                LoginFailure.first_failed_at == attempt.window_start,
                LoginFailure.locked_until.is_(None),
            )
        )

    def _count(self, email_hash: str, now: datetime, *, keep: ColumnElement[bool]) -> Any:  # noqa: ANN401
        """The upsert that counts one attempt.

        The row stays as it is where ``keep`` holds, a window that has passed (or a lock that has
        ended) starts afresh, otherwise the count goes up. Returns a postgresql.Insert or a
        sqlite.Insert: the same upsert API, with no common public type.
        """
        table = LoginFailure.__table__
        fresh = or_(table.c.first_failed_at <= now - self.policy.window, table.c.locked_until <= now)
        insert = postgresql.insert if self.db.bind.dialect.name == "postgresql" else sqlite.insert
        return (
            insert(LoginFailure)
            .values(email_hash=email_hash, failures=1, first_failed_at=now, locked_until=None)
            .on_conflict_do_update(
                index_elements=[LoginFailure.email_hash],
                set_={
                    "failures": case((keep, table.c.failures), (fresh, 1), else_=table.c.failures + 1),
                    "first_failed_at": case(
                        (keep, table.c.first_failed_at), (fresh, now), else_=table.c.first_failed_at
                    ),
                    "locked_until": case((keep, table.c.locked_until), else_=None),
                },
            )
        )

    def _refusal(self, row: Any, now: datetime, *, room: int) -> int:  # noqa: ANN401  (a row of the three columns)
        """Seconds to wait: until the lock ends, or the window does when ``room`` more would overflow it."""
        if row.locked_until is not None:  # a lock that has ended starts the count afresh
            return self._seconds_until(row.locked_until, now) if row.locked_until > now else 0
        window_end = row.first_failed_at + self.policy.window
        if window_end > now and row.failures + room > self.policy.threshold:
            return self._seconds_until(window_end, now)
        return 0

    def _seconds_until(self, moment: datetime, now: datetime) -> int:
        """Whole seconds, at least 1; at most the longest wait (another worker's clock may run a little ahead)."""
        longest = math.ceil(max(self.policy.window, self.policy.duration).total_seconds())
        return min(longest, max(1, math.ceil((moment - now).total_seconds())))


def expired_failures(policy: LockoutPolicy, now: datetime) -> ColumnElement[bool]:
    """Rows whose window and lock have both passed: they count nothing any more."""
    return and_(
        LoginFailure.first_failed_at <= now - policy.window,
        or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now),
    )


async def prune_login_failures(db: AsyncSession, policy: LockoutPolicy, now: datetime | None = None) -> int:
    """Delete the rows that no longer count; returns how many went."""
    result = await db.execute(delete(LoginFailure).where(expired_failures(policy, now or datetime.now(UTC))))
    return int(result.rowcount)  # type: ignore[attr-defined]
