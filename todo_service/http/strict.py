"""Strict request bodies: decoded without coercion, every failing field reported at once, in our words.

Litestar converts handler arguments with msgspec's lax mode (query strings need it), which would
also take ``"true"`` or ``1`` for a boolean in a JSON body, and msgspec stops at the first error.
So bodies (every :class:`RequestBody`) are decoded here instead, through Litestar's public DTO
hooks: :class:`StrictBodies` hands each handler whose ``data`` is a ``RequestBody`` a
:class:`StrictBodyDTO`, and :class:`StrictBodySchema` documents those bodies with
``additionalProperties: false``.

A valid body costs one typed ``msgspec.json.decode`` (strict) plus a check of its datetime and
case-folded fields. Only a body that fails is decoded a second time, untyped, to find every
failing field and say what each one must be (from the type itself, never from msgspec's message).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, get_type_hints

import msgspec
from litestar.dto import AbstractDTO
from litestar.openapi.spec import Example
from litestar.params import KwargDefinition
from litestar.plugins import OpenAPISchemaPlugin, SerializationPlugin
from litestar.typing import FieldDefinition

from todo_service.core.errors import FieldError, MalformedRequest, ValidationFailed
from todo_service.core.schema import FOLDS_CASE, PATTERN_MEANINGS, RequestBody

if TYPE_CHECKING:
    from collections.abc import Generator

    from litestar import Request
    from litestar.datastructures import MultiDict
    from litestar.dto.data_structures import DTOFieldDefinition
    from litestar.handlers import HTTPRouteHandler
    from litestar.openapi.spec import Reference, Schema

__all__ = (
    "BodyModel",
    "StrictBodies",
    "StrictBodyDTO",
    "StrictBodySchema",
    "check_query",
    "decode_body",
    "describe",
    "must_be",
    "out_of_range",
    "query_problems",
)

T = TypeVar("T")
B = TypeVar("B", bound=RequestBody)
_OFFSETLESS_EXAMPLE = "2030-01-31T17:00:00Z"


def describe(info: msgspec.inspect.Type) -> str:  # noqa: C901, PLR0911, PLR0912  (one branch per kind of type)
    """What a value of this type is, in words a client reads ("a string of 1 to 255 characters")."""
    if isinstance(info, msgspec.inspect.Metadata):
        return describe(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        kinds = [describe(t) for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        nullable = any(isinstance(t, msgspec.inspect.NoneType) for t in info.types)
        return " or ".join([*kinds, *(["null"] if nullable else [])])
    if isinstance(info, msgspec.inspect.BoolType):
        return "true or false"
    if isinstance(info, msgspec.inspect.IntType):
        return "an integer" + _bounds(info.ge, info.le, info.gt, info.lt)
    if isinstance(info, msgspec.inspect.FloatType):
        return "a number" + _bounds(info.ge, info.le, info.gt, info.lt)
    if isinstance(info, msgspec.inspect.StrType):
        text = "a string" + _length(info.min_length, info.max_length, "character")
        if info.pattern is not None:
            text += " " + PATTERN_MEANINGS.get(info.pattern, f"matching {info.pattern}")
        return text
    if isinstance(info, msgspec.inspect.EnumType):
        return "one of " + ", ".join(str(member.value) for member in info.cls)
    if isinstance(info, msgspec.inspect.LiteralType):
        return "one of " + ", ".join(str(value) for value in info.values)
    if isinstance(info, msgspec.inspect.DateTimeType):
        offset = " with a UTC offset" if info.tz else ""
        return f"an ISO 8601 date and time{offset}, like {_OFFSETLESS_EXAMPLE}"
    if isinstance(info, msgspec.inspect.UUIDType):
        return "a UUID"
    if isinstance(info, msgspec.inspect.ListType | msgspec.inspect.VarTupleType | msgspec.inspect.SetType):
        return "a list" + _length(info.min_length, info.max_length, "item")
    if isinstance(info, msgspec.inspect.NoneType):
        return "null"
    return "a valid value"


def must_be(annotation: object) -> str:
    """The message for a value that is not of ``annotation``: ``must be ...``."""
    return "must be " + describe(msgspec.inspect.type_info(annotation))


def _bounds(ge: float | None, le: float | None, gt: float | None, lt: float | None) -> str:
    if ge is not None and le is not None:
        return f" from {ge:,} to {le:,}"
    parts = []
    if ge is not None:
        parts.append(f"at least {ge:,}")
    elif gt is not None:
        parts.append(f"greater than {gt:,}")
    if le is not None:
        parts.append(f"at most {le:,}")
    elif lt is not None:
        parts.append(f"less than {lt:,}")
    return (" " + " and ".join(parts)) if parts else ""


def _length(low: int | None, high: int | None, unit: str) -> str:
    if low is not None and high is not None:
        return f" of {low} to {high} {unit}s"
    if high is not None:
        return f" of at most {high} {unit}s"
    if low:
        return f" of at least {low} {unit}{'s' if low > 1 else ''}"
    return ""


def out_of_range(value: datetime) -> bool:
    """Whether an aware datetime has no UTC equivalent (``0001-01-01T00:00:00+14:00``)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return True
    return False


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    annotation: Any
    info: msgspec.inspect.Type
    required: bool
    datetime: bool
    folds_to: int | None  # the longest value once lower-cased, for fields compared case-insensitively


