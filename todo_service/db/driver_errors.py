"""Which driver errors mean the database is out of reach (a retryable 503, and a connection to replace)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("connection_lost", "foreign_key_violated", "unique_violated")


# asyncpg's protocol state machine, after the connection broke under an operation: the protocol is
# "failed" or stuck in the interrupted operation ("cannot switch to state 12; another operation (11)
# is in progress", seen over PostgreSQL restarts), or the connection is already gone.
_BROKEN_PROTOCOL = ("cannot switch to state", "not connected")
_MAX_CAUSES = 8  # how deep the chain of causes is searched (SQLAlchemy wraps twice)


def _driver_lost(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return str(exc).startswith(_BROKEN_PROTOCOL)
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError  # class 08: connection failures
        | asyncpg.exceptions.OperatorInterventionError  # class 57: shutting down, cannot connect now
        | asyncpg.exceptions.InsufficientResourcesError  # class 53: too many connections
        | asyncpg.exceptions.ConnectionDoesNotExistError,
    ) or (isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc))


def _caused_by(exc: BaseException, matches: Callable[[BaseException], bool]) -> bool:
    """Whether ``exc`` or one of its causes ``matches``.

    SQLAlchemy's ``DBAPIError`` keeps the adapted driver error in ``orig``, and that one was raised
    from the driver's own error (its ``__cause__``).
    """
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if current is None:
            return False
        if matches(current):
            return True
        orig = getattr(current, "orig", None)  # sqlalchemy.exc.StatementError and subclasses
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def _foreign_key(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.exceptions.ForeignKeyViolationError) or (
        isinstance(exc, sqlite3.IntegrityError) and "FOREIGN KEY" in str(exc)
    )


def _unique(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.exceptions.UniqueViolationError) or (
        isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
    )


def foreign_key_violated(exc: BaseException) -> bool:
    """Whether a statement broke a foreign key: a row it names was deleted meanwhile (asyncpg or SQLite)."""
    return _caused_by(exc, _foreign_key)


def unique_violated(exc: BaseException) -> bool:
    """Whether a statement broke a unique index: a concurrent write took the value first (asyncpg or SQLite)."""
    return _caused_by(exc, _unique)


def connection_lost(exc: BaseException) -> bool:
    """Whether an asyncpg error means the database is out of reach (a retryable 503), not a bug (wrapped or not)."""
    return _caused_by(exc, _driver_lost)
