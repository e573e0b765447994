"""Draining on SIGTERM: nothing that reached the server is dropped when it stops.

granian, left alone, drops requests on SIGTERM: each worker stops its accept loop and closes its
listening socket (SO_REUSEPORT, one per worker), so the kernel resets every connection still in
its accept queue; and it tells each accepted connection to shut down gracefully, which closes
those whose request it has not read yet (hyper sees them as idle). Measured: 40 connections that
each sent a complete request right before SIGTERM, 32 closed without an answer.

So on the first SIGTERM (or SIGINT) the main process does not stop the workers at once:

1. it sends each worker ``DRAIN_SIGNAL``; the worker attaches a socket filter that drops every
   packet to its listening sockets: new SYNs go unanswered (the client retransmits, and is refused
   once the listener is closed), while connections already queued stay acceptable;
2. it waits until the accept queues of the port are empty (``/proc/net/tcp``), then a moment more
   for the workers to read the requests they accepted; responses sent meanwhile carry
   ``Connection: close``, so keep-alive clients do not send another request into the shutdown;
3. then granian's own graceful shutdown runs, as before. At most ``DRAIN_LIMIT_SECONDS`` pass
   before it; a second signal skips the wait.

The drain needs the signal to reach the main process alone, as container runtimes (Docker,
Podman, Kubernetes) and systemd with ``KillMode=mixed`` send it. A signal sent to the whole
process group reaches the workers at the same moment, and they stop as plain granian does.
Linux only (socket filters, ``/proc``); elsewhere the stop is granian's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from litestar import Litestar

    # Plain ASGI 3 (Litestar's own types leave out the lifespan scope, which this wrapper passes on).
    AsgiEvent = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[AsgiEvent]]
    Send = Callable[[AsgiEvent], Awaitable[None]]

__all__ = (
    "DRAIN_SIGNAL",
    "DrainOnStop",
    "accept_queue",
    "drain_workers",
    "draining_server",
    "refuse_new_connections",
)

logger = logging.getLogger(__name__)

DRAIN_SIGNAL = signal.SIGUSR1  # main process -> workers: stop taking connections, keep serving
DRAIN_LIMIT_SECONDS = 5.0  # at most this long between SIGTERM and granian's own shutdown
DRAIN_STEP_SECONDS = 0.05
DRAIN_SETTLE_SECONDS = 0.15  # after the queues are empty: time for the workers to read what they accepted
_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket
_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: "return K bytes of the packet", 0 = drop it


class DrainOnStop:
    """The served app (ASGI), in a granian worker: drains on ``DRAIN_SIGNAL``.

    Draining: the worker's listening sockets drop every new connection attempt (a BPF socket filter
    that accepts nothing; connections accepted or queued before are not affected) and every
    response says ``Connection: close``. Lifespan and requests pass through unchanged otherwise.
    """

    def __init__(self, app: Litestar, listeners: Callable[[], list[int]] | None = None) -> None:
        self.app = app
        self.listeners = listeners or _listening_sockets  # which sockets to close to new connections
        self.draining = False
        self._installed = False

    async def __call__(self, scope: AsgiEvent, receive: Receive, send: Send) -> None:
        """Serve ``scope``; the first lifespan event installs the drain signal's handler."""
        if scope["type"] == "lifespan" and not self._installed:
            self._installed = True
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals here
                asyncio.get_running_loop().add_signal_handler(DRAIN_SIGNAL, self.drain)
        if scope["type"] == "http" and self.draining:
            send = _closing(send)
        await self.app(cast("Any", scope), cast("Any", receive), cast("Any", send))

    def drain(self) -> None:
        """Stop new connections at this worker's listening sockets; say ``Connection: close`` from now on."""
        if self.draining:
            return
        self.draining = True
        filtered = refuse_new_connections(self.listeners())
        logger.info("draining: %d listening socket(s) take no new connection", filtered)


