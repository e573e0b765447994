"""Connecting at start: a bounded wait for the database, and TLS settings that reach the driver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.factories import SameLoopClient, make_settings
from tests.servers import PostgresServer, free_port, postgres_server
from todo_service.app import create_app
from todo_service.db.database import create_engine, wait_for_database


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


async def test_the_wait_gives_up_after_its_attempts() -> None:
    engine = create_engine(make_settings(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x", db_pool_timeout=1))
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="did not answer after 3 attempts"):
            await wait_for_database(engine, attempts=3, first_pause=0.05)
    finally:
        await engine.dispose()
    assert time.monotonic() - started < 5  # 0.05 + 0.1 of pauses, plus three refused connections


async def test_the_wait_returns_once_the_database_comes_up(postgres: PostgresServer) -> None:
    engine = create_engine(make_settings(postgres.url, db_pool_timeout=1))
    postgres.stop()
    try:
        waiting = asyncio.create_task(wait_for_database(engine, attempts=40, first_pause=0.1))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # still retrying while the server is down
        await asyncio.to_thread(postgres.start)
        await asyncio.wait_for(waiting, timeout=30)
    finally:
        if postgres_down(postgres):
            postgres.start()
        await engine.dispose()


def postgres_down(postgres: PostgresServer) -> bool:
    return not (postgres.data / "postmaster.pid").exists()


async def test_an_app_whose_database_never_answers_does_not_start() -> None:
    url = f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x"
    app = create_app(make_settings(url, db_connect_attempts=2, db_connect_retry_seconds=0.05, db_pool_timeout=1))
    # Litestar's lifespan runs in an anyio task group, which wraps the error in a group.
    with pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="did not answer after 2 attempts"), flatten_subgroups=True
    ):
        async with SameLoopClient(app=app):
            pass


@pytest.mark.parametrize(("sslmode", "connects"), [("disable", True), ("prefer", True), ("require", False)])
async def test_db_sslmode_reaches_the_driver(postgres: PostgresServer, sslmode: str, connects: bool) -> None:
    """The test cluster has no TLS: 'require' must fail, which proves the mode is passed on."""
    engine = create_engine(make_settings(postgres.url, db_sslmode=sslmode, db_pool_timeout=2))
    try:
        if connects:
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
        else:
            with pytest.raises(Exception, match=r"(?i)ssl"):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
