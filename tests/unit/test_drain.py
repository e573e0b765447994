"""The pieces of the SIGTERM drain (``todo_service/drain.py``), each on real sockets and signals of this process.

The whole drain runs on a real ``todo-service run`` in ``tests/integration/test_server_process.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest

from todo_service import drain
from todo_service.app import create_served_app

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def test_accept_queue_counts_connections_nobody_accepted(listener: socket.socket) -> None:
    port = port_of(listener)
    assert drain.accept_queue(port) == 0
    with socket.create_connection(("127.0.0.1", port)), socket.create_connection(("127.0.0.1", port)):
        time.sleep(0.05)
        assert drain.accept_queue(port) == 2
        for _ in range(2):
            listener.accept()[0].close()
        assert drain.accept_queue(port) == 0


def test_accept_queue_of_a_port_nobody_listens_on_is_unknown(listener: socket.socket) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))  # bound, not listening
        assert drain.accept_queue(port_of(other)) is None


def test_refusing_new_connections_keeps_the_queued_ones(listener: socket.socket) -> None:
    port = port_of(listener)
    queued = socket.create_connection(("127.0.0.1", port))
    queued.sendall(b"GET / HTTP/1.1\r\n\r\n")
    time.sleep(0.05)
    assert listener.fileno() in drain._listening_sockets()
    assert drain.refuse_new_connections([listener.fileno()]) == 1

    with pytest.raises(TimeoutError):  # the SYN is dropped: no answer at all, not even a refusal
        socket.create_connection(("127.0.0.1", port), timeout=0.5)
    accepted, _ = listener.accept()  # what was queued before is still there, with its bytes
    with accepted, queued:
        assert accepted.recv(64) == b"GET / HTTP/1.1\r\n\r\n"
        accepted.sendall(b"answered")
        assert queued.recv(64) == b"answered"
    assert drain.accept_queue(port) == 0


def test_only_listening_tcp_sockets_are_found(listener: socket.socket) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as unconnected:
        found = drain._listening_sockets()
        assert listener.fileno() in found
        assert udp.fileno() not in found
        assert unconnected.fileno() not in found


def test_a_signal_handler_shows_in_the_process_status() -> None:
    previous = signal.signal(signal.SIGUSR2, lambda *_: None)
    try:
        assert drain._catches(os.getpid(), signal.SIGUSR2)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert not drain._catches(os.getpid(), signal.SIGUSR2)
    assert not drain._catches(2**22 + 1, signal.SIGUSR2)


def test_draining_without_workers_waits_only_for_the_queue(listener: socket.socket) -> None:
    took = drain.drain_workers(port_of(listener), limit=2)
    assert drain.DRAIN_SETTLE_SECONDS <= took < 1


def test_draining_is_bounded_when_the_queue_never_empties(listener: socket.socket) -> None:
    with socket.create_connection(("127.0.0.1", port_of(listener))):
        time.sleep(0.05)
        took = drain.drain_workers(port_of(listener), limit=0.4)
    assert 0.4 <= took < 1


class Recorder:
    """A stand-in ASGI app: records each scope type and the response headers it is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], _: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"keep-alive")]})
            await send({"type": "http.response.body", "body": b"ok"})


async def serve_once(app: drain.DrainOnStop, scope_type: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app({"type": scope_type}, receive, send)
    return sent


async def test_the_served_app_drains_on_the_drain_signal(listener: socket.socket) -> None:
    drained = asyncio.Event()

    def listeners() -> list[int]:  # only the test's own listener: the runner may have others
        drained.set()
        return [listener.fileno()]

    app = drain.DrainOnStop(Recorder(), listeners)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    try:
        await serve_once(app, "lifespan")  # installs the handler
        before = await serve_once(app, "http")
        assert before[0]["headers"] == [(b"connection", b"keep-alive")]
        assert vars(app)["draining"] is False  # (vars: mypy would keep the narrowing past the signal)

        os.kill(os.getpid(), drain.DRAIN_SIGNAL)
        await asyncio.wait_for(drained.wait(), 5)
        assert app.draining
        with pytest.raises(TimeoutError):
            socket.create_connection(listener.getsockname(), timeout=0.3)

        after = await serve_once(app, "http")
        assert after[0]["headers"] == [(b"connection", b"close")]
        app.drain()  # a second signal changes nothing
        assert app.draining
    finally:
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(drain.DRAIN_SIGNAL)


def test_the_factory_wraps_the_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    served = create_served_app()
    assert isinstance(served, drain.DrainOnStop)
    assert served.app.openapi_config is not None  # the real app, as create_app builds it
