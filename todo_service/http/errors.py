"""The app's one exception handler: every exception becomes the contract's error body.

Our own errors (:class:`~todo_service.core.errors.AppError`) answer as they are; Litestar's HTTP
exceptions, msgspec's validation details and a database out of reach are mapped onto the
catalogue; anything else is a bare 500, logged with its stack trace (never sent to the client).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
from litestar import MediaType, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from todo_service.core.errors import (
    AppError,
    ErrorBody,
    FieldError,
    Forbidden,
    InternalError,
    InvalidToken,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    OtherClientError,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from todo_service.db.driver_errors import connection_lost
from todo_service.http.wording import invalid
from todo_service.observability.logs import in_request
from todo_service.observability.traces import record_server_error

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from litestar.connection import Request

__all__ = ("exception_to_response", "status_of", "to_app_error")

logger = logging.getLogger(__name__)

# Litestar validates only what our own decoders do not: path, header and query parameters. Every
# request body is decoded by StrictBodies (http/strict.py), so a validation detail about the
# handler's ``data`` from Litestar means one thing: there was no body to decode.
_BODY = "data"


def _field_error(item: Mapping[str, Any]) -> FieldError:
    """One of Litestar's validation details: the field it concerns, its message and a plain source."""
    source = item.get("source")
    return FieldError(
        field=str(item.get("key") or "request"),
        message=str(item.get("message", "invalid value")),
        source=str(getattr(source, "value", source)) if source else None,
    )


def _validation_error(exc: ValidationException) -> AppError:
    """Litestar's validation details (``extra``) become field errors; the first one leads the detail."""
    items = [item for item in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(item, dict)]
    if any(item.get("key") == _BODY for item in items):
        return MalformedRequest("A JSON request body is required")
    errors = [_field_error(item) for item in items]
    return invalid(errors) if errors else ValidationFailed()


def _bad_request(exc: HTTPException) -> AppError:
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    if isinstance(exc.__cause__, SerializationException):
        return MalformedRequest()
    return OtherClientError(exc.status_code, exc.detail, exc.headers)


# Litestar's own HTTP exceptions (router, middleware, body parsing), by status code.
_LITESTAR_ERRORS: dict[int, Callable[[HTTPException], AppError]] = {
    400: _bad_request,
    401: lambda _: InvalidToken(),  # our bearer middleware raises its own errors; any other 401 is a bad token
    403: lambda _: Forbidden(),
    404: lambda _: NotFound(),
    405: lambda exc: MethodNotAllowed(headers=exc.headers),
    413: lambda _: PayloadTooLarge(),
    429: lambda exc: RateLimited(headers=exc.headers),
    503: lambda _: ServiceUnavailable(),
}


def _dependency_down(exc: Exception) -> bool:
    """Whether the database (or the network to it) is down or saturated: a retryable 503, not a bug."""
    if isinstance(exc, OSError | TimeoutError | sqlalchemy.exc.TimeoutError | sqlalchemy.exc.InterfaceError):
        return True  # refused, unresolvable, reset or timed-out connections; an exhausted pool
    if connection_lost(exc):
        return True  # the same, met by a statement sent to asyncpg directly
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True  # the connection died under the statement
    if not isinstance(exc, sqlalchemy.exc.OperationalError):
        return False
    # PEP 249's OperationalError means trouble outside the program's control, except that sqlite3
    # also raises it for schema mistakes ("no such column"): there only a busy database counts.
    if not isinstance(exc.orig, sqlite3.Error):
        return True
    code = getattr(exc.orig, "sqlite_errorcode", 0)  # set by sqlite3 on the errors SQLite itself raised
    return code & 0xFF in {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}  # the primary code, without extended bits


def to_app_error(exc: Exception) -> AppError:
    """Map any exception onto the catalogue; unknown ones become a bare 500."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, RecursionError):
        # Raised while decoding a body nested thousands of levels deep (a parser bomb).
        return MalformedRequest("The request body is nested too deeply")
    if _dependency_down(exc):
        return ServiceUnavailable("The database is unavailable; retry shortly", headers={"Retry-After": "5"})
    if isinstance(exc, HTTPException):
        if translate := _LITESTAR_ERRORS.get(exc.status_code):
            return translate(exc)
        if exc.status_code < HTTPStatus.INTERNAL_SERVER_ERROR:
            return OtherClientError(exc.status_code, exc.detail, exc.headers)
    return InternalError()


def status_of(exc: Exception) -> int:
    """The status :func:`exception_to_response` answers ``exc`` with."""
    return to_app_error(exc).status_code


def exception_to_response(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """The app's only exception handler: never a stack trace, SQL or repository message to the client."""
    error = to_app_error(exc)
    context = in_request(request.scope)  # errors raised by middleware are handled outside the log context
    if isinstance(error, InternalError):
        logger.error("unhandled error on %s %s", request.method, request.scope["path"], exc_info=exc, extra=context)
    elif error.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.warning("%s %s: %s (%r)", request.method, request.scope["path"], error.detail, exc, extra=context)
    if error.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
        record_server_error(exc)  # Litestar marks no span as failed (litestar#4594); 4xx are not failures
    body = ErrorBody(
        detail=error.detail,
        error_code=error.error_code,
        timestamp=datetime.now(UTC),
        path=request.scope["path"],
        status_code=error.status_code,
        errors=error.errors,
        operation=error.operation,
    )
    return Response(body, status_code=error.status_code, headers=error.headers, media_type=MediaType.JSON)
