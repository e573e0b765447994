"""The periodic pruner keeps every security table bounded: what no longer counts goes, the rest stays.

Expired login sessions go with their refresh tokens; ``login_failures`` rows whose window and lock
have both passed go (a long guessing campaign over many emails leaves no lasting rows); the audit
trail stays (it is the record: no retention rule deletes it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.factories import SameLoopClient, make_settings, register
from todo_service.app import create_app
from todo_service.audit.log import Event, Outcome
from todo_service.db.models import AuditEvent, AuthSession, LoginFailure, RefreshToken
from todo_service.security.lockout import LockoutPolicy
from todo_service.security.sessions import Pruned, prune_security_tables, session_pruner

if TYPE_CHECKING:
    from pathlib import Path

    from litestar import Litestar
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client

WINDOW = timedelta(minutes=15)
DURATION = timedelta(minutes=30)
POLICY = LockoutPolicy(threshold=5, window=WINDOW, duration=DURATION)
WAIT_SECONDS = 10


def failures_at(now: datetime) -> dict[str, tuple[datetime, datetime | None, bool]]:
    """name -> (first_failed_at, locked_until, whether it must survive pruning at ``now``)."""
    return {
        "old-window-no-lock": (now - WINDOW - timedelta(seconds=1), None, False),
        "old-window-lock-over": (now - DURATION - timedelta(minutes=1), now - timedelta(seconds=1), False),
        "old-window-still-locked": (now - WINDOW - timedelta(minutes=1), now + timedelta(minutes=5), True),
        "window-open": (now - WINDOW + timedelta(seconds=30), None, True),
        "window-open-locked": (now - timedelta(minutes=1), now + DURATION, True),
    }


def key(name: str) -> str:
    return name.ljust(64, "0")


async def insert_failures(db_engine: AsyncEngine, now: datetime) -> set[str]:
    """The rows of :func:`failures_at`; returns the keys that must survive pruning."""
    failures = failures_at(now)
    rows = [
        {"email_hash": key(name), "failures": 7, "first_failed_at": first, "locked_until": locked}
        for name, (first, locked, _) in failures.items()
    ]
    async with db_engine.begin() as connection:
        await connection.execute(insert(LoginFailure), rows)
    return {key(name) for name, (*_, keep) in failures.items() if keep}


async def failure_keys(db_engine: AsyncEngine) -> set[str]:
    async with db_engine.connect() as connection:
        return set((await connection.execute(select(LoginFailure.email_hash))).scalars())


async def count(db_engine: AsyncEngine, model: type[AuditEvent | AuthSession | RefreshToken]) -> int:
    async with db_engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())


async def insert_session(db_engine: AsyncEngine, account: Account, *, expires_at: datetime) -> uuid.UUID:
    """A login session of ``account`` with two refresh tokens (one used)."""
    sid = uuid.uuid4()
    async with db_engine.begin() as connection:
        created = expires_at - timedelta(days=14)
        await connection.execute(
            insert(AuthSession).values(id=sid, user_id=uuid.UUID(account.id), created_at=created, expires_at=expires_at)
        )
        await connection.execute(
            insert(RefreshToken),
            [
                {"session_id": sid, "token_hash": uuid.uuid4().hex * 2, "created_at": created, "used_at": created},
                {"session_id": sid, "token_hash": uuid.uuid4().hex * 2, "created_at": created, "used_at": None},
            ],
        )
    return sid


async def test_pruning_deletes_exactly_what_no_longer_counts(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    keep = await insert_failures(db_engine, now)
    expired = await insert_session(db_engine, account, expires_at=now - timedelta(seconds=1))
    await insert_session(db_engine, account, expires_at=now + timedelta(days=1))
    async with db_engine.begin() as connection:
        long_ago = now - timedelta(days=400)
        await connection.execute(
            insert(AuditEvent).values(created_at=long_ago, event=Event.LOGIN_FAILED, outcome=Outcome.FAILURE)
        )
    events = await count(db_engine, AuditEvent)
    assert (await count(db_engine, AuthSession), await count(db_engine, RefreshToken)) == (
        3,
        5,
    )  # registration's session (one token), and the two made here

    async with client.app.state.context.session_maker() as db, db.begin():
        pruned = await prune_security_tables(db, POLICY, now=now)

    assert pruned == Pruned(sessions=1, login_failures=2)
    assert await failure_keys(db_engine) == keep
    async with db_engine.connect() as connection:
        session_ids = set((await connection.execute(select(AuthSession.id))).scalars())
        token_sessions = list((await connection.execute(select(RefreshToken.session_id))).scalars())
    assert expired not in session_ids
    assert len(session_ids) == 2
    assert len(token_sessions) == 3  # the expired session's two tokens went with it
    assert expired not in token_sessions
    assert await count(db_engine, AuditEvent) == events  # the audit trail is kept, however old
    assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 200


async def test_pruning_keeps_the_table_bounded_under_a_campaign_over_many_emails(
    client: Client, db_engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    for round_start in (now - timedelta(hours=2), now - timedelta(hours=1)):
        async with db_engine.begin() as connection:
            await connection.execute(
                insert(LoginFailure),
                [
                    {
                        "email_hash": uuid.uuid4().hex * 2,
                        "failures": 5,
                        "first_failed_at": round_start,
                        "locked_until": round_start + DURATION,
                    }
                    for _ in range(200)
                ],
            )
    async with db_engine.begin() as connection:
        await connection.execute(
            insert(LoginFailure).values(email_hash=key("current"), failures=1, first_failed_at=now)
        )

    async with client.app.state.context.session_maker() as db, db.begin():
        pruned = await prune_security_tables(db, POLICY, now=now)

    assert pruned.login_failures == 400
    assert await failure_keys(db_engine) == {key("current")}


@pytest.mark.usefixtures("preserved_logging")
async def test_the_apps_pruner_prunes_login_failures_at_start(
    client: Client, database_url: str, db_engine: AsyncEngine
) -> None:
    keep = await insert_failures(db_engine, datetime.now(UTC))
    await register(client)
    settings = make_settings(database_url, lockout_window_seconds=900, lockout_duration_seconds=1800)

    async with SameLoopClient(app=create_app(settings)):
        for _ in range(WAIT_SECONDS * 10):
            if await failure_keys(db_engine) == keep:
                break
            await asyncio.sleep(0.1)

    assert await failure_keys(db_engine) == keep


async def test_a_failed_pruning_pass_is_logged_and_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # a database without the tables
    lifespan = session_pruner(async_sessionmaker(engine), interval=0.05, lockout=POLICY)
    try:
        with caplog.at_level(logging.INFO, logger="todo_service.core.periodic"):
            async with lifespan(cast("Litestar", None)):
                for _ in range(WAIT_SECONDS * 20):
                    if len([r for r in caplog.records if r.levelno == logging.ERROR]) >= 2:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await engine.dispose()

    failures = [r for r in caplog.records if r.name == "todo_service.core.periodic" and r.levelno == logging.ERROR]
    assert len(failures) >= 2  # it went on after the first failure
    assert failures[0].getMessage() == "prune-security-tables failed; retrying in 0.05 s"
    assert failures[0].exc_info is not None
    assert "no such table" in str(failures[0].exc_info[1])
    assert not [r for r in caplog.records if r.getMessage().startswith("pruned ")]
