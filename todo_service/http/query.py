"""Strict query strings: unknown, repeated or invalid parameters are one 422 naming each of them.

Litestar ignores a query parameter a handler does not declare (``?complete=true`` would list every
task) and takes the last of repeated ones. :func:`check_query`, the app's ``before_request``
hook, checks every parameter against the handler's declared ones first, with the same words as
the body checks (:mod:`todo_service.http.wording`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from todo_service.core.errors import FieldError
from todo_service.http.wording import invalid, must_be, out_of_range

if TYPE_CHECKING:
    from litestar import Request
    from litestar.datastructures import MultiDict
    from litestar.handlers import HTTPRouteHandler

__all__ = ("check_query", "query_problems")


@dataclasses.dataclass(frozen=True, slots=True)
class _QueryParameter:
    name: str  # as sent in the URL
    annotation: Any  # with the parameter's bounds as msgspec constraints
    multiple: bool
    flag: bool  # a boolean: only "true" or "false"
    when: bool  # a datetime: its UTC equivalent must exist


_QUERY_PLAN = "strict_query"  # key of a handler's ``opt`` that keeps its query parameters
_MULTIPLE = (list, tuple, set, frozenset)


def _query_plan(handler: HTTPRouteHandler) -> dict[str, _QueryParameter]:
    """The query parameters a handler declares (worked out once, kept in its ``opt``)."""
    if (plan := handler.opt.get(_QUERY_PLAN)) is not None:
        return plan  # type: ignore[no-any-return]
    excluded = set(handler.resolve_dependencies()) | {"state", "headers", "cookies", "request", "socket"}
    excluded |= {"data", "query", "scope", "body"}
    for path in handler.paths:
        excluded |= {part.strip("{}").split(":")[0] for part in path.split("/") if part.startswith("{")}
    plan = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        param_type = getattr(kwarg, "param_type", None)
        if name in excluded or (param_type is not None and param_type.value != "query"):
            continue
        alias = getattr(kwarg, "query", None) or name
        annotation = field.annotation
        inner = next((t for t in field.inner_types if not t.is_none_type), field) if field.is_optional else field
        constraints = {
            key: value
            for key in ("ge", "le", "gt", "lt", "min_length", "max_length", "pattern")
            if (value := getattr(kwarg, key, None)) is not None
        }
        if (max_items := getattr(kwarg, "max_items", None)) is not None:  # a repeated parameter: how many
            constraints["max_length"] = max_items
        base = inner.annotation
        if constraints:
            base = Annotated[base, msgspec.Meta(**constraints)]
        annotation = base | None if field.is_optional else base
        plan[alias] = _QueryParameter(
            name=alias,
            annotation=annotation,
            multiple=inner.origin in _MULTIPLE,
            flag=inner.annotation is bool,
            when=inner.annotation is datetime,
        )
    handler.opt[_QUERY_PLAN] = plan
    return plan


def query_problems(handler: HTTPRouteHandler, params: MultiDict[Any]) -> list[FieldError]:
    """Every unknown, repeated or invalid query parameter of a request, in our words."""
    plan = _query_plan(handler)
    errors = []
    for name in params:
        parameter = plan.get(name)
        if parameter is None:
            errors.append(FieldError(field=name, message="is not a parameter of this route", source="query"))
            continue
        values = params.getall(name)
        if len(values) > 1 and not parameter.multiple:
            errors.append(FieldError(field=name, message="must be given once", source="query"))
            continue
        value = values if parameter.multiple else values[0]
        if parameter.flag:
            if value not in {"true", "false"}:
                errors.append(FieldError(field=name, message="must be true or false", source="query"))
            continue
        try:
            converted = msgspec.convert(value, parameter.annotation, strict=False)
        except msgspec.ValidationError:
            errors.append(FieldError(field=name, message=must_be(parameter.annotation), source="query"))
            continue
        if parameter.when and isinstance(converted, datetime) and converted.tzinfo and out_of_range(converted):
            errors.append(FieldError(field=name, message="is out of range", source="query"))
    return errors


async def check_query(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: refuse a request whose query the route does not define, or breaks.

    Raises:
        ValidationFailed: naming every unknown, repeated or invalid parameter.
    """
    if request.scope["query_string"] and (errors := query_problems(request.route_handler, request.query_params)):
        raise invalid(errors)
