"""The image, for real: build the Containerfile with podman and run it against PostgreSQL.

No registry is reachable here, so the build uses local base images made by
``scripts/image-base.sh`` (a debootstrapped Debian bookworm with python3, and this machine's uv)
through the Containerfile's ``BASE_IMAGE`` and ``UV_IMAGE`` build arguments;
``IMAGE_TEST_BASE=official`` builds from the official images instead, where a registry answers.

The image then runs as a deployment runs it: the migration as a one-shot container, then the
service, both with ``--read-only`` (only a tmpfs at ``/tmp/prometheus`` is writable) and host
networking, against a fresh database of the test PostgreSQL server on the loopback. The checks:
health and readiness answer 200, the image's own HEALTHCHECK passes, a register-create-list round
trip works, the process runs as uid 10001, the root filesystem refuses writes, and SIGTERM stops a
container that served requests with exit code 0 and the app's shutdown line, within the grace
period. The figures (build time, image size, start and stop times) are printed (``-s`` shows them).

Runs only when podman can run a container here (see ``tests/image/podman.py``); otherwise it is
skipped, unless ``IMAGE_TEST=required`` (``just image-test``) makes that a failure. A first run
makes the base images (about a minute); every wait is bounded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from tests.image.podman import (
    BASE_IMAGE,
    Build,
    Podman,
    PodmanUnavailableError,
    build_image,
    find_podman,
    image_lock,
    make_base_images,
    require_tools,
    run_tag,
    uv_image,
)
from tests.servers import free_port, fresh_postgres_database

if TYPE_CHECKING:
    from collections.abc import Iterator

REQUIRED = os.environ.get("IMAGE_TEST") == "required"
OFFICIAL = os.environ.get("IMAGE_TEST_BASE") == "official"
OFFICIAL_BASE = "docker.io/library/python:3.11-slim-bookworm"
START_WITHIN = 60.0
GRACE_PERIOD = 30
MAX_IMAGE_MB = 450
APP_UID = "10001"
PASSWORD = "Correct-Horse-42"
TOOLS = ("podman",) if OFFICIAL else ("podman", "debootstrap")

# Cheap check first, before any fixture starts a server; whether podman runs containers is the
# `podman` fixture's to find out. `IMAGE_TEST=required` turns both into failures.
pytestmark = pytest.mark.skipif(
    not REQUIRED and not all(shutil.which(tool) for tool in TOOLS),
    reason=f"needs {' and '.join(TOOLS)} (`just image-test` installs them)",
)


def note(line: str) -> None:
    """A figure or a check's result, on the test's output (``pytest -s``)."""
    print(f"image-test: {line}", flush=True)  # noqa: T201


@pytest.fixture(scope="module")
def podman() -> Podman:
    """Podman, with the options that run containers here; the local base images made if missing."""
    try:
        require_tools(debootstrap=not OFFICIAL)
        with image_lock():
            if not OFFICIAL:
                for line in make_base_images().splitlines():
                    note(line)
            found = find_podman(OFFICIAL_BASE if OFFICIAL else BASE_IMAGE)
    except PodmanUnavailableError as error:
        if REQUIRED:
            pytest.fail(str(error))
        pytest.skip(str(error))
    note(f"podman runs containers with: {found.how} {' '.join(found.global_options + found.run_options)}".rstrip())
    return found


@pytest.fixture(scope="module")
def image(podman: Podman) -> Iterator[Build]:
    """The Containerfile built (from the local base images unless ``IMAGE_TEST_BASE=official``)."""
    local = ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"UV_IMAGE={uv_image()}"]
    build_args = [] if OFFICIAL else local
    with image_lock():
        build = build_image(podman, build_args)
    note(f"build: {build.seconds:.0f} s ({' '.join(build_args) or 'official base images'})")
    yield build
    podman.run("untag", build.image_id, run_tag(), check=False)


@pytest.fixture(scope="module")
async def image_database(postgres_admin_url: str) -> str:
    """A fresh, empty database on the test PostgreSQL server."""
    return await fresh_postgres_database(postgres_admin_url, f"todo_image_{os.getpid()}")


@dataclass
class Service:
    """A running container of the image."""

    podman: Podman
    name: str
    url: str
    started_in: float

    def exec(self, *command: str) -> tuple[int, str]:
        """Run ``command`` in the container; its exit code and its output (stdout and stderr)."""
        done = self.podman.run("exec", self.name, *command, check=False)
        return done.returncode, (done.stdout + done.stderr).strip()

    def inspect(self, template: str) -> str:
        """``podman inspect --format template`` of the container."""
        return self.podman.run("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        """Everything the container wrote."""
        done = self.podman.run("logs", self.name)
        return done.stdout + done.stderr


def request(url: str, method: str = "GET", body: object = None, token: str | None = None) -> tuple[int, Any]:
    """One HTTP request (5 s timeout): the status and the decoded JSON body (None when empty)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def container_options(database_url: str, port: int) -> list[str]:
    """How a deployment runs the image: read-only root, one tmpfs, production settings from the env."""
    return [
        "--network", "host",
        "--read-only", "--read-only-tmpfs=false",
        # U: podman makes the tmpfs the image user's (docker: uid=10001,gid=10001; Kubernetes: fsGroup).
        "--tmpfs", "/tmp/prometheus:rw,nosuid,nodev,noexec,size=64m,U",  # noqa: S108
        "--env", f"DATABASE_URL={database_url}",
        "--env", f"SECRET_KEY={secrets.token_hex(32)}",
        # Host networking: listen on the loopback only, on a free port.
        "--env", "LITESTAR_HOST=127.0.0.1",
        "--env", f"LITESTAR_PORT={port}",
    ]  # fmt: skip


