"""What a value must be, in words a client reads: the messages of strict input (bodies and queries).

Messages come from the declared type itself (its kind, bounds, lengths, pattern), never from a
decoder's own wording, so they read the same wherever input is checked.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from todo_service.core.errors import FieldError, ValidationFailed
from todo_service.core.schema import PATTERN_MEANINGS

__all__ = ("describe", "invalid", "must_be", "out_of_range")

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


def invalid(errors: list[FieldError]) -> ValidationFailed:
    """One 422 for every failing field; the first leads the detail."""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"Invalid {first.field}: {first.message}{more}", errors=errors)