@dataclasses.dataclass(frozen=True, slots=True)
class BodyModel(Generic[B]):
    """What decoding one body type needs, worked out once per type."""

    model: type[B]
    decoder: msgspec.json.Decoder[B]
    fields: tuple[_Field, ...]
    checked: tuple[_Field, ...]  # fields a successful decode must still check

    @classmethod
    def of(cls, model: type[B]) -> BodyModel[B]:
        """The (cached) decoding plan of ``model``."""
        return _plan(model)

    @classmethod
    def plan(cls, model: type[B]) -> BodyModel[B]:
        """Work out the decoding plan of ``model`` (see :meth:`of`, which keeps it)."""
        hints = get_type_hints(model, include_extras=True)
        fields = tuple(
            _Field(
                name=field.encode_name,
                annotation=hints[field.name],
                info=field.type,
                required=field.required,
                datetime=_has(field.type, msgspec.inspect.DateTimeType),
                folds_to=_folds_to(field.type),
            )
            for field in msgspec.inspect.type_info(model).fields  # type: ignore[attr-defined]
        )
        checked = tuple(field for field in fields if field.datetime or field.folds_to is not None)
        return cls(model=model, decoder=msgspec.json.Decoder(model), fields=fields, checked=checked)

    def decode(self, body: bytes) -> B:
        """The body as ``self.type``, or every failing field in one 422.

        Raises:
            MalformedRequest: the bytes are not UTF-8 or not JSON.
            ValidationFailed: fields are missing, unknown, of the wrong type or out of bounds.
        """
        try:
            value = self.decoder.decode(body)
        except (msgspec.ValidationError, UnicodeDecodeError, msgspec.DecodeError):
            raise self._explain(body) from None
        if self.checked and (errors := self._check(value)):
            raise _failed(errors)
        return value

    def convert(self, value: object) -> B:
        """``value`` (already parsed JSON) as ``self.type``, under the same rules as :meth:`decode`."""
        return self.decode(msgspec.json.encode(value))

    def _check(self, value: B) -> list[FieldError]:
        errors = []
        for field in self.checked:
            item = getattr(value, field.name, None)
            if isinstance(item, datetime) and field.datetime and out_of_range(item):
                errors.append(FieldError(field=field.name, message="is out of range", source="body"))
            elif isinstance(item, str) and field.folds_to is not None and len(item.lower()) > field.folds_to:
                message = f"must be at most {field.folds_to} characters once lower-cased"
                errors.append(FieldError(field=field.name, message=message, source="body"))
        return errors

    def _explain(self, body: bytes) -> MalformedRequest | ValidationFailed:  # noqa: C901  (one rule per branch)
        """Decode again, untyped, to name every failing field."""
        try:
            raw = msgspec.json.decode(body)
        except UnicodeDecodeError:
            return MalformedRequest("The request body is not valid UTF-8")
        except msgspec.DecodeError:
            return MalformedRequest()
        if not isinstance(raw, dict):
            return _failed([FieldError(field="body", message="must be a JSON object", source="body")])
        known = {field.name for field in self.fields}
        errors = [
            FieldError(field=str(name), message="is not a field of this request", source="body")
            for name in raw
            if name not in known
        ]
        for field in self.fields:
            if field.name not in raw:
                if field.required:
                    errors.append(FieldError(field=field.name, message="is required", source="body"))
                continue
            try:
                msgspec.convert(raw[field.name], field.annotation, strict=True)
            except msgspec.ValidationError:
                errors.append(FieldError(field=field.name, message="must be " + describe(field.info), source="body"))
        if not errors:  # every field on its own is fine: a rule of the whole body (e.g. __post_init__) failed
            try:
                msgspec.convert(raw, self.model, strict=True)
            except msgspec.ValidationError:
                errors.append(FieldError(field="body", message="is not a valid request", source="body"))
            else:
                errors.extend(self._check(msgspec.convert(raw, self.model, strict=True)))
        return _failed(errors)


def _failed(errors: list[FieldError]) -> ValidationFailed:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"Invalid {first.field}: {first.message}{more}", errors=errors)


def _has(info: msgspec.inspect.Type, kind: type[msgspec.inspect.Type]) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _has(info.type, kind)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_has(t, kind) for t in info.types)
    return isinstance(info, kind)


def _folds_to(info: msgspec.inspect.Type) -> int | None:
    if isinstance(info, msgspec.inspect.UnionType):
        return next((n for t in info.types if (n := _folds_to(t)) is not None), None)
    if isinstance(info, msgspec.inspect.Metadata) and (info.extra or {}).get(FOLDS_CASE):
        inner = info.type
        return inner.max_length if isinstance(inner, msgspec.inspect.StrType) else None
    return None


_PLANS: dict[object, BodyModel[Any]] = {}


