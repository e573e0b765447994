"""Test data, made through the API like a client would."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass
from typing import Any, Self

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_scoped_session, async_sessionmaker

from todo_service.core.settings import Settings
from todo_service.db.database import create_statements
from todo_service.db.models import AuthSession
from todo_service.security.access import Caller
from todo_service.tasks.repository import TaskRepository, task_scope

Client = AsyncTestClient[Litestar]


class SameLoopClient(AsyncTestClient[Litestar]):
    """Litestar's async test client, serving the app on the test's own event loop, as a server would.

    ``AsyncTestClient`` runs the app (lifespan and requests) on a helper thread's event loop. Then
    anything a test does on its own loop with the app (a second transport, a background task) mixes
    two loops, which hangs asyncpg and aiosqlite now and then. Here the lifespan runs in a task of
    the test's loop (anyio wants it entered and left in one task) and requests go through httpx's
    in-process ASGI transport on that same loop.
    """

    def __init__(self, app: Litestar, **kwargs: Any) -> None:
        super().__init__(app=app, **kwargs)
        self._transport = httpx.ASGITransport(app=app, client=("testclient", 50000))  # type: ignore[arg-type]

    async def __aenter__(self) -> Self:
        started, self._stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with self.app.lifespan():
                started.set()
                await self._stop.wait()

        self._server = asyncio.create_task(serve(), name="app-lifespan")
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({self._server, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():  # startup failed: raise its error
            waiter.cancel()
            await self._server
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        await self._server


TEST_SECRET = "test-signing-key-0123456789abcdef0123456789abcdef"
PASSWORD = "Correct-Horse-42"
_counter = itertools.count(1)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: a fixed key and a cheap argon2 profile (tests only)."""
    values: dict[str, Any] = {
        "app_env": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_cost": 8,
        "argon2_parallelism": 1,
        "log_level": "WARNING",
        # Rate limits would count across tests (one client address); their own tests turn them on.
        "rate_limit_enabled": False,
        # A healthy Redis on a loaded 2-core CI machine can take longer than the 0.25 s production
        # default to answer its first call; the tests of the timeout itself set their own.
        "redis_timeout": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass(frozen=True)
class Account:
    """A registered user and the token from registration."""

    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header for this account."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def tasks_url(self) -> str:
        """This account's task collection."""
        return f"/api/v1/users/{self.id}/tasks"


async def register(
    client: Client,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    first_name: str = "Test",
    last_name: str = "User",
) -> Account:
    """Register an account (a unique email unless given) and return it."""
    email = email or f"user{next(_counter)}@example.com"
    body = {"email": email, "password": password, "first_name": first_name, "last_name": last_name}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Account(id=data["user"]["id"], email=data["user"]["email"], password=password, token=data["access_token"])


async def login(client: Client, email: str, password: str = PASSWORD) -> str:
    """Log in and return the new access token."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def create_task(client: Client, account: Account, **fields: Any) -> dict[str, Any]:
    """Create a task for ``account`` (title defaults to a unique one) and return its body."""
    body = {"title": f"Task {next(_counter)}", **fields}
    response = await client.post(account.tasks_url, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def caller_of(engine: AsyncEngine, account: Account) -> Caller:
    """``account`` as the caller its access token names (its first login session)."""
    async with engine.connect() as connection:
        session_id = (
            await connection.execute(select(AuthSession.id).where(AuthSession.user_id == uuid.UUID(account.id)))
        ).scalar_one()
    return Caller(user_id=uuid.UUID(account.id), session_id=session_id)


def task_repository(engine: AsyncEngine) -> TaskRepository:
    """A TaskRepository on ``engine``, as an app makes one (the driver connection on PostgreSQL)."""
    scoped = async_scoped_session(async_sessionmaker(engine, expire_on_commit=False), task_scope)
    return TaskRepository(statements=create_statements(engine), session=scoped)
