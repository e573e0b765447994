"""The ``todo-service`` console script: Litestar's CLI bound to the app, and one clear line for a bad setting."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.processes import SCRIPT, run_console, service_env
from todo_service.db.database import VERSION_TABLE


def run_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script in ``cwd`` (no ``.env`` there) with only the given settings."""
    return run_console(*args, cwd=cwd, env=service_env(**env))


def sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    connection.close()
    return {row[0] for row in rows}


def test_the_script_is_installed() -> None:
    assert SCRIPT.is_file()
    assert os.access(SCRIPT, os.X_OK)


def test_help_lists_run_and_database(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help", DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'help.db'}")
    assert result.returncode == 0, result.stderr
    commands = set(re.findall(r"^\W*([a-z][a-z-]+)\s{2,}", result.stdout, flags=re.MULTILINE))
    assert {"run", "database"} <= commands, result.stdout
    assert "Traceback" not in result.stderr


def test_database_upgrade_creates_the_tables(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    result = run_cli(tmp_path, "database", "upgrade", "--no-prompt", DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert sqlite_tables(database) >= {"users", "tasks", "auth_sessions", VERSION_TABLE}
    with sqlite3.connect(database) as connection:
        versions = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608
    connection.close()
    assert len(versions) == 1


def test_plain_sqlite_url_is_accepted(tmp_path: Path) -> None:
    database = tmp_path / "plain.db"
    result = run_cli(tmp_path, "database", "upgrade", "--no-prompt", DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"users", "tasks", "auth_sessions"} <= sqlite_tables(database)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ACCESS_TOKEN_EXPIRE_MINUTES": "abc"}, "ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"ACCESS_TOKEN_EXPIRE_MINUTES": "0"}, "ACCESS_TOKEN_EXPIRE_MINUTES"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"APP_ENV": "production", "SECRET_KEY": ""}, "SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": "too-short"}, "SECRET_KEY"),
    ],
)
def test_bad_setting_stops_with_one_line(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    database = tmp_path / "never.db"
    result = run_cli(
        tmp_path, "database", "upgrade", "--no-prompt", DATABASE_URL=f"sqlite+aiosqlite:///{database}", **env
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not database.exists()


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    database = tmp_path / "from-dotenv.db"
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite+aiosqlite:///{database}\n")
    result = run_cli(tmp_path, "database", "upgrade", "--no-prompt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"users", "tasks", "auth_sessions"} <= sqlite_tables(database)
