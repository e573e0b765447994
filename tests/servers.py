"""Real servers for the tests: a throwaway PostgreSQL cluster (and, later, Redis), on loopback only.

``initdb`` refuses to run as root, so as root the cluster is made and started as the ``postgres``
user (``runuser``) in a temp dir that user can reach. Everything is bounded: starts wait at most
``STARTUP_TIMEOUT`` seconds and the cluster is stopped (``-m immediate``) when the tests end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

STARTUP_TIMEOUT = 30


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    msg = "PostgreSQL binaries not found: `apt-get install -y postgresql` (or set TEST_DATABASE_URL)"
    raise RuntimeError(msg)


def _as_postgres_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh cluster on a free loopback port; yield its ``postgresql+asyncpg://`` URL."""
    bindir = _postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="todo-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()

    def run(program: str, *args: str) -> None:
        command = _as_postgres_user([str(bindir / program), *args])
        subprocess.run(command, check=True, capture_output=True, timeout=STARTUP_TIMEOUT)  # noqa: S603

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", str(STARTUP_TIMEOUT), "start"
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(Exception):
            run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
