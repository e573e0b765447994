"""Conditional requests (RFC 9110 §13): ``If-None-Match`` for reads, ``If-Match`` for writes."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

from litestar import Response
from litestar.params import HeaderParameter

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from todo_service.core.pagination import Page

__all__ = (
    "ANY",
    "IfMatch",
    "IfNoneMatch",
    "Versioned",
    "conditional",
    "entity_tags",
    "items_etag",
    "none_match",
    "page_etag",
    "revisions_in",
)

ANY = "*"

IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", max_length=4096, description="An ETag you hold: 304 while it is current"),
]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        max_length=4096,
        description="The task's ETag: the write happens only if the task is still at it (else 412); * or none: always",
    ),
]

# An entity tag, weak or strong: W/"..." or "..." (no quotes inside).
_TAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


def entity_tags(header: str) -> list[str] | None:
    """The opaque tags of an ``If-Match``/``If-None-Match`` value, weak prefixes dropped; None for ``*``.

    A malformed list yields the tags read before the fault: they can still match, the rest cannot.
    """
    if header.strip() == ANY:
        return None
    tags: list[str] = []
    position = 0
    while position < len(header) and (found := _TAG.match(header, position)):
        tags.append(found.group(2))
        position = found.end()
    return tags


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` lets the request through (False: answer 304); weak comparison."""
    if header is None:
        return True
    tags = entity_tags(header)
    return tags is not None and etag not in tags


MAX_REVISION = 2**63 - 1  # BIGINT


def revisions_in(header: str | None) -> tuple[int, ...] | None:
    """The revisions an ``If-Match`` names (None: no header, or ``*``: any current version).

    A tag that is not one of ours names no revision: ``(-1,)`` stands for "matches nothing".
    """
    if header is None:
        return None
    tags = entity_tags(header)
    if tags is None:
        return None
    # Ours are 64-bit integers: a longer or larger number names none (and must not reach the database).
    numbers = (int(tag[1:-1]) for tag in tags if tag[1:-1].isdigit() and len(tag) < 24)  # noqa: PLR2004
    revisions = tuple(number for number in numbers if number <= MAX_REVISION)
    return revisions or (-1,)


def conditional(content: Any, etag: str, if_none_match: str | None) -> Response[Any]:  # noqa: ANN401
    """``content`` with its ``ETag``, or 304 (no body) when ``If-None-Match`` holds that tag."""
    if none_match(if_none_match, etag):
        return Response(content, headers={"ETag": etag})
    return Response(None, status_code=304, headers={"ETag": etag})


class Versioned(Protocol):
    """An item of a listing: its id and its own entity tag (a task, a list, a label)."""

    @property
    def id(self) -> UUID:
        """The item's id."""
        ...  # pragma: no cover

    @property
    def etag(self) -> str:
        """The item's ``ETag``, quotes included."""
        ...  # pragma: no cover


V = TypeVar("V", bound=Versioned)


def page_etag(page: Page[V]) -> str:
    """The strong entity tag of a page of a listing: its total, its place, and each item's id and tag.

    It changes exactly when the page's body would: an item added, changed or removed (the total, or
    the items, move), and stays while nothing in the page or its total changed.
    """
    return items_etag(f"{page.total}/{page.page}/{page.limit}", page.items)


def items_etag(place: str, items: Sequence[Versioned]) -> str:
    """The strong entity tag of ``items`` shown at ``place`` (what else the body holds that can change)."""
    digest = hashlib.blake2b(place.encode(), digest_size=16)
    digest.update(b"".join(item.id.bytes + item.etag.encode() for item in items))
    return f'"{digest.hexdigest()}"'
