"""Webhook delivery figures: deliveries/s to a local receiver, and time from commit to first delivery.

Runs one ``todo-service run`` (default settings but loopback targets allowed) on the given database
(migrated first), a receiver on 127.0.0.1 that answers 200 at once, then:

- latency: tasks created one at a time, 20 ms apart; for each, the time from the create's answer
  (its commit) to the receiver getting its event; p50 and p99;
- throughput: 1,000 events committed at once (10 batches of 100 creates), then the time until the
  receiver has all of them: deliveries/s of one process.

    uv run --frozen python bench/webhooks.py                       # a temporary SQLite file
    uv run --frozen python bench/webhooks.py postgresql+asyncpg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

SCRIPT = Path(sys.executable).parent / "todo-service"
LATENCY_EVENTS, BATCHES, BATCH = 200, 10, 100
received: dict[str, float] = {}
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    """Answers 200 at once; notes when each task's event arrived."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        """Quiet."""
        return

    def do_POST(self) -> None:
        """Note the event's arrival; answer 200."""
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with lock:
            received.setdefault(body["data"]["task"]["id"], time.monotonic())


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(count: int, seconds: float) -> None:
    """Until ``count`` events arrived (the receiver is a thread: polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(received) >= count:
            return
        await asyncio.sleep(0.005)


async def measure(base: str, receiver_url: str) -> None:
    """Latency, then throughput, against the running service."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        body = {"email": "bench@example.com", "password": "Correct-Horse-42", "first_name": "B", "last_name": "W"}
        user = (await http.post("/api/v1/auth/register", json=body)).json()
        auth = {"Authorization": f"Bearer {user['access_token']}"}
        owner = f"/api/v1/users/{user['user']['id']}"
        hook = await http.post(
            f"{owner}/webhooks", json={"url": receiver_url, "events": ["task.upserted"]}, headers=auth
        )
        assert hook.status_code == 201, hook.text
        committed: dict[str, float] = {}
        for n in range(LATENCY_EVENTS):
            task = (await http.post(f"{owner}/tasks", json={"title": f"latency {n}"}, headers=auth)).json()
            committed[task["id"]] = time.monotonic()
            await asyncio.sleep(0.02)
        await wait_for(LATENCY_EVENTS, 60)
        delays = sorted((received[task_id] - at) * 1000 for task_id, at in committed.items())
        quantiles = statistics.quantiles(delays, n=100)
        print(f"commit to first delivery: p50 {statistics.median(delays):.1f} ms, p99 {quantiles[98]:.1f} ms")
        ops = [{"op": "create", "title": f"burst {n}"} for n in range(BATCH)]
        started = time.monotonic()
        for _ in range(BATCHES):
            answer = await http.post(f"{owner}/tasks/batch", json={"operations": ops}, headers=auth)
            assert answer.status_code == 200, answer.text
        committed_at = time.monotonic()
        await wait_for(LATENCY_EVENTS + BATCHES * BATCH, 300)
        done = max(received.values())
        print(
            f"throughput: {BATCHES * BATCH} events committed in {committed_at - started:.2f} s, all delivered "
            f"{done - started:.2f} s after the first commit: {BATCHES * BATCH / (done - started):.0f} deliveries/s"
        )


def main() -> None:
    """Migrate, start the service and the receiver, measure, stop."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite+aiosqlite:///{workdir}/bench.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "WEBHOOK_", "LITESTAR_"))}
    env.update(
        DATABASE_URL=url,
        SECRET_KEY="bench-secret-key-0123456789abcdef0123456789",  # noqa: S106  (a throwaway database)
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
    )
    subprocess.run([str(SCRIPT), "database", "upgrade", "--no-prompt"], cwd=workdir, env=env, check=True)  # noqa: S603
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    service = subprocess.Popen(  # noqa: S603
        [str(SCRIPT), "run", "--host", "127.0.0.1", "--port", str(port)], cwd=workdir, env=env, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(measure(base, f"http://127.0.0.1:{server.server_address[1]}/hook"))
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=30)
        server.shutdown()


if __name__ == "__main__":
    main()
