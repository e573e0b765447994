"""``todo-service users create-admin``: the only way to make an admin, run as the console script."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from tests.factories import TEST_SECRET, SameLoopClient, make_settings
from tests.processes import run_console, service_env
from todo_service.app import create_app
from todo_service.audit.log import AuditLog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

ADMIN_PASSWORD = "Admin-Secret-2024"


def run_cli(
    cwd: Path, database: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the console script in ``cwd`` on the SQLite file ``database``, with only the given settings."""
    settings = service_env(DATABASE_URL=f"sqlite+aiosqlite:///{database}", **env)
    return run_console(*args, cwd=cwd, env=settings, stdin=stdin)


def create_admin(cwd: Path, database: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, database, "users", "create-admin", *args, **env)


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated by ``todo-service database upgrade``, copied for every test."""
    directory = tmp_path_factory.mktemp("cli-template")
    database = directory / "template.db"
    result = run_cli(directory, database, "database", "upgrade", "--no-prompt")
    assert result.returncode == 0, result.stdout + result.stderr
    return database


@pytest.fixture
def database(migrated_template: Path, tmp_path: Path) -> Path:
    """A fresh, migrated SQLite file for one test."""
    path = tmp_path / "todo.db"
    shutil.copyfile(migrated_template, path)
    return path


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(sql, params).fetchall()
    connection.close()
    return rows


def users(database: Path) -> dict[str, str]:
    return {str(email): str(role) for email, role in query(database, "SELECT email, role FROM users")}


def events(database: Path) -> list[tuple[Any, ...]]:
    return query(database, "SELECT event, outcome, email_hash, ip, detail FROM audit_events ORDER BY created_at")


def one_message(result: subprocess.CompletedProcess[str]) -> str:
    """What the command told the user, with rich's box drawing and wrapping folded away."""
    text = re.sub(r"[│╭╮╰╯─]", " ", result.stdout + result.stderr)
    return " ".join(text.split())


def email_hash(email: str) -> str:
    return AuditLog(cast("AsyncEngine", None), TEST_SECRET).email_hash(email)  # hashing needs no engine


async def login(database: Path, email: str, password: str) -> int:
    """Log in through an app on the file; returns the status code."""
    async with SameLoopClient(app=create_app(make_settings(f"sqlite+aiosqlite:///{database}"))) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


def test_the_users_group_lists_create_admin(tmp_path: Path, database: Path) -> None:
    result = run_cli(tmp_path, database, "users", "--help")

    assert result.returncode == 0, result.stderr
    assert "create-admin" in result.stdout


async def test_create_admin_makes_an_admin_who_can_log_in(tmp_path: Path, database: Path) -> None:
    result = create_admin(tmp_path, database, "--email", "Boss@Example.com", "--password", ADMIN_PASSWORD)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "boss@example.com: admin account created" in result.stdout
    assert "Traceback" not in result.stderr
    assert users(database) == {"boss@example.com": "admin"}
    assert query(database, "SELECT first_name, last_name, is_active FROM users") == [("Admin", "User", 1)]
    assert await login(database, "boss@example.com", ADMIN_PASSWORD) == 200
    assert await login(database, "boss@example.com", "Wrong-Password-1") == 401


def test_create_admin_takes_names(tmp_path: Path, database: Path) -> None:
    args = ("--email", "ada@example.com", "--first-name", "Ada", "--last-name", "Lovelace")
    result = create_admin(tmp_path, database, *args, "--password", ADMIN_PASSWORD)

    assert result.returncode == 0, result.stdout + result.stderr
    assert query(database, "SELECT first_name, last_name, role FROM users") == [("Ada", "Lovelace", "admin")]


async def test_password_from_the_environment(tmp_path: Path, database: Path) -> None:
    result = create_admin(tmp_path, database, "--email", "env@example.com", TODO_ADMIN_PASSWORD=ADMIN_PASSWORD)

    assert result.returncode == 0, result.stdout + result.stderr
    assert users(database) == {"env@example.com": "admin"}
    assert await login(database, "env@example.com", ADMIN_PASSWORD) == 200


