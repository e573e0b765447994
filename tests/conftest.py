"""Fixtures: every integration test runs against SQLite and a real PostgreSQL server.

PostgreSQL comes from ``TEST_DATABASE_URL`` when set, else a throwaway cluster started here.
Each backend is migrated once per session with the project's Alembic history (the same path as
``todo-service database upgrade``); tests share one app per backend and start from empty tables.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from advanced_alchemy.base import metadata_registry
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import todo_service.db.models  # noqa: F401  (registers every table)
from tests.factories import Account, SameLoopClient, make_settings, register
from tests.servers import fresh_postgres_database, migrate, postgres_server
from tests.webhook_receiver import WEBHOOK_TEST_SETTINGS
from todo_service.app import create_app
from todo_service.core.settings import normalize_database_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

BACKENDS = ("sqlite", "postgresql")


# The image test builds and runs the container image (minutes): `just image-test` sets IMAGE_TEST
# and runs it, `.ci/run` too; the rest of the suite does not wait for it.
collect_ignore = [] if os.environ.get("IMAGE_TEST") else ["image"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server: ``TEST_DATABASE_URL`` if given, else one started for this session."""
    if given := os.environ.get("TEST_DATABASE_URL"):
        yield normalize_database_url(given)
        return
    with postgres_server() as server:
        yield server.url


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database on each backend."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'todo.db'}"
    elif os.environ.get("TEST_DATABASE_URL") and worker == "main":
        url = request.getfixturevalue("postgres_admin_url")
    else:
        url = await fresh_postgres_database(request.getfixturevalue("postgres_admin_url"), f"todo_test_{worker}")
    await asyncio.to_thread(migrate, url)
    return url


@pytest.fixture(scope="session")
def backend(database_url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of the tests' own, to arrange and inspect rows behind the API's back."""
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(database_url: str) -> Litestar:
    """The service, as ``create_app`` builds it, on the session's database."""
    return create_app(make_settings(database_url, **WEBHOOK_TEST_SETTINGS))


@pytest.fixture(scope="session")
async def _session_client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with SameLoopClient(app=app) as client:
        yield client


@pytest.fixture
async def client(_session_client: AsyncTestClient[Litestar], db_engine: AsyncEngine) -> AsyncTestClient[Litestar]:
    """An HTTP client of the app; every test starts with empty tables."""
    async with db_engine.begin() as connection:
        for table in reversed(metadata_registry.get(None).sorted_tables):
            if table.name != "change_counter":  # SQLite's revision counter (migration 0003) only moves forward
                await connection.execute(delete(table))
    _session_client.headers.clear()
    return _session_client


@pytest.fixture
async def account(client: AsyncTestClient[Litestar]) -> Account:
    """A registered user with a token."""
    return await register(client, email="ada@example.com", first_name="Ada", last_name="Lovelace")


@pytest.fixture
async def other_account(client: AsyncTestClient[Litestar]) -> Account:
    """A second registered user."""
    return await register(client, email="grace@example.com", first_name="Grace", last_name="Hopper")


@pytest.fixture
def preserved_logging() -> Iterator[None]:
    """For tests that reconfigure the process's logging (apps do): put the root logger back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def project_root() -> Path:
    """The repository's top directory."""
    return Path(__file__).resolve().parents[1]