def _plan(model: type[Any]) -> BodyModel[Any]:
    if (plan := _PLANS.get(model)) is None:
        plan = _PLANS[model] = BodyModel.plan(model)
    return plan


def decode_body(body: bytes, model: type[B]) -> B:
    """Decode ``body`` strictly as ``model`` (see :meth:`BodyModel.decode`)."""
    return BodyModel.of(model).decode(body)


class StrictBodyDTO(AbstractDTO[T]):
    """A DTO that only decodes: ``data`` of a handler, strictly, with every error at once.

    Litestar skips its own conversion of ``data`` when a DTO has decoded it. Responses are not
    touched (handlers that take a body return other types).
    """

    @classmethod
    def generate_field_definitions(
        cls,
        model_type: type[Any],  # noqa: ARG003  (the base's signature)
    ) -> Generator[DTOFieldDefinition, None, None]:
        """Unused: nothing is transferred field by field."""
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:  # noqa: ARG003
        """Unused: bodies are decoded whole."""
        return False

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: Any = None,  # noqa: ANN401  (Litestar's DTOBackend, whose module is private)
    ) -> None:
        """No transfer backend: :meth:`decode_bytes` decodes by itself."""

    @classmethod
    def create_openapi_schema(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,  # noqa: ARG003  (the base's signature)
        schema_creator: Any,  # noqa: ANN401  (Litestar's SchemaCreator, whose module is private)
    ) -> Reference | Schema:
        """The body's own schema (see :class:`StrictBodySchema`)."""
        schema: Reference | Schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(cls.model_type, kwarg_definition=field_definition.kwarg_definition)
        )
        return schema

    def decode_bytes(self, value: bytes) -> T:
        """Decode the raw body strictly."""
        decoded: T = _plan(self.model_type).decode(value)
        return decoded

    def decode_builtins(self, value: dict[str, Any]) -> T:
        """Convert an already parsed body strictly."""
        decoded: T = _plan(self.model_type).convert(value)
        return decoded


class StrictBodies(SerializationPlugin):
    """Gives every handler whose ``data`` is a :class:`RequestBody` a :class:`StrictBodyDTO`."""

    def __init__(self) -> None:
        self._dtos: dict[type[Any], type[AbstractDTO[Any]]] = {}

    def supports_type(self, field_definition: FieldDefinition) -> bool:
        """Request bodies, and nothing else."""
        return field_definition.is_subclass_of(RequestBody)

    def create_dto_for_type(self, field_definition: FieldDefinition) -> type[AbstractDTO[Any]]:
        """One DTO class per body type."""
        model = field_definition.annotation
        if model not in self._dtos:
            self._dtos[model] = StrictBodyDTO[model]  # type: ignore[valid-type]
        return self._dtos[model]


class StrictBodySchema(OpenAPISchemaPlugin):
    """Request bodies in the OpenAPI schema: ``additionalProperties: false``, constraints from their ``Meta``."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """Request bodies, and nothing else."""
        return not field_definition.is_union and field_definition.is_subclass_of(RequestBody)

    def to_openapi_schema(
        self,
        field_definition: FieldDefinition,
        schema_creator: Any,  # noqa: ANN401  (Litestar's SchemaCreator, whose module is private)
    ) -> Schema:
        """An object schema that lists every field, refuses others and marks read-only fields."""
        model = field_definition.type_
        hints = get_type_hints(model, include_extras=True)
        info = msgspec.inspect.type_info(model)
        properties = {
            field.encode_name: FieldDefinition.from_annotation(
                hints[field.name],
                name=field.encode_name,
                kwarg_definition=_kwarg_definition(field.type),
            )
            for field in info.fields  # type: ignore[attr-defined]
        }
        required = sorted(field.encode_name for field in info.fields if field.required)  # type: ignore[attr-defined]
        schema: Schema = schema_creator.create_component_schema(
            field_definition, required=required, property_fields=properties
        )
        schema.additional_properties = False
        schema.description = (model.__doc__ or "").strip().splitlines()[0] or None
        return schema


def _kwarg_definition(info: msgspec.inspect.Type) -> KwargDefinition | None:
    """A field's constraints and docs, as Litestar's schema generator reads them."""
    if isinstance(info, msgspec.inspect.UnionType):
        inner = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        info = inner[0] if len(inner) == 1 else info
    kwargs: dict[str, Any] = {}
    if isinstance(info, msgspec.inspect.Metadata):
        docs = info.extra_json_schema or {}
        kwargs.update({key: docs[key] for key in ("title", "description") if key in docs})
        if examples := docs.get("examples"):
            kwargs["examples"] = [Example(value=example) for example in examples]
        if (info.extra or {}).get("read_only"):
            kwargs["read_only"] = True
        info = info.type
    if isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        kwargs.update(ge=info.ge, le=info.le, gt=info.gt, lt=info.lt, multiple_of=info.multiple_of)
    elif isinstance(info, msgspec.inspect.StrType):
        kwargs.update(min_length=info.min_length, max_length=info.max_length, pattern=info.pattern)
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    return KwargDefinition(**kwargs) if kwargs else None


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
        value = values[0]
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
        raise _failed(errors)
