"""The ``todo-service`` command: Litestar's CLI bound to this app, plus the project's own commands.

``todo-service run`` serves (granian, see :func:`run`), ``todo-service database upgrade`` migrates
(Advanced Alchemy's group), ``todo-service users create-admin`` makes the first admin (nobody can
register as one).
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
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
import msgspec
from litestar.cli._utils import LitestarGroup  # the documented base for CLI extension groups
from litestar.plugins import CLIPluginProtocol
from rich_click import RichCommand

from todo_service.auth.passwords import check_password_policy
from todo_service.db.models import Role
from todo_service.lib.audit import Event, Outcome
from todo_service.lib.errors import AppError
from todo_service.lib.schema import Email
from todo_service.settings import SettingsError
from todo_service.users.services import UserService

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from litestar import Litestar

    # Plain ASGI 3 (Litestar's own types leave out the lifespan scope, which this wrapper passes on).
    AsgiEvent = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[AsgiEvent]]
    Send = Callable[[AsgiEvent], Awaitable[None]]

    from todo_service.app import AppContext

__all__ = ("DrainOnStop", "ProjectCommands", "create_served_app", "main")

logger = logging.getLogger(__name__)

APP_FACTORY = "todo_service.app:create_app"
SERVED_APP_FACTORY = "todo_service.cli:create_served_app"  # what granian's workers load
_GRANIAN_LOGGERS = ("_granian", "granian.access")
DRAIN_SIGNAL = signal.SIGUSR1  # main process -> workers: stop taking connections, keep serving
DRAIN_LIMIT_SECONDS = 5.0  # at most this long between SIGTERM and granian's own shutdown
DRAIN_STEP_SECONDS = 0.05
DRAIN_SETTLE_SECONDS = 0.15  # after the queues are empty: time for the workers to read what they accepted
_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket
_SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: "return K bytes of the packet", 0 = drop it


def main() -> None:
    """Run Litestar's CLI on the service; a bad setting stops it with one line naming the variable."""
    os.environ.setdefault("LITESTAR_APP", APP_FACTORY)
    from litestar.cli.main import litestar_group  # noqa: PLC0415  (after LITESTAR_APP is set)

    try:
        litestar_group()
    except SettingsError as exc:
        sys.exit(f"todo-service: {exc}")


class ProjectCommands(CLIPluginProtocol):
    """Adds the ``users`` command group to Litestar's CLI, and replaces its ``run``."""

    def on_cli_init(self, cli: click.Group) -> None:
        """Register the commands."""
        cli.add_command(users)
        cli.add_command(run)  # in place of Litestar's (uvicorn) run


@click.command("run", cls=RichCommand)
@click.option("--host", "-H", envvar="LITESTAR_HOST", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", "-p", envvar="LITESTAR_PORT", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--web-concurrency",
    "--wc",
    "-W",
    envvar="WEB_CONCURRENCY",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes.",
)
def run(host: str, port: int, web_concurrency: int) -> None:
    """Serve the API with granian: worker processes, each running the app on uvloop.

    On SIGTERM (or SIGINT) the service first drains (see :func:`draining_server`): no new
    connection is taken, every one already queued or accepted is read and answered. Then granian
    stops: its workers finish the requests they serve and run the app's shutdown (pools closed,
    spans flushed), and it exits 0. Chosen over uvicorn, which serves this app as fast (README,
    "Server"), because uvicorn's supervisor keeps accepting connections it never answers while its
    workers drain, and a single uvicorn process ends by re-raising the signal (exit -15).
    """
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415  (only this command needs the server)
    from granian.log import LogLevels  # noqa: PLC0415

    server = draining_server()(
        SERVED_APP_FACTORY,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=web_concurrency,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,  # the app writes its own access log (lib/logs.py)
        # granian's own lines (its supervisor's too) go through the service's handler, at LOG_LEVEL:
        # the app factory ran in this process already (the CLI loads the app) and installed it.
        log_level=LogLevels.notset,
        log_dictconfig={"loggers": {name: {"handlers": [], "propagate": True} for name in _GRANIAN_LOGGERS}},
    )
    server.serve()


