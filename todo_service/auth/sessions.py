"""Login sessions: every access and refresh token belongs to one and dies with it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from todo_service.db.models import AuthSession

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from uuid import UUID

    from litestar import Litestar
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = (
    "NewRefreshToken",
    "hash_refresh_token",
    "new_refresh_token",
    "prune_expired_sessions",
    "revoke_sessions",
    "session_pruner",
)

logger = logging.getLogger(__name__)


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


def session_pruner(
    session_maker: Callable[[], AsyncSession], interval: float
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan task that deletes expired login sessions at start, then every ``interval`` seconds."""

    async def prune_forever() -> None:
        while True:
            try:
                async with session_maker() as db, db.begin():
                    pruned = await prune_expired_sessions(db)
                logger.info("pruned %d expired login sessions", pruned)
            except Exception:
                logger.exception("pruning expired login sessions failed; retrying later")
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(prune_forever(), name="prune-login-sessions")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan
