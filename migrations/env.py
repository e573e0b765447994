"""Alembic environment: migrates the service's database (``todo-service database upgrade``).

Advanced Alchemy's CLI passes the app's engine settings in ``context.config``; migrations run on
a short-lived engine of their own (NullPool), so no pooled connection outlives this event loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.base import metadata_registry
from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

import todo_service.db.models  # noqa: F401  (registers the tables on the metadata)

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config = cast("AlembicCommandConfig", context.config)


def _options() -> dict[str, Any]:
    return {
        "target_metadata": metadata_registry.get(config.bind_key),
        "version_table": config.version_table_name,
        "render_as_batch": config.render_as_batch,  # SQLite alters tables by copying them
        "compare_type": config.compare_type,
        "user_module_prefix": config.user_module_prefix,
    }


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``--sql``)."""
    context.configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **_options())
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True, **_options())
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    """Run the migrations against the database."""
    engine = create_async_engine(config.db_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