def start_service(podman: Podman, image: Build, database_url: str, name: str) -> Service:
    """Start a container of the image and wait (at most ``START_WITHIN`` s) until /health answers 200."""
    port = free_port()
    podman.run("run", *podman.run_options, "--detach", "--name", name, "--stop-timeout", str(GRACE_PERIOD),
               *container_options(database_url, port), image.image_id)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while True:
        try:
            if request(f"{url}/api/v1/health")[0] == 200:
                return Service(podman, name, url, time.monotonic() - started)
        except OSError:
            pass
        state = podman.run("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running" or time.monotonic() - started > START_WITHIN:
            logs = podman.run("logs", name, check=False)
            msg = f"no 200 from /health within {START_WITHIN} s (container {state}):\n{logs.stderr[-4000:]}"
            raise AssertionError(msg)
        time.sleep(0.25)


@pytest.fixture(scope="module")
def migrated(podman: Podman, image: Build, image_database: str) -> str:
    """The database, migrated by the image's own one-shot command (read-only root too)."""
    started = time.monotonic()
    done = podman.run(
        "run", *podman.run_options, "--rm", *container_options(image_database, free_port()),
        image.image_id, "todo-service", "database", "upgrade", "--no-prompt",
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    note(f"migrate (one-shot container, read-only root): exit 0 in {time.monotonic() - started:.1f} s")
    return image_database


@pytest.fixture(scope="module")
def service(podman: Podman, image: Build, migrated: str) -> Iterator[Service]:
    """The service running from the image, removed at the end."""
    name = f"todo-image-test-{os.getpid()}"
    try:
        running = start_service(podman, image, migrated, name)
        note(f"start: /api/v1/health answered 200 {running.started_in:.1f} s after `podman run`")
        yield running
    finally:
        podman.run("rm", "--force", "--time", "0", name, check=False)


def test_image_size(podman: Podman, image: Build) -> None:
    """The image stays small: a slim base and the virtualenv, no compiler, uv or sources."""
    size = int(podman.run("image", "inspect", "--format", "{{.Size}}", image.image_id).stdout)
    base = 0 if OFFICIAL else int(podman.run("image", "inspect", "--format", "{{.Size}}", BASE_IMAGE).stdout)
    note(f"image size: {size / 1e6:.0f} MB" + (f" (base image {base / 1e6:.0f} MB)" if base else ""))
    assert size < MAX_IMAGE_MB * 1e6
    found = podman.run("run", *podman.run_options, "--rm", "--network", "host", image.image_id,
                       "sh", "-c", "command -v uv || command -v gcc || ls -d /src", check=False)  # fmt: skip
    assert found.returncode != 0, f"the runtime image holds build tools or sources: {found.stdout}"


def test_health_and_readiness(service: Service) -> None:
    """Liveness and readiness answer 200; readiness checked the database."""
    status, body = request(f"{service.url}/api/v1/health")
    assert (status, body) == (200, {"status": "ok"})
    status, body = request(f"{service.url}/api/v1/health/ready")
    assert status == 200, body
    assert body["status"] == "ready"
    assert "database" in body["checks"]
    note(f"GET /api/v1/health -> {status} ; GET /api/v1/health/ready -> {status} {json.dumps(body)}")


def test_image_healthcheck_passes(service: Service) -> None:
    """The image's HEALTHCHECK (docker format keeps it) runs and passes, on the port the env sets."""
    assert "api/v1/health" in service.inspect("{{json .Config.Healthcheck}}")
    done = service.podman.run("healthcheck", "run", service.name, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    note("podman healthcheck run -> healthy (exit 0)")


def test_api_round_trip(service: Service) -> None:
    """Register, create a task, list it: the migrated schema, argon2 and the pool work in the image."""
    email = f"image{secrets.token_hex(4)}@example.com"
    body = {"email": email, "password": PASSWORD, "first_name": "Image", "last_name": "Test"}
    status, account = request(f"{service.url}/api/v1/auth/register", "POST", body)
    assert status == 201, account
    user_id, token = account["user"]["id"], account["access_token"]
    tasks = f"{service.url}/api/v1/users/{user_id}/tasks"
    status, task = request(tasks, "POST", {"title": "ship the image"}, token)
    assert status == 201, task
    status, page = request(tasks, token=token)
    assert status == 200, page
    assert [item["title"] for item in page["items"]] == ["ship the image"]
    note("register 201, create task 201, list 200 with the task")


def test_runs_as_non_root(service: Service) -> None:
    """The image's user is 10001, and so are the server's processes."""
    assert service.inspect("{{.Config.User}}") == f"{APP_UID}:{APP_UID}"
    assert service.exec("id", "-u") == (0, APP_UID)
    code, status = service.exec("cat", "/proc/1/status")
    assert code == 0
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert uids == [APP_UID] * 4
    note(f"user {service.inspect('{{.Config.User}}')}; `id -u` in the container -> {APP_UID}; PID 1 uids {uids}")


def test_root_filesystem_is_read_only(service: Service) -> None:
    """Writes fail everywhere but the tmpfs, where the workers keep their metrics files."""
    assert service.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    for path in ("/app/probe", "/tmp/probe", "/opt/venv/probe"):  # noqa: S108
        code, output = service.exec("touch", path)
        assert code != 0
        assert "Read-only file system" in output
    code, files = service.exec("ls", "/tmp/prometheus")  # noqa: S108
    assert code == 0
    assert files.split(), "the workers wrote no metrics files in the tmpfs"
    status, _ = request(f"{service.url}/api/v1/health")
    assert status == 200
    note(f"touch /app, /tmp, /opt/venv -> Read-only file system; the tmpfs holds {len(files.split())} metrics files")


def test_sigterm_stops_cleanly(podman: Podman, image: Build, migrated: str) -> None:
    """SIGTERM to a container that served requests: exit 0, the app's shutdown line, within the grace period."""
    name = f"todo-image-test-stop-{os.getpid()}"
    try:
        running = start_service(podman, image, migrated, name)
        for _ in range(5):
            assert request(f"{running.url}/api/v1/health/ready")[0] == 200
        started = time.monotonic()
        podman.run("kill", "--signal", "TERM", name)
        exit_code = podman.run("wait", name, timeout=GRACE_PERIOD + 10).stdout.strip()
        stopped_in = time.monotonic() - started
        logs = running.logs()
        assert exit_code == "0", logs[-4000:]
        assert stopped_in < GRACE_PERIOD
        records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        messages = [record.get("message", "") for record in records]
        assert messages.count("Application shutdown complete.") == 2, messages[-20:]  # one per worker
        assert [record for record in records if record.get("level") in {"ERROR", "CRITICAL"}] == []
        assert "Traceback" not in logs
        note(f"SIGTERM -> exit code {exit_code} in {stopped_in:.1f} s (grace {GRACE_PERIOD} s); "
             f"'Application shutdown complete.' x{messages.count('Application shutdown complete.')}")  # fmt: skip
    finally:
        podman.run("rm", "--force", "--time", "0", name, check=False)
