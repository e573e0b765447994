"""OpenAPI docs (Scalar, Swagger UI, ReDoc) and the documented error responses of every route."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Example, Tag
from litestar.router import Router

from todo_service.core.errors import (
    AppError,
    ErrorBody,
    FieldError,
    InternalError,
    InvalidToken,
    MalformedRequest,
    NotAuthenticated,
    PayloadTooLarge,
    RateLimited,
    TokenExpired,
    TokenRevoked,
    ValidationFailed,
)
from todo_service.core.request_context import RATE_LIMIT
from todo_service.http.hosts import InvalidHost
from todo_service.observability.traces import UNTRACED

if TYPE_CHECKING:
    from litestar import Request

__all__ = (
    "AUTHENTICATED",
    "DOCS_PATH",
    "PUBLIC",
    "WITH_BODY",
    "error_responses",
    "openapi_config",
)

DOCS_PATH = "/api/docs"
SCALAR_VERSION = "1.72.1"
# ReDoc 3 no longer loads as a plain script tag (it uses import.meta): stay on 2.x.
REDOC_JS_URL = "https://cdn.jsdelivr.net/npm/redoc@2.5.4/bundles/redoc.standalone.js"

# Errors any route may answer, and those of routes that need a token or take a body.
PUBLIC: tuple[type[AppError], ...] = (MalformedRequest, InvalidHost, ValidationFailed, RateLimited, InternalError)
AUTHENTICATED: tuple[type[AppError], ...] = (*PUBLIC, NotAuthenticated, InvalidToken, TokenExpired, TokenRevoked)
WITH_BODY: tuple[type[AppError], ...] = (PayloadTooLarge,)

_EXAMPLE_TIME = datetime(2030, 1, 31, 17, 0, tzinfo=UTC)


def _example(error: type[AppError]) -> Example:
    errors = None
    if error is ValidationFailed:
        errors = [FieldError(field="title", message="must be a string of 1 to 255 characters", source="body")]
    body = ErrorBody(
        detail=error.default_detail,
        error_code=error.error_code,
        timestamp=_EXAMPLE_TIME,
        path="/api/v1/...",
        status_code=error.status_code,
        errors=errors,
    )
    value = {key: getattr(body, key) for key in body.__struct_fields__ if getattr(body, key) is not None}
    value["timestamp"] = _EXAMPLE_TIME.isoformat().replace("+00:00", "Z")
    if errors:
        value["errors"] = [{"field": e.field, "message": e.message, "source": e.source} for e in errors]
    return Example(summary=error.error_code, value=value)


def error_responses(*errors: type[AppError]) -> dict[int, ResponseSpec]:
    """OpenAPI responses for these errors: one entry per status, one example per error code."""
    by_status: dict[int, list[type[AppError]]] = defaultdict(list)
    for error in dict.fromkeys(errors):  # unique, in order
        by_status[error.status_code].append(error)
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            generate_examples=False,
            description=f"{HTTPStatus(status).phrase}: " + ", ".join(e.error_code for e in group),
            examples=[_example(e) for e in group],
        )
        for status, group in sorted(by_status.items())
    }


def _refuse_unknown_docs_path(request: Request[Any, Any, Any]) -> None:
    """Litestar answers unknown paths under the docs with an HTML page of its own; we want our 404 body."""
    if request.route_handler.handler_name == "handle_schema_path_not_found":
        raise NotFoundException


def openapi_config(version: str, *, enabled: bool = True) -> OpenAPIConfig | None:
    """Scalar at ``/api/docs``, Swagger UI and ReDoc beside it, the schema at ``/api/docs/openapi.json``.

    None (no docs route at all) when ``DOCS_ENABLED=false``: every docs path is then an unknown
    route, a 404 in the contract's error body.
    """
    if not enabled:
        return None
    return OpenAPIConfig(
        title="Todo Service API",
        version=version,
        description=(
            "A Todo REST API. Register or log in to get a bearer token, then manage the tasks under "
            "`/api/v1/users/{user_id}/tasks`. Every error has the body "
            "`{detail, error_code, timestamp, path, status_code}`."
        ),
        tags=[
            Tag(name="auth", description="Accounts and tokens"),
            Tag(name="users", description="The caller's own account"),
            Tag(name="tasks", description="A user's tasks"),
            Tag(name="system", description="Health and readiness probes"),
        ],
        render_plugins=[
            # Pinned: "latest" would let a CDN release change (or break) the pages, and their CSP.
            ScalarRenderPlugin(path="/", version=SCALAR_VERSION),
            SwaggerRenderPlugin(path="/swagger"),
            RedocRenderPlugin(path="/redoc", js_url=REDOC_JS_URL),
        ],
        openapi_router=Router(
            path=DOCS_PATH,
            route_handlers=[],
            include_in_schema=False,
            before_request=_refuse_unknown_docs_path,
            opt={RATE_LIMIT: False, UNTRACED: True},  # the docs are never rate limited, nor traced
        ),
        use_handler_docstrings=True,
        create_examples=False,
    )
