"""The error catalogue and the one handler that turns every exception into the contract's error body."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

import jwt
import msgspec
import sqlalchemy.exc
from litestar import MediaType, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from todo_service.core.schema import PATTERN_MEANINGS
from todo_service.db.statements import connection_lost
from todo_service.observability.logs import in_request
from todo_service.observability.traces import record_server_error

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from litestar.connection import Request

__all__ = (
    "AccountLocked",
    "AppError",
    "ClientClosedRequest",
    "EmailAlreadyRegistered",
    "ErrorBody",
    "FieldError",
    "Forbidden",
    "InternalError",
    "InvalidCredentials",
    "InvalidToken",
    "MalformedRequest",
    "MethodNotAllowed",
    "NotAuthenticated",
    "NotFound",
    "OtherClientError",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "ServiceUnavailable",
    "TaskNotFound",
    "TokenExpired",
    "TokenRevoked",
    "UserNotFound",
    "ValidationFailed",
    "WeakPassword",
    "exception_to_response",
    "to_app_error",
)

logger = logging.getLogger(__name__)


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    """One invalid input value."""

    field: str
    message: str
    source: str | None = None


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """The body of every 4xx and 5xx response."""

    detail: str
    error_code: str
    timestamp: datetime
    path: str
    status_code: int
    errors: list[FieldError] | None = None


class AppError(Exception):
    """An error with a stable ``error_code`` that clients can branch on."""

    status_code: int = 500
    error_code: str = "INTERNAL_ERROR"
    default_detail: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.headers = dict(headers or {})
        self.errors = errors
        super().__init__(self.detail)


class MalformedRequest(AppError):
    """The body could not be parsed (not JSON, or not the declared content)."""

    status_code = 400
    error_code = "MALFORMED_REQUEST"
    default_detail = "The request body is not valid JSON"


class ValidationFailed(AppError):
    """Well-formed input that breaks the schema: wrong types, lengths, enums, unknown fields."""

    status_code = 422
    error_code = "VALIDATION_ERROR"
    default_detail = "The request is invalid"


class WeakPassword(AppError):
    """The password breaks the password policy."""

    status_code = 422
    error_code = "WEAK_PASSWORD"
    default_detail = "The password is too weak"


class EmailAlreadyRegistered(AppError):
    """Another account already uses this email."""

    status_code = 409
    error_code = "EMAIL_ALREADY_REGISTERED"
    default_detail = "An account with this email already exists"


class _Unauthorized(AppError):
    """401s carry a ``WWW-Authenticate: Bearer`` challenge (RFC 6750)."""

    status_code = 401
    challenge: ClassVar[str] = 'Bearer error="invalid_token"'

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": self.challenge, **(headers or {})})


class InvalidCredentials(_Unauthorized):
    """Unknown email or wrong password (never says which)."""

    error_code = "INVALID_CREDENTIALS"
    default_detail = "Incorrect email or password"
    challenge = "Bearer"


class NotAuthenticated(_Unauthorized):
    """No bearer token was sent."""

    error_code = "NOT_AUTHENTICATED"
    default_detail = "Authentication required: send 'Authorization: Bearer <token>'"
    challenge = "Bearer"


class InvalidToken(_Unauthorized):
    """The token is malformed, badly signed, or its account is deactivated."""

    error_code = "INVALID_TOKEN"
    default_detail = "The access token is invalid"


class TokenExpired(_Unauthorized):
    """The token's ``exp`` has passed."""

    error_code = "TOKEN_EXPIRED"
    default_detail = "The access token has expired"


class TokenRevoked(_Unauthorized):
    """The token's login session was logged out or revoked."""

    error_code = "TOKEN_REVOKED"
    default_detail = "The access token has been revoked"


class Forbidden(AppError):
    """Authenticated, but not allowed to do this."""

    status_code = 403
    error_code = "FORBIDDEN"
    default_detail = "You are not allowed to do this"


class NotFound(AppError):
    """No such route or resource."""

    status_code = 404
    error_code = "NOT_FOUND"
    default_detail = "Not found"


class TaskNotFound(NotFound):
    """No such task among this user's tasks."""

    error_code = "TASK_NOT_FOUND"
    default_detail = "Task not found"


class UserNotFound(NotFound):
    """No such user."""

    error_code = "USER_NOT_FOUND"
    default_detail = "User not found"


