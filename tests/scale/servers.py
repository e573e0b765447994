"""PgBouncer and nginx from Debian, run by the tests on free loopback ports, in the foreground.

Both are child processes of the test run, with their files in a temp dir, stopped (then killed if
they linger) and removed at the end of their block. Every wait is bounded by ``STARTUP_TIMEOUT``.
PgBouncer refuses to run as root, so as root it runs as the ``postgres`` user (``runuser``), like
the throwaway clusters of ``tests/servers.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import make_url

from tests.servers import STARTUP_TIMEOUT, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ("Nginx", "PgBouncer", "nginx", "pgbouncer")


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or next((str(p) for p in Path("/usr/sbin").glob(name)), None)
    if found is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):  # `just test` would have installed it: a real failure
            msg = f"{name} not found: `apt-get install -y {package}` (`just test` installs it)"
            raise RuntimeError(msg)
        pytest.skip(f"{name} is not installed and cannot be here (not root, or no apt-get): apt-get install {package}")
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            msg = f"{what} did not listen on port {port}:\n{output}"
            raise RuntimeError(msg)
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class PgBouncer:
    """PgBouncer in front of one PostgreSQL server, every database passed through."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, root: Path) -> None:
        self.process = process
        self.port = port
        self.root = root

    def url(self, database_url: str) -> str:
        """``database_url`` (a database of the server behind) reached through this PgBouncer."""
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def log(self) -> str:
        """What PgBouncer logged so far."""
        return (self.root / "pgbouncer.log").read_text(errors="replace")


@contextlib.contextmanager
def pgbouncer(server_url: str, *, pool_mode: str = "transaction", pool_size: int = 3) -> Iterator[PgBouncer]:
    """PgBouncer 1.18 (Debian's) on a free loopback port, before the server of ``server_url``.

    ``pool_size`` server connections per database and user, whatever the number of clients: a small
    number makes clients share server connections, which is what breaks prepared statements.
    """
    binary = _binary("pgbouncer", "pgbouncer")
    target = make_url(server_url)
    root = Path(tempfile.mkdtemp(prefix="todo-pgbouncer-"))
    port = free_port()
    (root / "users.txt").write_text(f'"{target.username}" ""\n')
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={target.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {root / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
        "max_client_conn = 1000\nmax_db_connections = 0\n"
        f"logfile = {root / 'pgbouncer.log'}\npidfile = {root / 'pgbouncer.pid'}\n"
        "log_connections = 0\nlog_disconnections = 0\n"
    )
    command = [binary, str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer will not run as root
        shutil.chown(root, "postgres")
        for child in root.iterdir():
            shutil.chown(child, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        _wait_for_port(port, process, root / "pgbouncer.log", "pgbouncer")
        yield PgBouncer(process, port, root)
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


class Nginx:
    """nginx balancing over upstream servers; its access log names the upstream of every request."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, root: Path) -> None:
        self.process = process
        self.port = port
        self.root = root

    @property
    def base_url(self) -> str:
        """Where clients reach it."""
        return f"http://127.0.0.1:{self.port}"

    def upstreams(self) -> list[str]:
        """The upstream address of each request logged so far (``-`` for one answered by nginx itself)."""
        log = self.root / "access.log"
        return log.read_text().split() if log.exists() else []


@contextlib.contextmanager
def nginx(upstreams: Sequence[str]) -> Iterator[Nginx]:
    """nginx on a free loopback port, round robin over ``upstreams`` (``host:port``), as a reverse proxy.

    Streaming answers (SSE) pass unbuffered; a failed upstream is retried on the next one only for
    requests nginx may repeat (not a POST that may have been received: that is the client's retry,
    with its Idempotency-Key); X-Forwarded-For carries the client's address.
    """
    binary = _binary("nginx", "nginx")
    root = Path(tempfile.mkdtemp(prefix="todo-nginx-"))
    port = free_port()
    servers = "".join(f"        server {upstream} max_fails=1 fail_timeout=2s;\n" for upstream in upstreams)
    (root / "nginx.conf").write_text(
        "worker_processes 1;\n"
        f"pid {root / 'nginx.pid'};\n"
        f"error_log {root / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    log_format upstream '$upstream_addr';\n"
        f"    access_log {root / 'access.log'} upstream;\n"
        f"    client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;\n"
        f"    fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;\n"
        "    upstream replicas {\n"
        f"{servers}"
        "        keepalive 32;\n"
        "    }\n"
        "    server {\n"
        f"        listen 127.0.0.1:{port};\n"
        "        location / {\n"
        "            proxy_pass http://replicas;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_buffering off;\n"
        "            proxy_read_timeout 60s;\n"
        "            proxy_connect_timeout 2s;\n"
        "            proxy_next_upstream error timeout;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )
    command = [binary, "-c", str(root / "nginx.conf"), "-p", str(root), "-e", str(root / "error.log")]
    process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        _wait_for_port(port, process, root / "error.log", "nginx")
        yield Nginx(process, port, root)
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)
