"""Live events (SSE): memory per open stream, and the time from a write's commit to its event under load.

Starts one ``todo-service run`` worker (loopback, a free port) on the given PostgreSQL database
(migrated first), then:

1. opens STREAMS event streams (USERS users, STREAMS / USERS each) and reports the worker's RSS
   growth divided by STREAMS;
2. while LOADERS clients create tasks of other users and list tasks (load, and notifications to
   other streams), writes CHANGES tasks of one user, one at a time, and times each event on every
   one of that user's streams: from the write's response (the commit happened just before it) and
   from the request's start (an upper bound), p50 and p99.

    uv run --frozen python bench/sse.py postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

Every loop is bounded (counts and timeouts); the server is stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

STREAMS, USERS, CHANGES, LOADERS = 1000, 100, 500, 4
PASSWORD = "Correct-Horse-42"  # noqa: S105  (the bench's own throwaway accounts)
SCRIPT = Path(sys.executable).parent / "todo-service"


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(pid)


def worker_pid(main: int) -> int:
    """The pid of the one granian worker of the server ``main``."""
    children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    return int(children[0])


def env_for(url: str) -> dict[str, str]:
    """The server's environment: this one, with the bench's settings."""
    own = {"DATABASE_URL", "SECRET_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update({
        "DATABASE_URL": url, "SECRET_KEY": "bench-" + "k" * 40, "LOG_LEVEL": "WARNING", "RATE_LIMIT_ENABLED": "false",
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8", "ARGON2_PARALLELISM": "1",
        "EVENTS_MAX_STREAMS_PER_USER": str(STREAMS // USERS), "EVENTS_MAX_STREAMS": str(STREAMS + 10),
        "DB_POOL_SIZE": "20",
    })  # fmt: skip
    return env


async def register(http: httpx.AsyncClient, n: int) -> tuple[str, dict[str, str]]:
    """A new account: its tasks path and auth header."""
    body = {
        "email": f"sse-{n}-{uuid.uuid4().hex[:8]}@example.com",
        "password": PASSWORD,
        "first_name": "S",
        "last_name": "E",
    }
    answer = (await http.post("/api/v1/auth/register", json=body)).raise_for_status().json()
    return f"/api/v1/users/{answer['user']['id']}/tasks", {"Authorization": f"Bearer {answer['access_token']}"}


async def listen(
    http: httpx.AsyncClient,
    path: str,
    auth: dict[str, str],
    opened: asyncio.Event,
    arrivals: dict[str, list[float]] | None,
) -> None:
    """One stream: note when each event of a task titled ``change <n>`` arrives (if ``arrivals``)."""
    async with http.stream("GET", f"{path}/events", headers=auth) as answer:
        answer.raise_for_status()
        opened.set()
        async for line in answer.aiter_lines():
            if arrivals is not None and line.startswith("data: ") and '"title":"change ' in line:
                title = line.split('"title":"', 1)[1].split('"', 1)[0]
                arrivals.setdefault(title, []).append(time.perf_counter())


async def load(http: httpx.AsyncClient, users: list[tuple[str, dict[str, str]]], stop: asyncio.Event) -> int:
    """Writes and reads of other users until ``stop`` (bounded: at most 100,000 requests)."""
    done = 0
    while not stop.is_set() and done < 100_000:
        path, auth = users[done % len(users)]
        await http.post(path, json={"title": "load"}, headers=auth)
        await http.get(path, headers=auth)
        done += 2
    return done


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` fall."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(base_url: str, pid: int) -> dict[str, Any]:
    """Open the streams, then time the events under load."""
    limits = httpx.Limits(max_connections=STREAMS + 100, max_keepalive_connections=STREAMS + 100)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=None), limits=limits) as http:
        users = [await register(http, n) for n in range(USERS)]
        await asyncio.sleep(1)
        before = rss_kib(pid)
        arrivals: dict[str, list[float]] = {}
        per_user = STREAMS // USERS
        events = [asyncio.Event() for _ in range(STREAMS)]
        tasks = [
            asyncio.create_task(listen(http, *users[i // per_user], events[i], arrivals if i < per_user else None))
            for i in range(STREAMS)
        ]
        async with asyncio.timeout(120):
            await asyncio.gather(*(event.wait() for event in events))
        await asyncio.sleep(2)
        after = rss_kib(pid)
        stop = asyncio.Event()
        loaders = [asyncio.create_task(load(http, users[1:], stop)) for _ in range(LOADERS)]
        path, auth = users[0]
        sent: dict[str, tuple[float, float]] = {}
        for n in range(CHANGES):
            started = time.perf_counter()
            (await http.post(path, json={"title": f"change {n}"}, headers=auth)).raise_for_status()
            sent[f"change {n}"] = (started, time.perf_counter())
            await asyncio.sleep(0.01)
        for _ in range(300):  # at most 30 s for the last events
            if sum(len(v) for v in arrivals.values()) >= CHANGES * per_user:
                break
            await asyncio.sleep(0.1)
        stop.set()
        load_requests = sum(await asyncio.gather(*loaders))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    from_response = [(t - sent[k][1]) * 1000 for k, ts in arrivals.items() for t in ts]
    from_request = [(t - sent[k][0]) * 1000 for k, ts in arrivals.items() for t in ts]
    writes = [(done - started) * 1000 for started, done in sent.values()]
    return {
        "rss_before_mib": before / 1024, "rss_after_mib": after / 1024, "kib_per_stream": (after - before) / STREAMS,
        "samples": len(from_response), "load_requests": load_requests,
        "from_response_p50": percentile(from_response, 0.5), "from_response_p99": percentile(from_response, 0.99),
        "write_p50": percentile(writes, 0.5), "write_p99": percentile(writes, 0.99),
        "from_request_p50": percentile(from_request, 0.5), "from_request_p99": percentile(from_request, 0.99),
    }  # fmt: skip


def main(url: str) -> None:
    """Migrate, start the server, measure, stop it, print the figures."""
    env = env_for(url)
    with tempfile.TemporaryDirectory() as workdir:
        subprocess.run(  # noqa: S603  (our own console script)
            [str(SCRIPT), "database", "upgrade", "--no-prompt"],
            cwd=workdir,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = free_port()
        server = subprocess.Popen(  # noqa: S603  (our own console script)
            [str(SCRIPT), "run", "--host", "127.0.0.1", "--port", str(port), "--web-concurrency", "1"],
            cwd=workdir, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            base_url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                        break
                time.sleep(0.2)
            figures = asyncio.run(measure(base_url, worker_pid(server.pid)))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    rss = f"RSS {figures['rss_before_mib']:.1f} -> {figures['rss_after_mib']:.1f} MiB"
    print(f"{STREAMS} streams on one worker: {rss}, {figures['kib_per_stream']:.1f} KiB per stream")
    print(f"{CHANGES} changes x {STREAMS // USERS} streams ({figures['samples']} events) under load "
          f"({LOADERS} clients, {figures['load_requests']} requests):")  # fmt: skip
    for label, key in (
        ("commit (write's response) -> event", "from_response"),
        ("the write (request -> response)", "write"),
        ("write's request -> event", "from_request"),
    ):
        print(f"  {label}: p50 {figures[key + '_p50']:.1f} ms, p99 {figures[key + '_p99']:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/sse.py <postgresql url>")
    main(sys.argv[1])
