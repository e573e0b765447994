"""Bodies of the ``/users/{user_id}/labels`` routes."""

import unicodedata
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from todo_service.core.schema import NON_BLANK, RequestBody, explain_pattern

__all__ = ("DEFAULT_COLOR", "LabelCreate", "LabelRead", "LabelUpdate", "name_key")

DEFAULT_COLOR = "#808080"
LabelName = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=NON_BLANK, examples=["errands"])]
Color = Annotated[
    str,
    msgspec.Meta(
        pattern=explain_pattern(r"^#[0-9A-Fa-f]{6}$", "of a colour as #rrggbb (hexadecimal)"),
        description="#rrggbb (stored and returned lower-case)",
        examples=["#3b82f6"],
    ),
]


def name_key(name: str) -> str:
    """What makes two names the same label: NFKC-normalised and case-folded ("Straße" is "STRASSE")."""
    return unicodedata.normalize("NFKC", name).casefold()


class LabelRead(msgspec.Struct, frozen=True):
    """A label. ``etag`` is its ``ETag`` header value: send it back in ``If-Match``."""

    id: UUID
    user_id: UUID
    name: str
    color: str
    created_at: datetime
    updated_at: datetime
    etag: str


class LabelCreate(RequestBody):
    """A new label; its name is unique among the user's labels, case-insensitively."""

    name: LabelName
    color: Color = DEFAULT_COLOR


class LabelUpdate(RequestBody):
    """Rename or recolour a label: an omitted field stays as it is. Tasks keep it (they hold its id)."""

    name: LabelName | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET
