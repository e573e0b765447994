"""The error catalogue: the contract's error body and the exception type every error of ours is.

The mapping of every other exception onto it, and the app's one exception handler, are
:mod:`todo_service.http.errors`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, ClassVar

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping


__all__ = (
    "AppError",
    "ClientClosedRequest",
    "ErrorBody",
    "FieldError",
    "Forbidden",
    "InternalError",
    "InvalidToken",
    "MalformedRequest",
    "MethodNotAllowed",
    "NotAuthenticated",
    "NotFound",
    "OtherClientError",
    "PayloadTooLarge",
    "PreconditionFailed",
    "RateLimited",
    "RequestTimeout",
    "ServiceUnavailable",
    "TokenExpired",
    "TokenRevoked",
    "Unauthorized",
    "ValidationFailed",
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
    # In a batch: the index of the operation that failed (nothing of the batch was kept).
    operation: int | None = None


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
        self.operation: int | None = None
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


class Unauthorized(AppError):
    """401s carry a ``WWW-Authenticate: Bearer`` challenge (RFC 6750)."""

    status_code = 401
    challenge: ClassVar[str] = 'Bearer error="invalid_token"'

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": self.challenge, **(headers or {})})


class NotAuthenticated(Unauthorized):
    """No bearer token was sent."""

    error_code = "NOT_AUTHENTICATED"
    default_detail = "Authentication required: send 'Authorization: Bearer <token>'"
    challenge = "Bearer"


class InvalidToken(Unauthorized):
    """The token is malformed, badly signed, or its account is deactivated."""

    error_code = "INVALID_TOKEN"
    default_detail = "The access token is invalid"


class TokenExpired(Unauthorized):
    """The token's ``exp`` has passed."""

    error_code = "TOKEN_EXPIRED"
    default_detail = "The access token has expired"


class TokenRevoked(Unauthorized):
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


class PreconditionFailed(AppError):
    """``If-Match`` named a version the resource is no longer at: nothing was changed."""

    status_code = 412
    error_code = "PRECONDITION_FAILED"
    default_detail = "The resource has changed since the version named in If-Match"


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