class MethodNotAllowed(AppError):
    """The route exists, but not with this method (see ``Allow``)."""

    status_code = 405
    error_code = "METHOD_NOT_ALLOWED"
    default_detail = "Method not allowed"


class PayloadTooLarge(AppError):
    """The body is larger than ``MAX_BODY_BYTES``."""

    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"
    default_detail = "The request body is too large"


class AccountLocked(AppError):
    """Too many failed logins for this account: wait for the cool-down."""

    status_code = 423
    error_code = "ACCOUNT_LOCKED"
    default_detail = "Too many failed logins: the account is locked for a while"


class RateLimited(AppError):
    """Too many requests: retry after ``Retry-After`` seconds."""

    status_code = 429
    error_code = "RATE_LIMITED"
    default_detail = "Too many requests"


class InternalError(AppError):
    """Anything unexpected; details go to the log, never to the client."""


class OtherClientError(AppError):
    """A 4xx Litestar raises that the catalogue does not name (e.g. 415); its code is the status name."""

    def __init__(self, status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail, headers=headers)
        self.status_code = status_code
        self.error_code = HTTPStatus(status_code).name


class ServiceUnavailable(AppError):
    """A dependency (database, Redis) does not answer."""

    status_code = 503
    error_code = "SERVICE_UNAVAILABLE"
    default_detail = "The service is temporarily unavailable"


class RequestTimeout(AppError):
    """The request body did not arrive within ``REQUEST_BODY_TIMEOUT_SECONDS``; the connection is closed."""

    status_code = 408
    error_code = "REQUEST_TIMEOUT"
    default_detail = "The request body did not arrive in time"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class ClientClosedRequest(AppError):
    """The client went away before its request body was complete (nginx's 499): nobody reads the answer."""

    status_code = 499
    error_code = "CLIENT_CLOSED_REQUEST"
    default_detail = "The client closed the connection before the request body was complete"


_REGEX_MESSAGE = re.compile(r"matching regex '(?P<pattern>.*)'$")
# msgspec names a missing or unknown field only inside its message, for the body as a whole.
_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`")
# Litestar's message when a handler expects a body and none was sent.
_NO_BODY = "'data'"


def _field_error(item: Mapping[str, Any]) -> FieldError:
    """One of Litestar's validation details, with a readable message, the field it concerns and a plain source."""
    message = str(item.get("message", "invalid value"))
    # msgspec names the regex a string failed; say what the regex means instead.
    message = _REGEX_MESSAGE.sub(
        lambda m: PATTERN_MEANINGS.get(m["pattern"].encode().decode("unicode_escape"), m[0]), message
    )
    field = str(item.get("key") or "data")
    if field == "data":
        named = _NAMED_FIELD.match(message)
        field = named["field"] if named else "body"
    source = item.get("source")
    return FieldError(field=field, message=message, source=str(getattr(source, "value", source)) if source else None)


def _validation_error(exc: ValidationException) -> AppError:
    """Litestar's validation details (``extra``) become field errors; the first one leads the detail."""
    items = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(item, dict) and item.get("message") == _NO_BODY for item in items):
        return MalformedRequest("A JSON request body is required")
    errors = [_field_error(item) for item in items if isinstance(item, dict)]
    if not errors:
        return ValidationFailed()
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"Invalid {first.field}: {first.message}{more}", errors=errors)


def _bad_request(exc: HTTPException) -> AppError:
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    if isinstance(exc.__cause__, SerializationException):
        return MalformedRequest()
    return OtherClientError(exc.status_code, exc.detail, exc.headers)


def _unauthorized(exc: HTTPException) -> AppError:
    """The JWT middleware says only 'Invalid token'; the cause tells expired from the rest."""
    if isinstance(exc.__cause__, jwt.ExpiredSignatureError):
        return TokenExpired()
    if exc.detail.startswith("No JWT token found"):
        return NotAuthenticated()
    return InvalidToken()


# Litestar's own HTTP exceptions (router, middleware, body parsing), by status code.
_LITESTAR_ERRORS: dict[int, Callable[[HTTPException], AppError]] = {
    400: _bad_request,
    401: _unauthorized,
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
    return type(exc.orig).__module__ != "sqlite3" or "locked" in str(exc.orig) or "busy" in str(exc.orig)


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
    )
    return Response(body, status_code=error.status_code, headers=error.headers, media_type=MediaType.JSON)