async def test_password_prompted_when_not_given(tmp_path: Path, database: Path) -> None:
    stdin = f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n"
    result = run_cli(tmp_path, database, "users", "create-admin", "--email", "ask@example.com", stdin=stdin)

    assert result.returncode == 0, result.stdout + result.stderr
    assert users(database) == {"ask@example.com": "admin"}
    assert ADMIN_PASSWORD not in result.stdout + result.stderr
    assert await login(database, "ask@example.com", ADMIN_PASSWORD) == 200


async def test_an_existing_account_is_promoted(tmp_path: Path, database: Path) -> None:
    body = {"email": "ada@example.com", "password": "Lovelace-Original-99", "first_name": "Ada", "last_name": "L"}
    async with SameLoopClient(app=create_app(make_settings(f"sqlite+aiosqlite:///{database}"))) as client:
        assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201

    result = create_admin(tmp_path, database, "--email", "ADA@example.com", "--password", ADMIN_PASSWORD)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ada@example.com: promoted to admin" in result.stdout
    assert users(database) == {"ada@example.com": "admin"}
    assert query(database, "SELECT first_name FROM users") == [("Ada",)]
    # Promotion keeps the account's own password.
    assert await login(database, "ada@example.com", "Lovelace-Original-99") == 200
    assert await login(database, "ada@example.com", ADMIN_PASSWORD) == 401


@pytest.mark.parametrize("password", ["short", "Boss-Password-1"])
def test_a_weak_password_is_refused(tmp_path: Path, database: Path, password: str) -> None:
    result = create_admin(tmp_path, database, "--email", "boss@example.com", "--password", password)

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "password must" in one_message(result).lower()
    assert users(database) == {}
    assert events(database) == []


@pytest.mark.parametrize("email", ["not-an-email", "sp ace@example.com"])
def test_a_malformed_email_is_refused(tmp_path: Path, database: Path, email: str) -> None:
    result = create_admin(tmp_path, database, "--email", email, "--password", ADMIN_PASSWORD)

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "--email" in one_message(result)
    assert "not an email address" in one_message(result)
    assert users(database) == {}


def test_the_email_is_required(tmp_path: Path, database: Path) -> None:
    result = create_admin(tmp_path, database, "--password", ADMIN_PASSWORD)

    assert result.returncode != 0
    assert "--email" in one_message(result)
    assert "Traceback" not in result.stdout + result.stderr


def test_creation_and_promotion_are_audited(tmp_path: Path, database: Path) -> None:
    assert create_admin(tmp_path, database, "--email", "boss@example.com", "--password", ADMIN_PASSWORD).returncode == 0
    assert create_admin(tmp_path, database, "--email", "boss@example.com").returncode == 0

    created, promoted = events(database)

    assert created == ("admin_created", "success", email_hash("boss@example.com"), "cli", None)
    assert promoted[:2] == ("role_changed", "success")
    assert promoted[3] == "cli"
    assert "admin" in promoted[4]
    [(user_id,)] = query(database, "SELECT id FROM users")
    assert query(database, "SELECT DISTINCT user_id FROM audit_events") == [(user_id,)]
    for row in query(database, "SELECT * FROM audit_events"):
        assert not any(ADMIN_PASSWORD in str(value) or "boss@" in str(value) for value in row)


async def test_audit_rows_are_readable_by_the_app(tmp_path: Path, database: Path) -> None:
    """The CLI hashes emails with the same key as the app, so the admin API's ?email= filter finds them."""
    assert create_admin(tmp_path, database, "--email", "boss@example.com", "--password", ADMIN_PASSWORD).returncode == 0
    async with SameLoopClient(app=create_app(make_settings(f"sqlite+aiosqlite:///{database}"))) as client:
        login = await client.post("/api/v1/auth/login", json={"email": "boss@example.com", "password": ADMIN_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        response = await client.get(
            "/api/v1/admin/audit-events",
            params={"email": "BOSS@example.com", "event": "admin_created"},
            headers=headers,
        )

    assert response.status_code == 200, response.text
    assert [(item["event"], item["ip"]) for item in response.json()["items"]] == [("admin_created", "cli")]
