"""``to_app_error``: every exception Litestar (or anything else) raises maps onto the error catalogue."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import jwt
import pytest
import sqlalchemy.exc
from litestar.exceptions import (
    ClientException,
    HTTPException,
    InternalServerException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)

from todo_service.core.errors import AppError, FieldError
from todo_service.http.errors import to_app_error
from todo_service.tasks.errors import TaskNotFound


def caused_by(exc: Exception, cause: BaseException) -> Exception:
    """``exc`` as if raised ``from cause``."""
    exc.__cause__ = cause
    return exc


def test_not_found() -> None:
    error = to_app_error(NotFoundException())
    assert (error.status_code, error.error_code) == (404, "NOT_FOUND")


def test_method_not_allowed_keeps_allow() -> None:
    error = to_app_error(MethodNotAllowedException(headers={"Allow": "GET, PUT"}))
    assert (error.status_code, error.error_code) == (405, "METHOD_NOT_ALLOWED")
    assert error.headers == {"Allow": "GET, PUT"}


def test_validation_details_become_field_errors() -> None:
    exc = ValidationException(
        detail="Validation failed for POST /x",
        extra=[
            {"key": "title", "message": "Expected `str` of length <= 255", "source": "body"},
            {"key": "limit", "message": "Expected `int` >= 1", "source": "query"},
        ],
    )
    error = to_app_error(exc)
    assert (error.status_code, error.error_code) == (422, "VALIDATION_ERROR")
    assert error.errors == [
        FieldError(field="title", message="Expected `str` of length <= 255", source="body"),
        FieldError(field="limit", message="Expected `int` >= 1", source="query"),
    ]
    assert error.detail == "Invalid title: Expected `str` of length <= 255 (and 1 more)"
    assert "POST /x" not in error.detail


def test_a_validation_detail_about_the_body_means_there_was_none() -> None:
    # Bodies are decoded by StrictBodies; Litestar reports its handler's ``data`` only when nothing came.
    for message in ("'data'", "anything Litestar may say"):
        error = to_app_error(ValidationException(extra=[{"key": "data", "message": message, "source": "body"}]))
        assert (error.status_code, error.error_code) == (400, "MALFORMED_REQUEST")
        assert error.detail == "A JSON request body is required"


def test_a_parameter_detail_keeps_its_field_and_source() -> None:
    item = {"key": "If-Match", "message": "Expected `str` of length <= 4096", "source": "header"}
    error = to_app_error(ValidationException(extra=[item]))
    assert error.errors == [FieldError(field="If-Match", message="Expected `str` of length <= 4096", source="header")]


def test_validation_without_details_is_still_422() -> None:
    error = to_app_error(ValidationException())
    assert (error.status_code, error.error_code, error.errors) == (422, "VALIDATION_ERROR", None)


def test_unparseable_body_is_malformed_request() -> None:
    error = to_app_error(caused_by(ClientException("Malformed body"), SerializationException("bad JSON at 3")))
    assert (error.status_code, error.error_code) == (400, "MALFORMED_REQUEST")
    assert "bad JSON" not in error.detail


def test_other_400_stays_a_client_error() -> None:
    error = to_app_error(ClientException("Missing required header"))
    assert (error.status_code, error.error_code) == (400, "BAD_REQUEST")
    assert error.detail == "Missing required header"


@pytest.mark.parametrize("cause", [jwt.InvalidSignatureError("bad"), jwt.DecodeError("garbage"), None])
def test_a_401_of_litestar_is_invalid_token(cause: Exception | None) -> None:
    # The bearer middleware raises our own TOKEN_EXPIRED and NOT_AUTHENTICATED (test_tokens.py).
    exc = NotAuthorizedException("Invalid token")
    error = to_app_error(caused_by(exc, cause) if cause else exc)
    assert (error.status_code, error.error_code) == (401, "INVALID_TOKEN")
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (PermissionDeniedException(), 403, "FORBIDDEN"),
        (HTTPException(status_code=413), 413, "PAYLOAD_TOO_LARGE"),
        (HTTPException(status_code=415), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (HTTPException(status_code=406), 406, "NOT_ACCEPTABLE"),
        (ServiceUnavailableException(), 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_litestar_statuses(exc: HTTPException, status: int, code: str) -> None:
    error = to_app_error(exc)
    assert (error.status_code, error.error_code) == (status, code)


def test_rate_limit_keeps_retry_after() -> None:
    error = to_app_error(TooManyRequestsException(headers={"Retry-After": "12"}))
    assert (error.status_code, error.error_code) == (429, "RATE_LIMITED")
    assert error.headers["Retry-After"] == "12"


@pytest.mark.parametrize(
    "exc",
    [
        HTTPException(status_code=502, detail="upstream said: SELECT 1"),
        InternalServerException("boom"),
        ValueError("SELECT * FROM users"),
        RuntimeError("asyncpg.exceptions.ConnectionDoesNotExistError"),
        KeyError("password_hash"),
    ],
)
def test_everything_else_is_a_bare_internal_error(exc: Exception) -> None:
    error = to_app_error(exc)
    assert (error.status_code, error.error_code) == (500, "INTERNAL_ERROR")
    assert error.detail == "Internal server error"
    assert error.errors is None
    assert error.headers == {}


def test_app_errors_pass_through() -> None:
    original = TaskNotFound()
    assert to_app_error(original) is original
    assert (original.status_code, original.error_code) == (404, "TASK_NOT_FOUND")
    assert isinstance(original, AppError)


def test_a_busy_sqlite_database_is_a_503_and_a_schema_mistake_a_500(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x INTEGER)")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite3.OperationalError) as busy:
            waiter.execute("INSERT INTO t VALUES (1)")
        holder.execute("COMMIT")
        with pytest.raises(sqlite3.OperationalError) as mistake:
            waiter.execute("SELECT nope FROM t")
    finally:
        holder.close()
        waiter.close()
    as_sqlalchemy = [sqlalchemy.exc.OperationalError("...", {}, error.value) for error in (busy, mistake)]
    assert [to_app_error(error).status_code for error in as_sqlalchemy] == [503, 500]
