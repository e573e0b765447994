"""Real servers for the tests: a throwaway PostgreSQL cluster and Redis, on loopback only.

``initdb`` refuses to run as root, so as root the cluster is made and started as the ``postgres``
user (``runuser``) in a temp dir that user can reach. Everything is bounded: starts wait at most
``STARTUP_TIMEOUT`` seconds and the cluster is stopped (``-m immediate``) when the tests end.
``redis-server`` runs in the foreground as a child process, keeps nothing on disk, and is killed at
the end; a test may stop it and start it again on the same port (an outage).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from advanced_alchemy.alembic.commands import AlembicCommands
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import make_settings
from todo_service.db.database import database_config

if TYPE_CHECKING:
    import socketserver
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


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port; it can be stopped and started again."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="todo-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        """The ``postgresql+asyncpg://`` URL of its ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait (at most ``STARTUP_TIMEOUT`` seconds) until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", str(STARTUP_TIMEOUT), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: connections are cut, as in a crash or a failover)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs, and delete its files."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = _as_postgres_user([str(self.bindir / program), *args])
        subprocess.run(command, check=True, capture_output=True, timeout=STARTUP_TIMEOUT)  # noqa: S603


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh, started cluster for the block; removed after it."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


class RedisServer:
    """A ``redis-server`` child process on a fixed loopback port; it can be stopped and started again."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (at most ``STARTUP_TIMEOUT`` seconds) until it answers PING."""
        command = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--daemonize", "no", "--dir", str(self.workdir)),
        ]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{output}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and wait for it to exit."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start ``redis-server`` on a free loopback port, with nothing saved to disk; kill it at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        msg = "redis-server not found: `apt-get install -y redis-server` (`just test` installs it)"
        raise RuntimeError(msg)
    workdir = Path(tempfile.mkdtemp(prefix="todo-redis-"))
    server = RedisServer(binary, free_port(), workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def migrate(database_url: str, revision: str = "head", *, down: bool = False) -> None:
    """Run the project's migrations (Alembic runs its own event loop: call from a thread)."""
    commands = AlembicCommands(sqlalchemy_config=database_config(make_settings(database_url)))
    if down:
        commands.downgrade(revision)
    else:
        commands.upgrade(revision)


async def fresh_postgres_database(admin_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``admin_url``; return its URL."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def serving_in_a_thread(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve ``server`` from a daemon thread until the block ends, then shut it down and close it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
