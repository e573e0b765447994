"""The app's lifespan: expired login sessions are pruned at start, live ones stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from tests.factories import Account, Client, SameLoopClient, make_settings
from todo_service.app import create_app
from todo_service.db.models import AuthSession

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

POLL_SECONDS = 0.05
POLLS = 100  # 5 s at most: pruning runs beside the app's start, give it a moment


async def add_session(db_engine: AsyncEngine, user_id: str, *, expires_in: timedelta) -> uuid.UUID:
    """A login session of ``user_id`` that expires ``expires_in`` from now (negative: in the past)."""
    session_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with db_engine.begin() as connection:
        await connection.execute(
            insert(AuthSession).values(
                id=session_id,
                user_id=uuid.UUID(user_id),
                created_at=now - timedelta(days=2),
                expires_at=now + expires_in,
            )
        )
    return session_id


async def existing(db_engine: AsyncEngine, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    async with db_engine.connect() as connection:
        rows = await connection.execute(select(AuthSession.id).where(AuthSession.id.in_(ids)))
        return {row[0] for row in rows}


async def remaining_after_pruning(db_engine: AsyncEngine, ids: set[uuid.UUID], live: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ids`` still exist once only ``live`` ones remain, or after the polls run out."""
    remaining = await existing(db_engine, ids)
    for _ in range(POLLS):
        if remaining == live:
            break
        await asyncio.sleep(POLL_SECONDS)
        remaining = await existing(db_engine, ids)
    return remaining


async def test_startup_prunes_expired_sessions(
    client: Client, account: Account, database_url: str, db_engine: AsyncEngine
) -> None:
    expired = await add_session(db_engine, account.id, expires_in=-timedelta(minutes=1))
    long_expired = await add_session(db_engine, account.id, expires_in=-timedelta(days=1))
    live = await add_session(db_engine, account.id, expires_in=timedelta(hours=1))
    assert await existing(db_engine, {expired, long_expired, live}) == {expired, long_expired, live}

    async with SameLoopClient(app=create_app(make_settings(database_url))) as fresh:
        remaining = await remaining_after_pruning(db_engine, {expired, long_expired, live}, {live})
        health = await fresh.get("/api/v1/health")

    assert remaining == {live}
    assert health.status_code == 200


async def test_pruning_keeps_the_callers_own_session(
    client: Client, account: Account, database_url: str, db_engine: AsyncEngine
) -> None:
    expired = await add_session(db_engine, account.id, expires_in=-timedelta(seconds=5))
    async with SameLoopClient(app=create_app(make_settings(database_url))) as fresh:
        assert await remaining_after_pruning(db_engine, {expired}, set()) == set()
        response = await fresh.get("/api/v1/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == account.id


async def test_the_app_starts_and_stops_cleanly_again_and_again(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    for _ in range(2):
        async with SameLoopClient(app=app) as fresh:
            assert (await fresh.get("/api/v1/health/ready")).status_code == 200
