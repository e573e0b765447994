"""The first minutes of a new user: ``todo-service run`` for real, in a new directory and on a new database.

SQLite (the default) is migrated at start; PostgreSQL behind the code refuses to start with one line
saying what to run, and starts once migrated; readiness fails while the schema is behind; the start
line says where the API and the docs are, and ``/`` leads there; without ``SECRET_KEY`` one warning,
and a key that every worker shares and that survives a restart.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import inspect, pool
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import PASSWORD, SameLoopClient, make_settings
from tests.otlp_receiver import otlp_http_receiver
from tests.processes import run_console, running_service, service_env
from tests.servers import free_port, fresh_postgres_database, migrate
from todo_service.app import create_app
from todo_service.db.database import VERSION_TABLE
from todo_service.observability.providers import shutdown_tracing
from todo_service.observability.traces import TRACE_ID_HEADER
from todo_service.system.schema import migrations

if TYPE_CHECKING:
    from tests.factories import Client
    from tests.processes import LiveService

KEY_WARNING = "SECRET_KEY is not set"
ROOT = Path(__file__).resolve().parents[2]
RELOAD_DEADLINE = 120


def head() -> str:
    [only] = migrations().heads
    return only


def sqlite_versions(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608  (a constant)
    connection.close()
    return [row[0] for row in rows]


def sqlite_tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    connection.close()
    return {row[0] for row in rows}


def log_lines(service: LiveService, text: str) -> list[str]:
    return [line for line in service.output().splitlines() if text in line]


def sign_up(base_url: str) -> str:
    """Register and log in through the running service; the access token."""
    email = f"first-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as api:
        registered = api.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"},
        )
        assert registered.status_code == 201, registered.text
        logged_in = api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert logged_in.status_code == 200, logged_in.text
    return str(logged_in.json()["access_token"])


def me_on_new_connections(base_url: str, token: str, times: int) -> list[int]:
    """``GET /users/me`` on a new connection each time: the kernel hands them to either worker."""
    statuses = []
    for _ in range(times):
        with httpx.Client(base_url=base_url, timeout=30) as api:
            statuses.append(api.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code)
    return statuses


# SQLite, the default: a new directory


def test_a_new_directory_is_migrated_at_start_and_served(tmp_path: Path) -> None:
    env = service_env(LOG_LEVEL="INFO")
    del env["SECRET_KEY"]  # as a new user starts it
    env.pop("DATABASE_URL", None)  # the default: todo.db in the working directory
    database = tmp_path / "todo.db"

    with running_service("--web-concurrency", "2", cwd=tmp_path, env=env) as service:
        assert sqlite_versions(database) == [head()]
        assert {"users", "tasks", "auth_sessions", "refresh_tokens"} <= sqlite_tables(database)
        token = sign_up(service.base_url)
        # Both workers sign and verify with the one development key.
        assert me_on_new_connections(service.base_url, token, 8) == [200] * 8
        ready = httpx.get(f"{service.base_url}/api/v1/health/ready", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok"}
        home = httpx.get(f"{service.base_url}/", timeout=10)
        assert (home.status_code, home.headers["location"]) == (307, "/api/docs")

        port = service.base_url.rsplit(":", 1)[1]
        [listening] = log_lines(service, "todo-service listening on")
        assert listening.endswith(
            f"todo-service listening on http://127.0.0.1:{port} - docs at http://127.0.0.1:{port}/api/docs"
        )
        [migrating] = log_lines(service, "migrating it now")
        assert re.search(rf"database todo\.db is never migrated, the code needs {head()}: migrating it now", migrating)
        assert len(log_lines(service, KEY_WARNING)) == 1  # one warning, for two workers
        assert f"made in {tmp_path / '.dev-secret-key'}" in log_lines(service, KEY_WARNING)[0]
        assert "Traceback" not in service.output()
        assert "ERROR" not in service.output()
    assert (tmp_path / ".dev-secret-key").stat().st_mode & 0o777 == 0o600

    # A restart: nothing to migrate, the same key, so the token of before still works.
    with running_service(cwd=tmp_path, env=env) as again:
        assert me_on_new_connections(again.base_url, token, 2) == [200, 200]
        assert log_lines(again, "migrating it now") == []
        [warning] = log_lines(again, KEY_WARNING)
        assert f"from {tmp_path / '.dev-secret-key'}" in warning
        assert "Traceback" not in again.output()


def test_production_without_a_secret_key_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    env = service_env(APP_ENV="production")
    del env["SECRET_KEY"]
    result = run_console("run", "--port", str(free_port()), cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["todo-service: invalid setting SECRET_KEY: required when APP_ENV=production"]
    assert list(tmp_path.iterdir()) == []  # no key file, no database


# PostgreSQL: behind the code, the server refuses; migrated, it starts


@pytest.fixture
async def fresh_postgres(postgres_admin_url: str) -> str:
    return await fresh_postgres_database(postgres_admin_url, f"first_start_{uuid.uuid4().hex[:10]}")


async def postgres_tables(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_postgres_never_migrated_refuses_to_start_with_one_line(fresh_postgres: str, tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        run_console, "run", "--port", str(free_port()), cwd=tmp_path, env=service_env(DATABASE_URL=fresh_postgres)
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        (
            f"todo-service: the database schema is never migrated, the code needs {head()}: "
            "run `todo-service database upgrade` (or `just migrate`), then start again"
        )
    ]
    assert await postgres_tables(fresh_postgres) == set()  # the refusal changed nothing

    await asyncio.to_thread(migrate, fresh_postgres)
    env = service_env(DATABASE_URL=fresh_postgres)
    with running_service(cwd=tmp_path, env=env) as service:
        ready = await asyncio.to_thread(httpx.get, f"{service.base_url}/api/v1/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        token = await asyncio.to_thread(sign_up, service.base_url)
        assert await asyncio.to_thread(me_on_new_connections, service.base_url, token, 1) == [200]


async def test_postgres_behind_by_one_migration_refuses_too(fresh_postgres: str, tmp_path: Path) -> None:
    await asyncio.to_thread(migrate, fresh_postgres)
    await asyncio.to_thread(migrate, fresh_postgres, "-1", down=True)
    result = await asyncio.to_thread(
        run_console, "run", "--port", str(free_port()), cwd=tmp_path, env=service_env(DATABASE_URL=fresh_postgres)
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert re.fullmatch(rf"todo-service: the database schema is at \w+, the code needs {head()}: run .*", line)


async def test_run_migrate_brings_postgres_up_to_date_and_serves(fresh_postgres: str, tmp_path: Path) -> None:
    env = service_env(DATABASE_URL=fresh_postgres, LOG_LEVEL="INFO")
    with running_service("--migrate", cwd=tmp_path, env=env) as service:
        ready = await asyncio.to_thread(httpx.get, f"{service.base_url}/api/v1/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        [line] = log_lines(service, "migrating it now")
        assert f"/{fresh_postgres.rsplit('/', 1)[1]} is never migrated, the code needs {head()}" in line
    assert {"users", "tasks", "auth_sessions", VERSION_TABLE} <= await postgres_tables(fresh_postgres)


# A database that does not answer at start


def unreachable_postgres(**settings: str) -> dict[str, str]:
    url = f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/x"  # nothing listens there
    return service_env(DATABASE_URL=url, DB_CONNECT_RETRY_SECONDS="0.05", DB_POOL_TIMEOUT="1", **settings)


def test_a_database_that_never_answers_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    env = unreachable_postgres(DB_CONNECT_ATTEMPTS="2")
    result = run_console("run", "--port", str(free_port()), cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("todo-service: the database did not answer after 2 attempts: ")
    assert [line for line in lines[:-1] if "database not reachable yet (attempt 1 of 2)" not in line] == []
    assert "Traceback" not in result.stderr


def test_without_the_start_up_wait_it_serves_and_readiness_reports_the_database(tmp_path: Path) -> None:
    """``DB_CONNECT_ATTEMPTS=0``: the schema cannot be checked at start; readiness says why it is not ready."""
    with running_service(cwd=tmp_path, env=unreachable_postgres(DB_CONNECT_ATTEMPTS="0")) as service:
        ready = httpx.get(f"{service.base_url}/api/v1/health/ready", timeout=10)
        assert ready.status_code == 503
        assert [error["field"] for error in ready.json()["errors"]] == ["database"]
        assert log_lines(service, "database not reachable: schema not checked")


# Readiness while the schema is behind (a server started another way, an older backup restored)


@pytest.fixture(params=["sqlite", "postgresql"])
async def behind_by_one(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated to the head, then down one migration."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    else:
        admin_url = request.getfixturevalue("postgres_admin_url")
        url = await fresh_postgres_database(admin_url, f"behind_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(migrate, url)
    await asyncio.to_thread(migrate, url, "-1", down=True)
    return url


async def test_readiness_fails_while_the_schema_is_behind(behind_by_one: str) -> None:
    app = create_app(make_settings(behind_by_one))
    async with SameLoopClient(app=app) as client:
        behind = await client.get("/api/v1/health/ready")
        assert behind.status_code == 503
        body = behind.json()
        assert body["error_code"] == "SERVICE_UNAVAILABLE"
        [error] = body["errors"]
        assert error["field"] == "database"
        assert body["detail"] == f"Not ready: database ({error['message']})"
        assert re.fullmatch(
            rf"the database schema is at \w+, the code needs {head()}: run `todo-service database upgrade`",
            error["message"],
        )
        assert (await client.get("/api/v1/health")).status_code == 200  # alive all the same

        await asyncio.to_thread(migrate, behind_by_one)
        for _ in range(2):  # the first answer reads the revision; later ones only SELECT 1
            ready = await client.get("/api/v1/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok"}


# `/`: to the docs


async def test_the_root_redirects_to_the_docs(client: Client) -> None:
    home = await client.get("/", follow_redirects=False)
    assert home.status_code == 307
    assert home.headers["location"] == "/api/docs"
    docs = await client.get(home.headers["location"])
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")


async def test_the_root_is_strict_and_answers_other_methods_like_every_route(client: Client) -> None:
    unknown = await client.get("/", params={"x": "1"}, follow_redirects=False)
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {"field": "x", "message": "is not a parameter of this route", "source": "query"}
    ]
    assert (await client.head("/")).status_code == (await client.head("/api/v1/health")).status_code
    posted = await client.post("/")
    assert posted.status_code == 405
    assert posted.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert posted.headers["allow"] == "GET, OPTIONS"


async def test_the_root_is_not_in_the_schema(client: Client) -> None:
    paths: dict[str, Any] = (await client.get("/api/docs/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert "/api/v1/health" in paths


async def test_without_docs_the_root_is_an_unknown_route(database_url: str) -> None:
    async with SameLoopClient(app=create_app(make_settings(database_url, docs_enabled=False))) as client:
        response = await client.get("/", follow_redirects=False)
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


async def test_the_root_is_not_traced(database_url: str) -> None:
    with otlp_http_receiver() as receiver:
        settings = make_settings(database_url, otel_exporter_otlp_endpoint=receiver.endpoint)
        try:
            async with SameLoopClient(app=create_app(settings)) as client:
                home = await client.get("/", follow_redirects=False)
                traced = await client.get("/api/v1/users/me")  # an ordinary route: traced (a 401)
        finally:
            shutdown_tracing(settings)
    assert home.status_code == 307
    assert TRACE_ID_HEADER not in home.headers
    assert traced.status_code == 401
    assert TRACE_ID_HEADER in traced.headers


# `just dev`: `run --reload` serves the code as it is edited


def test_run_reload_serves_the_edited_code(tmp_path: Path) -> None:
    """On a copy of the package (the test edits it): the worker restarts on the new code, a fresh interpreter."""
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "todo_service", source / "todo_service", ignore=ignore)
    shutil.copytree(ROOT / "migrations", source / "migrations", ignore=ignore)
    served = tmp_path / "served"
    served.mkdir()
    env = service_env(PYTHONPATH=str(source), LOG_LEVEL="INFO")

    with running_service("--reload", cwd=served, env=env) as service:
        assert httpx.get(f"{service.base_url}/", timeout=10).status_code == 307
        root = source / "todo_service" / "system" / "root.py"
        code = root.read_text()
        assert "ROOT_REDIRECT_STATUS: Final = 307" in code
        root.write_text(code.replace("ROOT_REDIRECT_STATUS: Final = 307", "ROOT_REDIRECT_STATUS: Final = 302"))

        deadline = time.monotonic() + RELOAD_DEADLINE
        status = None
        while time.monotonic() < deadline and status != 302:
            time.sleep(0.3)
            try:
                status = httpx.get(f"{service.base_url}/", timeout=5).status_code
            except httpx.TransportError:
                status = None  # between the old worker and the new one
        assert status == 302, service.output()
        assert log_lines(service, "Changes detected, reloading workers")
        assert f"Added: {root}" in service.output() or f"Modified: {root}" in service.output()
