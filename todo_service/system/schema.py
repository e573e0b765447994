"""Whether the database's schema is the code's: the revision Alembic recorded against the migrations' head.

``todo-service run`` checks it before it serves (``cli.py``): it brings a SQLite database up to the
head itself (one file on one machine: nobody to race), and refuses to start on PostgreSQL while
the schema is behind, naming the command to run. Readiness's database check fails while the
schema is behind (a server started another way, a database restored from an older backup). A
database *ahead* of the code (a newer release migrated it, during a rolling update) is not behind:
migrations keep the previous release working, so the older replicas keep serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from todo_service.db.database import MIGRATIONS_DIR, VERSION_TABLE
from todo_service.system.services import NotReady

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    from todo_service.system.services import Check

__all__ = (
    "UPGRADE_COMMAND",
    "Migrations",
    "SchemaBehind",
    "SchemaState",
    "migrations",
    "read_schema_state",
    "with_schema",
)

UPGRADE_COMMAND = "todo-service database upgrade"
# Alembic says which dialect it found each time a context is made: noise at every start and probe.
_alembic_context_log = logging.getLogger("alembic.runtime.migration")


@dataclass(frozen=True, slots=True)
class Migrations:
    """What the code's migrations say: the head revisions, and every revision they know."""

    heads: frozenset[str]
    known: frozenset[str]


@cache
def migrations() -> Migrations:
    """Read once per process (Alembic loads each revision file)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return Migrations(
        heads=frozenset(script.get_heads()),
        known=frozenset(revision.revision for revision in script.walk_revisions()),
    )


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The revisions recorded in the database (none: never migrated) beside the code's heads."""

    current: frozenset[str]
    heads: frozenset[str]
    known: frozenset[str]

    @property
    def behind(self) -> bool:
        """The code needs migrations the database has not had (a revision the code does not know is ahead)."""
        return self.current != self.heads and self.current <= self.known

    def describe(self) -> str:
        """``at 0005, the code needs 0006`` or ``never migrated, the code needs 0006``."""
        needs = ", ".join(sorted(self.heads))
        if not self.current:
            return f"never migrated, the code needs {needs}"
        return f"at {', '.join(sorted(self.current))}, the code needs {needs}"


class SchemaBehind(NotReady):
    """The database's schema is behind the code; the message says where it is and what to run."""

    def __init__(self, state: SchemaState) -> None:
        super().__init__(f"the database schema is {state.describe()}: run `{UPGRADE_COMMAND}`")
        self.state = state


def read_schema_state(connection: Connection) -> SchemaState:
    """The schema's state, read on a (sync) connection: ``await connection.run_sync(read_schema_state)``."""
    level = _alembic_context_log.level
    _alembic_context_log.setLevel(logging.WARNING)
    try:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    finally:
        _alembic_context_log.setLevel(level)
    code = migrations()
    return SchemaState(current=frozenset(context.get_current_heads()), heads=code.heads, known=code.known)


def with_schema(engine: AsyncEngine, answers: Check) -> Check:
    """Readiness's database check, failing also while the schema is behind (its message says what to run).

    Until the schema has been seen at the head, the check reads the recorded revision (a round trip
    that also proves the database answers); after that only ``answers`` runs (``SELECT 1``): a schema
    does not go back while the service runs, and probes cost no extra statement.
    """
    at_head = False

    async def check() -> None:
        nonlocal at_head
        if at_head:
            await answers()
            return
        async with engine.connect() as connection:
            state = await connection.run_sync(read_schema_state)
        if state.behind:
            raise SchemaBehind(state)
        at_head = True

    return check
