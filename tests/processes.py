"""The service as its operators run it: the ``todo-service`` console script, as a subprocess.

Every call is bounded by a timeout, every server binds 127.0.0.1 and is stopped by the context
manager that started it. The environment holds only the settings a test gives (plus the test
defaults below): nothing leaks in from the developer's shell or a ``.env`` file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.factories import TEST_SECRET
from tests.servers import free_port
from todo_service.core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

SCRIPT = Path(sys.executable).parent / "todo-service"
TIMEOUT = 120
STARTUP_TIMEOUT = 60
FAST_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8", "ARGON2_PARALLELISM": "1"}


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment without any service setting, then the test defaults and ``settings``."""
    own = {name.upper() for name in Settings.__struct_fields__} | {"TODO_ADMIN_PASSWORD"}
    env = {k: v for k, v in os.environ.items() if k not in own and not k.startswith("LITESTAR_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "SECRET_KEY": TEST_SECRET, "LOG_LEVEL": "WARNING"})
    env.update(FAST_ARGON2)
    env.update(settings)
    return env


def run_console(
    *args: str, cwd: Path, env: Mapping[str, str], stdin: str | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``todo-service <args>`` to completion."""
    return subprocess.run(  # noqa: S603  (our own console script)
        [str(SCRIPT), *args],
        cwd=cwd,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class LiveService:
    """A running ``todo-service run``."""

    process: subprocess.Popen[str]
    base_url: str
    log: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_service(*args: str, cwd: Path, env: Mapping[str, str]) -> Iterator[LiveService]:
    """``todo-service run <args>`` on a free loopback port, healthy before the block, stopped after it."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    with log.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603  (our own console script)
            [str(SCRIPT), "run", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=cwd,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its workers form one process group, stopped together
        )
    service = LiveService(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        _wait_until_healthy(service)
        yield service
    finally:
        stop(service)


def stop(service: LiveService, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
    """Send ``sig`` to the server (and its workers); wait for it; kill it if it does not go."""
    if service.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.process.pid, sig)
        try:
            service.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait(timeout=10)
    return service.process.returncode


def _wait_until_healthy(service: LiveService) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            msg = f"the server exited with {service.process.returncode}:\n{service.output()}"
            raise RuntimeError(msg)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{service.base_url}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    msg = f"the server was not healthy within {STARTUP_TIMEOUT}s:\n{service.output()}"
    raise RuntimeError(msg)


def modules_loaded_by(program: str, package: str) -> list[str]:
    """The modules of ``package`` that ``program`` (Python source) has loaded when it ends, in a fresh interpreter.

    What a worker holds in memory is what it imports: this tells what a configuration imports.
    """
    listing = (
        "\nimport json, sys\n"
        f"print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] == {package!r})))\n"
    )
    root = Path(__file__).resolve().parents[1]  # where `tests` and `todo_service` import from
    found = subprocess.run(  # noqa: S603
        [sys.executable, "-c", program + listing], capture_output=True, text=True, check=True, timeout=TIMEOUT, cwd=root
    )
    return list(json.loads(found.stdout.strip().splitlines()[-1]))
