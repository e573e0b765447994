"""Schemathesis against the service's own OpenAPI schema, served by a real ``todo-service run``.

The server runs on PostgreSQL (production's database), as an admin caller so the admin routes are
reached too. Schemathesis generates valid and invalid requests for every operation and checks:
no 5xx, every status code documented, every body matching its documented schema and content type.
The seed is fixed so CI is repeatable; ``just fuzz`` runs longer with a random seed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import PASSWORD
from tests.processes import LiveService, run_console, running_service, service_env
from tests.servers import fresh_postgres_database, migrate

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,"
    "content_type_conformance,response_headers_conformance"
)
MAX_TIME = int(os.environ.get("FUZZ_MAX_TIME", "60"))
SEED = os.environ.get("FUZZ_SEED", "20261124")
ADMIN_EMAIL = "fuzz-admin@example.com"


@pytest.fixture(scope="module")
def live_service(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The service on a fresh PostgreSQL database, with rate limits off (they would only add 429s)."""
    url = asyncio.run(fresh_postgres_database(postgres_admin_url, "todo_fuzz"))
    migrate(url)
    cwd = tmp_path_factory.mktemp("fuzz")
    env = service_env(DATABASE_URL=url, RATE_LIMIT_ENABLED="false", LOCKOUT_THRESHOLD="1000000")
    created = run_console("users", "create-admin", "--email", ADMIN_EMAIL, "--password", PASSWORD, cwd=cwd, env=env)
    assert created.returncode == 0, created.stderr
    with running_service(cwd=cwd, env=env) as service:
        yield service


def test_the_api_honours_its_own_schema(live_service: LiveService, tmp_path: Path) -> None:
    login = httpx.post(
        f"{live_service.base_url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    token, user_id = login.json()["access_token"], login.json()["user"]["id"]
    config = tmp_path / "schemathesis.toml"
    # Path user ids are the caller's own, so the task routes get past 403 to their real work.
    config.write_text(
        f'headers = {{ Authorization = "Bearer {token}" }}\n\n[parameters]\n"path.user_id" = "{user_id}"\n'
    )
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{live_service.base_url}/api/docs/openapi.json",
        "--checks",
        CHECKS,
        # Logging out would revoke the token every other operation runs with.
        "--exclude-path",
        "/api/v1/auth/logout",
        "--max-time",
        str(MAX_TIME),
        "--max-examples",
        "40",
        "--seed",
        SEED,
        "--no-color",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    result = subprocess.run(  # noqa: S603  (a fixed command line)
        command, cwd=tmp_path, capture_output=True, text=True, timeout=MAX_TIME + 240, check=False
    )
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
    assert "Tested:" in result.stdout
    assert "Traceback" not in live_service.output()
