"""Strict request bodies: decoded without coercion, every failing field reported at once, in our words.

Litestar converts handler arguments with msgspec's lax mode (query strings need it), which would
also take ``"true"`` or ``1`` for a boolean in a JSON body, and msgspec stops at the first error.
So bodies (every :class:`RequestBody`) are decoded here instead, through Litestar's public DTO
hooks: :class:`StrictBodies` hands each handler whose ``data`` is a ``RequestBody`` a
:class:`StrictBodyDTO`, and :class:`~todo_service.http.body_schema.StrictBodySchema` documents
those bodies with ``additionalProperties: false``.

A valid body costs one typed ``msgspec.json.decode`` (strict) plus a check of its datetime and
case-folded fields. Only a body that fails is decoded a second time, untyped, to find every
failing field and say what each one must be (from the type itself, never from msgspec's message).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_type_hints

import msgspec
from litestar.dto import AbstractDTO
from litestar.plugins import SerializationPlugin
from litestar.typing import FieldDefinition

from todo_service.core.errors import FieldError, MalformedRequest, ValidationFailed
from todo_service.core.schema import FOLDS_CASE, RequestBody
from todo_service.http.wording import describe, invalid, out_of_range

if TYPE_CHECKING:
    from collections.abc import Generator

    from litestar.dto.data_structures import DTOFieldDefinition
    from litestar.openapi.spec import Reference, Schema

__all__ = ("BodyModel", "StrictBodies", "StrictBodyDTO", "decode_body")

T = TypeVar("T")
B = TypeVar("B", bound=RequestBody)


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
            raise invalid(errors)
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
            return invalid([FieldError(field="body", message="must be a JSON object", source="body")])
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
        return invalid(errors)


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
