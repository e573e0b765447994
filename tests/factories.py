"""Test data, made through the API like a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from todo_service.settings import Settings

Client = AsyncTestClient[Litestar]
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
