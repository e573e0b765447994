"""Request bodies in the OpenAPI schema: ``additionalProperties: false``, constraints from their ``Meta``.

The schema says what :mod:`todo_service.http.strict` enforces: every field listed, no other field
accepted, read-only fields marked, bounds and examples from the fields' ``msgspec.Meta``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_type_hints

import msgspec
from litestar.openapi.spec import Example
from litestar.params import KwargDefinition
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from todo_service.core.schema import RequestBody

if TYPE_CHECKING:
    from litestar.openapi.spec import Schema

__all__ = ("StrictBodySchema",)


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
