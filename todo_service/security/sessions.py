"""Login sessions: every access and refresh token belongs to one and dies with it.

The periodic pruner keeps the security tables bounded: a login session goes once its lifetime is
over (its refresh tokens with it; a revoked one stays until then, so its late refresh tokens still
answer TOKEN_REVOKED), and a ``login_failures`` row goes once its window and its lock have both
passed. The audit trail is never pruned here: it is the record of what happened, kept until an
operator's own retention rule archives it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from todo_service.core.periodic import periodic
from todo_service.db.models import AuthSession
from todo_service.security.lockout import prune_login_failures

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable
    from uuid import UUID

    from litestar import Litestar
    from sqlalchemy.ext.asyncio import AsyncSession

    from todo_service.security.lockout import LockoutPolicy

__all__ = (
    "NewRefreshToken",
    "Pruned",
    "hash_refresh_token",
    "new_refresh_token",
    "prune_expired_sessions",
    "prune_security_tables",
    "revoke_sessions",
    "session_pruner",
)


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    """An opaque refresh token for the client, and the hash the database keeps."""

    token: str
    token_hash: str


def hash_refresh_token(token: str) -> str:
    """SHA-256 is enough: the token is 256 random bits, so there is nothing to guess or stretch."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> NewRefreshToken:
    """A fresh random refresh token."""
    token = secrets.token_urlsafe(32)
    return NewRefreshToken(token=token, token_hash=hash_refresh_token(token))


async def revoke_sessions(db: AsyncSession, user_id: UUID, *, keep: UUID | None = None) -> int:
    """Revoke the user's live sessions (all but ``keep``): their access and refresh tokens stop working."""
    statement = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    result = await db.execute(statement.values(revoked_at=datetime.now(UTC)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def prune_expired_sessions(db: AsyncSession, now: datetime | None = None) -> int:
    """Delete login sessions whose every token has expired; returns how many went."""
    result = await db.execute(delete(AuthSession).where(AuthSession.expires_at < (now or datetime.now(UTC))))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows one pruning pass deleted, per kind."""

    sessions: int
    login_failures: int


async def prune_security_tables(db: AsyncSession, lockout: LockoutPolicy, now: datetime | None = None) -> Pruned:
    """Delete expired login sessions (and their refresh tokens) and login failures that count no more."""
    now = now or datetime.now(UTC)
    return Pruned(
        sessions=await prune_expired_sessions(db, now), login_failures=await prune_login_failures(db, lockout, now)
    )


def session_pruner(
    session_maker: Callable[[], AsyncSession], interval: float, lockout: LockoutPolicy
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan task that prunes the security tables at start, then every ``interval`` seconds."""

    async def prune() -> str:
        async with session_maker() as db, db.begin():
            pruned = await prune_security_tables(db, lockout)
        return (
            f"pruned {pruned.sessions} expired login sessions and {pruned.login_failures} stale login failure records"
        )

    return periodic("prune-security-tables", interval, prune)