def _closing(send: Send) -> Send:
    async def closing_send(message: AsgiEvent) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
            message["headers"] = [*headers, (b"connection", b"close")]
        await send(message)

    return closing_send


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def _drop_everything() -> bytes:
    """A classic BPF program of one instruction, ``ret #0``: every packet is dropped."""
    program = (_SockFilter * 1)(_SockFilter(_BPF_RET_K, 0, 0, 0))
    fprog = _SockFprog(1, program)
    # The kernel copies the program during setsockopt; ``program`` lives until this returns.
    _drop_everything.keep = program  # type: ignore[attr-defined]
    return ctypes.string_at(ctypes.addressof(fprog), ctypes.sizeof(fprog))


def _listening_sockets() -> list[int]:
    """This process's file descriptors of listening TCP sockets (granian's listeners, in a worker)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError, ValueError):
                fd = int(entry.name)
                if not str(entry.readlink()).startswith("socket:"):
                    continue
                with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate: closing it closes nothing
                    if sock.type == socket.SOCK_STREAM and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        found.append(fd)
    return found


def refuse_new_connections(listeners: list[int]) -> int:
    """Attach the drop-everything filter to each of these listening sockets (fds); how many took it.

    A filter on a listening socket sees the SYNs of new connections: dropped, they get no SYN-ACK,
    so no connection is established that nobody will answer. Connections created before (accepted,
    or waiting in the accept queue) keep their own (empty) filter and are served as usual.
    """
    program = _drop_everything()
    count = 0
    for fd in listeners:
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
            count += 1
    return count


def accept_queue(port: int) -> int | None:
    """Connections waiting in the accept queues of the TCP listeners on ``port`` (None: unknown here)."""
    total, seen = 0, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == _TCP_LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                    seen = True
                    total += int(fields[4].partition(":")[2], 16)  # rx_queue: the accept queue, for a listener
    return total if seen else None


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its ``SigCgt`` mask in /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def drain_workers(port: int, limit: float = DRAIN_LIMIT_SECONDS) -> float:
    """Tell every worker to drain, wait until the port's accept queues are empty; the seconds it took.

    A worker that does not handle the drain signal yet (still starting) serves nothing and is left
    alone: the default action of SIGUSR1 would kill it.
    """
    started = time.monotonic()
    for child in multiprocessing.active_children():
        if child.pid is not None and _catches(child.pid, DRAIN_SIGNAL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, DRAIN_SIGNAL)
    empty_since: float | None = None
    while time.monotonic() - started < limit:
        time.sleep(DRAIN_STEP_SECONDS)
        queued = accept_queue(port)
        now = time.monotonic()
        if queued:
            empty_since = None
        elif empty_since is None:
            empty_since = now
        elif now - empty_since >= DRAIN_SETTLE_SECONDS:
            break
    return time.monotonic() - started


def draining_server() -> type[Any]:
    """The granian server class, with SIGTERM and SIGINT draining first (see above)."""
    from granian import Granian  # noqa: PLC0415  (only ``run`` needs the server)

    class DrainingGranian(Granian):  # type: ignore[misc,valid-type]
        """Drains on the first stop signal, then stops as granian does; a second signal stops at once."""

        todo_draining = False

        def signal_handler_interrupt(self, *args: object, **kwargs: object) -> None:
            if self.todo_draining or self.bind_uds:  # a second signal; or no TCP port to drain
                super().signal_handler_interrupt(*args, **kwargs)
                return
            self.todo_draining = True
            # A signal sent to the whole process group (Ctrl-C in a terminal, systemd's default
            # KillMode) reaches the workers too, and they stop at once, as granian's do: from now
            # on a worker's exit is the stop granian asked for, not a crash to answer with exit 1.
            for worker in self.wrks:
                worker.interrupt_by_parent = True

            def drain_then_stop() -> None:
                try:
                    took = drain_workers(int(self.bind_port))
                    logger.info("drained in %.2fs; stopping the workers", took)
                finally:
                    super(DrainingGranian, self).signal_handler_interrupt(*args, **kwargs)

            threading.Thread(target=drain_then_stop, name="todo-drain", daemon=True).start()

    return DrainingGranian
