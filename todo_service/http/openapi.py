"""OpenAPI docs (Scalar, Swagger UI, ReDoc) and the documented error responses of every route.

The three pages load their scripts from the service itself (:mod:`todo_service.http.docs_assets`),
pinned by the packages that carry them, and each gets its own CSP from the docs router's
``after_request`` hook (:mod:`todo_service.http.docs_csp`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import (
    OpenAPIRenderPlugin,
    RedocRenderPlugin,
    ScalarRenderPlugin,
    SwaggerRenderPlugin,
)
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
from todo_service.http.docs_assets import REDOC, SCALAR, SWAGGER_UI, asset_routers
from todo_service.http.docs_csp import DocsPolicies
from todo_service.http.hosts import InvalidHost
from todo_service.observability.traces import UNTRACED

if TYPE_CHECKING:
    from litestar import Request

__all__ = (
    "AUTHENTICATED",
    "DOCS_PATH",
    "PUBLIC",
    "WITH_BODY",
    "docs_plugins",
    "error_responses",
    "openapi_config",
)

DOCS_PATH = "/api/docs"
# No favicon request at all (Litestar's default icon is on a CDN); Swagger UI has its own.
_NO_FAVICON = "<link rel='icon' href='data:,'>"
_EMPTY_STYLESHEET = "data:text/css,"

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


def docs_plugins(docs_path: str) -> list[OpenAPIRenderPlugin]:
    """Scalar, Swagger UI and ReDoc, each loading its files from the service (see docs_assets)."""
    return [
        ScalarRenderPlugin(
            path="/",
            js_url=SCALAR.url(docs_path, "js/scalar.standalone.js"),
            # Scalar's bundle injects its own styles; the page must link a stylesheet (Litestar's
            # default is on a CDN): an empty one, inline.
            css_url=_EMPTY_STYLESHEET,
            favicon=_NO_FAVICON,
            options={
                "withDefaultFonts": False,  # its fonts are on its CDN: the system's instead
                "telemetry": False,
                # On localhost Scalar shows a toolbar of its hosted services and an "Ask AI" agent
                # that would send the schema to Scalar's servers: neither belongs in our docs.
                "showDeveloperTools": "never",
                "agent": {"disabled": True},
                "mcp": {"disabled": True},
            },
        ),
        SwaggerRenderPlugin(
            path="/swagger",
            js_url=SWAGGER_UI.url(docs_path, "swagger-ui-bundle.js"),
            css_url=SWAGGER_UI.url(docs_path, "swagger-ui.css"),
            standalone_preset_js_url=SWAGGER_UI.url(docs_path, "swagger-ui-standalone-preset.js"),
            favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_UI.url(docs_path, 'favicon-32x32.png')}'>",
        ),
        # ReDoc 3 no longer loads as a plain script tag (it uses import.meta): 2.x.
        RedocRenderPlugin(
            path="/redoc",
            js_url=REDOC.url(docs_path, "bundles/redoc.standalone.js"),
            google_fonts=False,
            favicon=_NO_FAVICON,
        ),
    ]


def openapi_config(version: str, *, enabled: bool = True) -> OpenAPIConfig | None:
    """Scalar at ``/api/docs``, Swagger UI and ReDoc beside it, the schema at ``/api/docs/openapi.json``.

    None (no docs route at all) when ``DOCS_ENABLED=false``: every docs path is then an unknown
    route, a 404 in the contract's error body.
    """
    if not enabled:
        return None
    plugins = docs_plugins(DOCS_PATH)
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
        render_plugins=plugins,
        openapi_router=Router(
            path=DOCS_PATH,
            route_handlers=asset_routers(),  # the pages' scripts, under <docs>/assets/
            include_in_schema=False,
            before_request=_refuse_unknown_docs_path,
            after_request=DocsPolicies(plugins).after_request,  # each page's CSP, on the docs routes only
            opt={RATE_LIMIT: False, UNTRACED: True},  # the docs are never rate limited, nor traced
        ),
        use_handler_docstrings=True,
        create_examples=False,
    )
