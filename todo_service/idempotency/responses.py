"""The ``Idempotency-Key`` header of a route: run its work once, answer retries with the first response."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.params import HeaderParameter

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.idempotency.store import KEY_PATTERN, StoredResponse, fingerprint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from todo_service.db.statements import Statements
    from todo_service.idempotency.store import Idempotency
    from todo_service.security.access import Caller

__all__ = ("IdempotencyKey", "run_once")

_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        # Checked by run_once in the API's own words; the schema states the same rule.
        schema_extra={"pattern": KEY_PATTERN, "minLength": 1, "maxLength": 255},
        description=(
            "1..255 printable ASCII characters. The same key with the same request within 24 h answers the "
            "first response again (Idempotent-Replayed: true) and changes nothing."
        ),
    ),
]


async def run_once(
    request: Request[Caller, Any, Any],
    idempotency: Idempotency,
    key: str,
    work: Callable[[Statements], Awaitable[Response[Any]]],
) -> Response[Any]:
    """``work`` at most once for the caller's ``key``: the first response, or that response again.

    Raises:
        ValidationFailed: the key is not 1 to 255 printable ASCII characters.
    """
    if not _KEY.fullmatch(key):
        message = "must be 1 to 255 printable ASCII characters"
        field = FieldError(field="Idempotency-Key", message=message, source="header")
        raise ValidationFailed(f"Invalid Idempotency-Key: {message}", errors=[field])

    async def stored(db: Statements) -> StoredResponse:
        response = await work(db)
        headers = {name: value for name, value in response.headers.items() if name.lower() in {"location", "etag"}}
        # A Response made without a status takes the route's (Litestar fills it in later).
        status = response.status_code or request.route_handler.status_code or 200
        return StoredResponse(status=status, body=msgspec.json.encode(response.content), headers=headers)

    body = await request.body()
    request_fingerprint = fingerprint(request.method, request.scope["path"], body)
    response, replayed = await idempotency.run(request.user.user_id, key, request_fingerprint, stored)
    headers = {**response.headers, **({"Idempotent-Replayed": "true"} if replayed else {})}
    return Response(response.body, status_code=response.status, headers=headers, media_type=MediaType.JSON)
