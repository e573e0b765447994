"""CPU cost of one request, in process: the app called straight through ASGI, no server, no network.

usage: python bench/inproc.py RUN_DIR [scenario ...] [--n N] [--profile OUT.prof]

Serves the app of ``create_app()`` (settings from the environment, as ``bench/profile.sh`` sets
them) on the benchmark run's seeded database and sends it ``N`` requests of each scenario, one
at a time, measuring the process's CPU time (not wall time: the database's share is not ours).
The figure moves far less than a load test's requests/s, so it shows what a change bought.
``login`` registers a user of its own first; give it a cheap ``ARGON2_*`` cost to see the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar.types import ASGIApp

SCENARIOS = ("list", "get", "create", "complete", "me", "login", "poll")


def _env(run: Path) -> dict[str, str]:
    values = {}
    for line in (run / "project" / "seed.env").read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


class Driver:
    """Sends requests to an ASGI app and checks their status."""

    def __init__(self, app: ASGIApp, seed: dict[str, str], ids: list[str]) -> None:
        self.app = app
        self.reader = [(b"authorization", f"Bearer {seed['TOKEN_R']}".encode()), (b"accept", b"application/json")]
        self.writer = [(b"authorization", f"Bearer {seed['TOKEN_W']}".encode()), (b"accept", b"application/json")]
        self.uid_r, self.uid_w = seed["UID_R"], seed["UID_W"]
        self.ids = itertools.cycle(ids)
        self.login_body = b""
        self.cursor = ""

    async def call(self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> int:
        """One request straight through ASGI; its status."""
        raw_path, _, query = path.partition("?")
        if body:
            headers = [*headers, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status

    async def scenario(self, name: str) -> int:  # noqa: PLR0911  (one return per scenario)
        """One request of the named scenario; its status."""
        if name == "list":
            return await self.call("GET", f"/api/v1/users/{self.uid_r}/tasks?page=1&limit=20", self.reader)
        if name == "get":
            return await self.call("GET", f"/api/v1/users/{self.uid_r}/tasks/{next(self.ids)}", self.reader)
        if name == "create":
            body = b'{"title":"Bench task","description":"created by inproc","priority":"high"}'
            return await self.call("POST", f"/api/v1/users/{self.uid_w}/tasks", self.writer, body)
        if name == "complete":
            path = f"/api/v1/users/{self.uid_r}/tasks/{next(self.ids)}/complete"
            return await self.call("PATCH", path, self.reader, b'{"completed":true}')
        if name == "poll":  # the change feed with an up-to-date cursor (read up to date on first use)
            return await self.call(
                "GET", f"/api/v1/users/{self.uid_r}/tasks/changes?cursor={await self._cursor()}", self.reader
            )
        if name == "login":  # a user of its own, made on first use (run with a cheap ARGON2_* cost)
            if not self.login_body:
                email = f"inproc-{os.getpid()}@example.com"
                self.login_body = f'{{"email":"{email}","password":"Inproc-Passw0rd-42"}}'.encode()
                body = self.login_body[:-1] + b',"first_name":"I","last_name":"P"}'
                await self.call("POST", "/api/v1/auth/register", [], body)
            return await self.call("POST", "/api/v1/auth/login", [], self.login_body)
        return await self.call("GET", "/api/v1/users/me", self.reader)

    async def _cursor(self) -> str:
        """The reader's up-to-date change-feed cursor, read through the feed once."""
        while not self.cursor:
            cursor = ""
            while True:
                body = await self._json(
                    f"/api/v1/users/{self.uid_r}/tasks/changes?limit=1000{'&cursor=' + cursor if cursor else ''}"
                )
                cursor = body["next_cursor"]
                if not body["has_more"]:
                    break
            self.cursor = cursor
        return self.cursor

    async def _json(self, path: str) -> Any:  # noqa: ANN401
        chunks: list[bytes] = []
        raw_path, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), *self.reader],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return json.loads(b"".join(chunks))


async def main() -> None:
    """Measure each scenario."""
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("scenarios", nargs="*", default=["list", "get", "create"])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    seed = _env(args.run)
    ids = [line for line in (args.run / "project" / "ids.txt").read_text().splitlines() if line]
    os.environ.setdefault("RATE_LIMIT_ENABLED", "false")
    from todo_service.app import create_app  # noqa: PLC0415  (after the environment is set)

    app = create_app()
    driver = Driver(app, seed, ids)
    async with app.lifespan():
        for name in args.scenarios:
            for _ in range(200):  # warm-up: caches, prepared statements, the pool
                status = await driver.scenario(name)
                assert status < 300, f"{name}: {status} (is RUN_DIR the latest seeded run?)"
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            if profiler:
                profiler.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.n):
                await driver.scenario(name)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profiler:
                profiler.disable()
                profiler.dump_stats(f"{args.profile}.{name}")
            print(f"{name:9} {1e6 * cpu / args.n:7.0f} µs CPU/request  ({1e6 * wall / args.n:5.0f} µs wall)")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