# --- draining on SIGTERM ------------------------------------------------------------------------
#
# granian, left alone, drops requests on SIGTERM: each worker stops its accept loop and closes its
# listening socket (SO_REUSEPORT, one per worker), so the kernel resets every connection still in
# its accept queue; and it tells each accepted connection to shut down gracefully, which closes
# those whose request it has not read yet (hyper sees them as idle). Measured: 40 connections that
# each sent a complete request right before SIGTERM, 32 closed without an answer.
#
# So on the first SIGTERM (or SIGINT) the main process does not stop the workers at once:
# 1. it sends each worker DRAIN_SIGNAL; the worker attaches a socket filter that drops every packet
#    to its listening sockets: new SYNs go unanswered (the client retransmits, and is refused once
#    the listener is closed), while connections already queued stay acceptable;
# 2. it waits until the accept queues of the port are empty (/proc/net/tcp), then a moment more
#    for the workers to read the requests they accepted; responses sent meanwhile carry
#    ``Connection: close``, so keep-alive clients do not send another request into the shutdown;
# 3. then granian's own graceful shutdown runs, as before. At most DRAIN_LIMIT_SECONDS pass before
#    it; a second signal skips the wait.


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


def create_served_app() -> DrainOnStop:
    """The factory granian's workers load: the service, wrapped so that it can drain."""
    from todo_service.app import create_app  # noqa: PLC0415  (the app imports this module)

    return DrainOnStop(create_app())


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

            def drain_then_stop() -> None:
                try:
                    took = drain_workers(int(self.bind_port))
                    logger.info("drained in %.2fs; stopping the workers", took)
                finally:
                    super(DrainingGranian, self).signal_handler_interrupt(*args, **kwargs)

            threading.Thread(target=drain_then_stop, name="todo-drain", daemon=True).start()

    return DrainingGranian


@click.group(cls=LitestarGroup)  # LitestarGroup hands commands the ``app`` they ask for
def users() -> None:
    """Manage accounts."""


@click.command("create-admin", cls=RichCommand)  # the class Litestar's CLI groups expect
@click.option("--email", required=True, help="The admin's email; an existing account is promoted.")
@click.option("--first-name", default="Admin", show_default=True, help="For a new account.")
@click.option("--last-name", default="User", show_default=True, help="For a new account.")
@click.option(
    "--password",
    envvar="TODO_ADMIN_PASSWORD",
    help="For a new account; asked for when not given (or set TODO_ADMIN_PASSWORD).",
)
def create_admin(app: Litestar, email: str, first_name: str, last_name: str, password: str | None) -> None:
    """Create an admin account, or promote an existing one."""
    try:
        msgspec.convert(email, Email)
    except msgspec.ValidationError:
        raise click.BadParameter("not an email address", param_hint="--email") from None
    context: AppContext = app.state.context
    try:
        created = asyncio.run(_create_admin(context, email, first_name, last_name, password))
    except AppError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"{email.lower()}: {'admin account created' if created else 'promoted to admin'}")


users.add_command(create_admin)  # LitestarGroup wraps it so it receives ``app``


async def _create_admin(context: AppContext, email: str, first_name: str, last_name: str, password: str | None) -> bool:
    """True when an account was created, False when an existing one was promoted."""
    trail = context.audit_log.offline_trail("cli")
    passwords = context.auth_config.passwords
    try:
        async with context.session_maker() as db, db.begin():
            service = UserService(db, passwords=passwords, audit=trail)
            if (user := await service.promote_to_admin(email)) is not None:
                trail.record(Event.ROLE_CHANGED, Outcome.SUCCESS, user_id=user.id, detail="promoted to admin by CLI")
                created = False
            else:
                password = password or click.prompt("Password", hide_input=True, confirmation_prompt=True)
                check_password_policy(password, email)
                user = await service.create_account(
                    email=email,
                    password_hash=await passwords.hash(password),
                    first_name=first_name,
                    last_name=last_name,
                    role=Role.ADMIN,
                )
                trail.record(Event.ADMIN_CREATED, Outcome.SUCCESS, user_id=user.id, email=user.email)
                created = True
        await context.audit_log.flush_trail(trail)
        return created
    finally:
        passwords.close()
        await context.engine.dispose()
