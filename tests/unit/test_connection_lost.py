"""asyncpg's broken-protocol errors are a lost connection (503), raw and as SQLAlchemy wraps them.

``InternalClientError: cannot switch to state 12`` was seen 18 times over 10 PostgreSQL restarts:
an operation was under way when the connection broke. Provoking that exact protocol state on
demand is not practical (it depends on where in a round trip the server goes away), so these tests
use the real exception classes: asyncpg's, SQLAlchemy's asyncpg adaptation of it (the dialect's
DBAPI module), and ``sqlalchemy.exc.DBAPIError.instance`` which SQLAlchemy itself uses to wrap it.
"""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import create_async_engine

from todo_service.core.errors import InternalError, ServiceUnavailable
from todo_service.db.driver_errors import connection_lost
from todo_service.http.errors import to_app_error

STATE_12 = "cannot switch to state 12; another operation (11) is in progress"
FAILED = 'cannot switch to state 12; protocol is in the "failed" state'


def wrapped_by_sqlalchemy(error: asyncpg.exceptions.InternalClientError) -> sqlalchemy.exc.DBAPIError:
    """``error`` as SQLAlchemy's asyncpg dialect raises it: adapted to its DBAPI class, then wrapped."""
    engine = create_async_engine("postgresql+asyncpg://u@127.0.0.1:1/x")  # connects to nothing
    dbapi = engine.dialect.dbapi
    assert dbapi is not None
    try:
        try:
            raise error
        except asyncpg.exceptions.InternalClientError as exc:
            raise dbapi.InternalClientError(f"{type(exc)}: {exc}") from exc
    except dbapi.Error as adapted:
        wrapped = sqlalchemy.exc.DBAPIError.instance("SELECT 1", {}, adapted, dbapi.Error)
    assert isinstance(wrapped, sqlalchemy.exc.DBAPIError)
    return wrapped


@pytest.mark.parametrize("message", [STATE_12, FAILED, "not connected"])
def test_a_broken_protocol_is_a_lost_connection(message: str) -> None:
    error = asyncpg.exceptions.InternalClientError(message)
    assert connection_lost(error)
    mapped = to_app_error(error)
    assert isinstance(mapped, ServiceUnavailable)
    assert (mapped.status_code, mapped.error_code) == (503, "SERVICE_UNAVAILABLE")


def test_the_sqlalchemy_wrapped_form_is_a_lost_connection_too() -> None:
    wrapped = wrapped_by_sqlalchemy(asyncpg.exceptions.InternalClientError(STATE_12))
    assert isinstance(wrapped, sqlalchemy.exc.InternalError)  # what the ORM path raises
    assert not wrapped.connection_invalidated  # SQLAlchemy does not see it as a disconnect itself
    assert connection_lost(wrapped)
    mapped = to_app_error(wrapped)
    assert isinstance(mapped, ServiceUnavailable)
    assert mapped.headers == {"Retry-After": "5"}
    assert "state" not in mapped.detail  # nothing of the driver reaches the client


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UndefinedColumnError("column x does not exist"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
)
def test_other_driver_errors_are_not_a_lost_connection(error: Exception) -> None:
    assert not connection_lost(error)


def test_other_internal_client_errors_stay_bugs() -> None:
    error = asyncpg.exceptions.InternalClientError("unexpected codec for type")  # a real client-side bug
    assert not connection_lost(error)
    assert not connection_lost(wrapped_by_sqlalchemy(error))
    assert isinstance(to_app_error(error), InternalError)
    assert isinstance(to_app_error(wrapped_by_sqlalchemy(error)), InternalError)


def test_the_search_of_causes_is_bounded() -> None:
    head: BaseException = ValueError("top")
    current = head
    for depth in range(20):  # a long chain whose end is a lost connection: not searched that far
        cause = ValueError(str(depth))
        current.__cause__ = cause
        current = cause
    current.__cause__ = asyncpg.exceptions.InternalClientError(STATE_12)
    assert not connection_lost(head)
    assert connection_lost(current)
