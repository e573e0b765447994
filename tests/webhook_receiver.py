"""A real webhook receiver for the tests: an HTTP server on a loopback port, in a thread.

It records every request (headers, body, when) and answers as the test tells it: a status per
request in turn (then 200), a redirect, an oversized body, or a pause. It also counts, per
``webhook-id``, how many requests were in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.servers import serving_in_a_thread

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Settings of the tests' app: loopback receivers allowed, quick polling and retries.
WEBHOOK_TEST_SETTINGS: dict[str, Any] = {
    "webhook_allow_private_targets": True,
    # Every test app's worker polls (and borrows a pooled connection) this often: fast enough for
    # the delivery tests, slow enough to leave the pool gauge quiet most of the time.
    "webhook_poll_interval_seconds": 0.2,
    "webhook_backoff_base_seconds": 0.2,
    "webhook_backoff_max_seconds": 0.4,
    "webhook_timeout_seconds": 2.0,
}


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """What the server got, and how it answers."""

    url: str
    requests: list[Received] = field(default_factory=list)
    # Statuses for the next requests, in order; afterwards 200.
    statuses: list[int] = field(default_factory=list)
    redirect_to: str | None = None
    body_size: int = 0
    pause: float = 0.0
    in_flight: Counter[str] = field(default_factory=Counter)
    most_at_once: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def wait_for(
        self, count: int, seconds: float = 20, where: Callable[[Received], bool] | None = None
    ) -> list[Received]:
        """The requests (those ``where`` accepts), once there are ``count`` of them; fails after ``timeout``.

        It polls on the event loop: the app's delivery worker may be running on that same loop.
        """
        deadline = time.monotonic() + seconds
        while True:
            with self.lock:
                found = [r for r in self.requests if where is None or where(r)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                msg = f"{len(found)} of {count} webhook requests arrived within {seconds}s"
                raise AssertionError(msg)
            await asyncio.sleep(0.02)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            message_id = self.headers.get("webhook-id", "")
            with receiver.lock:
                receiver.in_flight[message_id] += 1
                receiver.most_at_once[message_id] = max(
                    receiver.most_at_once[message_id], receiver.in_flight[message_id]
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            if receiver.pause:
                time.sleep(receiver.pause)
            with receiver.lock:
                receiver.in_flight[message_id] -= 1
            if receiver.redirect_to:
                status = 307
            self.send_response(status)
            if receiver.redirect_to:
                self.send_header("Location", receiver.redirect_to)
            self.send_header("Content-Length", str(receiver.body_size))
            self.end_headers()
            with contextlib.suppress(OSError):  # the sender may stop reading
                remaining = receiver.body_size
                while remaining > 0:
                    chunk = min(remaining, 16384)
                    self.wfile.write(b"x" * chunk)
                    remaining -= chunk
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                )

    return Handler


@contextlib.contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[Receiver]:
    """A receiver on 127.0.0.1, stopped after the block."""
    receiver = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    with serving_in_a_thread(server):
        yield receiver
