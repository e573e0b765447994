"""The ``todo-service`` command: Litestar's CLI bound to this app, plus the project's own commands.

``todo-service run`` serves (granian, see :func:`run`), ``todo-service database upgrade`` migrates
(Advanced Alchemy's group), ``todo-service users create-admin`` makes the first admin (nobody can
register as one).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

import click
import msgspec
from litestar.plugins import CLIPluginProtocol
from rich_click import RichCommand

from todo_service.audit.log import Event, Outcome
from todo_service.core.errors import AppError
from todo_service.core.schema import Email
from todo_service.core.settings import SettingsError
from todo_service.db.models import Role
from todo_service.security.passwords import check_password_policy
from todo_service.users.services import UserService

if TYPE_CHECKING:
    from litestar import Litestar

    from todo_service.app import AppContext

__all__ = ("ProjectCommands", "main")

APP_FACTORY = "todo_service.app:create_app"
SERVED_APP_FACTORY = "todo_service.app:create_served_app"  # what granian's workers load (drains on SIGTERM)
_GRANIAN_LOGGERS = ("_granian", "granian.access")


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
        # ``cli.group`` makes the group of Litestar's own class (click's ``group_class``), which
        # hands its commands the ``app`` they ask for.
        users = cli.group("users", help="Manage accounts.")(_users)
        users.add_command(create_admin)
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

    On SIGTERM (or SIGINT) the service first drains (``todo_service/drain.py``): no new connection
    is taken, every one already queued or accepted is read and answered. Then granian stops: its
    workers finish the requests they serve and run the app's shutdown (pools closed, spans
    flushed), and it exits 0. Chosen
    over uvicorn, which serves this app as fast (README, "Server"), because uvicorn's supervisor
    keeps accepting connections it never answers while its workers drain, and a single uvicorn
    process ends by re-raising the signal (exit -15).
    """
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415  (only this command needs the server)
    from granian.log import LogLevels  # noqa: PLC0415

    from todo_service.drain import draining_server  # noqa: PLC0415  (only the command that serves needs it)

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
        log_access=False,  # the app writes its own access log (observability/logs.py)
        # granian's own lines (its supervisor's too) go through the service's handler, at LOG_LEVEL:
        # the app factory ran in this process already (the CLI loads the app) and installed it.
        log_level=LogLevels.notset,
        log_dictconfig={"loggers": {name: {"handlers": [], "propagate": True} for name in _GRANIAN_LOGGERS}},
    )
    server.serve()


def _users() -> None:
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
