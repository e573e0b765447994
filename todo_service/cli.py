"""The ``todo-service`` command: Litestar's CLI bound to this app, plus the project's own commands.

``todo-service run`` serves (granian, see :func:`run`), ``todo-service database upgrade`` migrates
(Advanced Alchemy's group), ``todo-service users create-admin`` makes the first admin (nobody can
register as one).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import msgspec
from litestar.plugins import CLIPluginProtocol
from rich_click import RichCommand
from sqlalchemy import make_url

from todo_service.audit.log import Event, Outcome
from todo_service.core.errors import AppError
from todo_service.core.schema import Email
from todo_service.core.settings import Settings, SettingsError, normalize_database_url
from todo_service.db.database import create_engine, database_config, wait_for_database
from todo_service.db.models import Role
from todo_service.http.openapi import DOCS_PATH
from todo_service.observability.logs import configure_logging
from todo_service.security.passwords import check_password_policy
from todo_service.system.schema import UPGRADE_COMMAND, SchemaState, read_schema_state
from todo_service.users.services import UserService

if TYPE_CHECKING:
    from litestar import Litestar

    from todo_service.app import AppContext

__all__ = ("ProjectCommands", "main", "prepare_database", "where_to_find")

logger = logging.getLogger("todo_service.run")

APP_FACTORY = "todo_service.app:create_app"
SERVED_APP_FACTORY = "todo_service.app:create_served_app"  # what granian's workers load (drains on SIGTERM)
PACKAGE_DIR = Path(__file__).resolve().parent  # what ``run --reload`` watches
_GRANIAN_LOGGERS = ("_granian", "granian.access")
_ALL_ADDRESSES = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104  (shown, not bound)


def main() -> None:
    """Run the command; a bad setting stops it with one line naming the variable.

    ``run`` does not go through Litestar's CLI: to list its commands, that CLI builds the app in this
    process (``create_app``: settings, engine, logging, telemetry), and ``run``'s worker then built
    its own. ``run`` needs neither here; the workers build the only app.
    """
    args = sys.argv[1:]
    try:
        if args[:1] == ["run"]:
            run.main(args[1:], prog_name="todo-service run")
        else:
            os.environ.setdefault("LITESTAR_APP", APP_FACTORY)
            from litestar.cli.main import litestar_group  # noqa: PLC0415  (after LITESTAR_APP is set)

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
        cli.add_command(run)  # in place of Litestar's (uvicorn) run; listed by --help


@click.command("run", cls=RichCommand)
@click.option(
    "--host", "-H", envvar=["HOST", "LITESTAR_HOST"], default="127.0.0.1", show_default=True, help="Address to bind."
)
@click.option(
    "--port",
    "-p",
    envvar=["PORT", "LITESTAR_PORT"],
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to bind.",
)
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
@click.option(
    "--reload", is_flag=True, help="Restart the workers when a file under todo_service/ changes (development)."
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Bring the database schema up to date before serving, PostgreSQL too (development; SQLite always is).",
)
def run(host: str, port: int, web_concurrency: int, *, reload: bool, migrate: bool) -> None:
    """Serve the API with granian: worker processes, each running the app on uvloop.

    Host and port: the option, else ``HOST`` / ``PORT``, else ``LITESTAR_HOST`` / ``LITESTAR_PORT``,
    else 127.0.0.1:8000. Before serving, the schema is checked (:func:`prepare_database`).

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

    settings = Settings.from_env()
    # This process's lines (granian's supervisor's among them) go through the service's handler.
    configure_logging(settings)
    if reload:
        # Fresh interpreters for the workers: a forked one would keep this process's modules, old code.
        multiprocessing.set_start_method("spawn", force=True)
    else:
        # Made or read here, once: the forked workers share it, and its warning is logged once.
        _ = settings.signing_key
    prepare_database(settings, migrate=migrate)
    if not reload:
        # Imported once, here: the forked workers inherit the modules and only build the app.
        importlib.import_module(SERVED_APP_FACTORY.partition(":")[0])

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
        # granian's own lines go through the service's handler (installed above), at LOG_LEVEL.
        log_level=LogLevels.notset,
        log_dictconfig={"loggers": {name: {"handlers": [], "propagate": True} for name in _GRANIAN_LOGGERS}},
        reload=reload,
        reload_paths=[PACKAGE_DIR],
        reload_ignore_worker_failure=True,  # a file saved half-written: wait for the next change
    )
    line = where_to_find(host, port, docs=settings.docs_enabled)
    server.on_startup(lambda: logger.info("%s", line))  # once the port is bound
    server.serve()


def where_to_find(host: str, port: int, *, docs: bool) -> str:
    """The line that says where the API and its docs are."""
    shown = _ALL_ADDRESSES.get(host, host)
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    everywhere = " (every address of this machine)" if host in _ALL_ADDRESSES else ""
    guide = f" - docs at {base}{DOCS_PATH}" if docs else " - docs off (DOCS_ENABLED=false)"
    return f"todo-service listening on {base}{everywhere}{guide}"


def prepare_database(settings: Settings, *, migrate: bool) -> None:
    """Before serving: SQLite (or any database, with ``migrate``) is brought up to the migrations' head.

    PostgreSQL whose schema is behind stops the command with one line saying what to run: replicas
    would race to migrate, and a release migrates once, before its servers start (docs/operations.md).
    """
    state = asyncio.run(_schema_state(settings))
    if state is None or not state.behind:
        return
    url = make_url(normalize_database_url(settings.database_url))
    if url.get_backend_name() != "sqlite" and not migrate:
        sys.exit(
            f"todo-service: the database schema is {state.describe()}: run `{UPGRADE_COMMAND}` "
            "(or `just migrate`), then start again"
        )
    where = url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)
    logger.info("database %s is %s: migrating it now", where, state.describe())
    _upgrade(settings)
    logger.info("database %s migrated to %s", where, ", ".join(sorted(state.heads)))


def _upgrade(settings: Settings) -> None:
    # Advanced Alchemy's Alembic commands, as ``todo-service database upgrade`` runs them (its own event loop).
    from advanced_alchemy.alembic.commands import AlembicCommands  # noqa: PLC0415  (only when migrating)

    AlembicCommands(sqlalchemy_config=database_config(settings)).upgrade("head")


async def _schema_state(settings: Settings) -> SchemaState | None:
    """The schema's state, once the database answers; None when it does not and the start must not wait."""
    engine = create_engine(settings)
    try:
        try:
            await wait_for_database(
                engine, attempts=max(settings.db_connect_attempts, 1), first_pause=settings.db_connect_retry_seconds
            )
        except RuntimeError as exc:
            if settings.db_connect_attempts:
                sys.exit(f"todo-service: {exc}")
            logger.warning("database not reachable: schema not checked (readiness reports both until it answers)")
            return None
        async with engine.connect() as connection:
            return await connection.run_sync(read_schema_state)
    finally:
        await engine.dispose()


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
