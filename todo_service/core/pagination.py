"""Pages of rows with their total, in one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter
from sqlalchemy import Integer, Select, bindparam, func, select

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql import FromClause
    from sqlalchemy.sql.elements import UnaryExpression

    from todo_service.db.statements import Statements

__all__ = ("Page", "PageNumber", "PageQuery", "PageSize", "fetch_page")

T = TypeVar("T")
_LIMIT = "page_limit"
_OFFSET = "page_offset"

# Query parameters every listing takes.
PageNumber = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="Page number, from 1 (at most 1,000,000)")]
PageSize = Annotated[int, QueryParameter(ge=1, le=100, description="Items per page (1..100)")]


class Page(msgspec.Struct, Generic[T], frozen=True):
    """One page of a listing and where it sits in the whole."""

    items: list[T]
    total: int
    page: int
    limit: int
    pages: int

    @classmethod
    def of(cls, items: list[T], *, total: int, page: int, limit: int) -> Page[T]:
        """A page, with ``pages`` worked out from ``total`` and ``limit``."""
        return cls(items=items, total=total, page=page, limit=limit, pages=-(-total // limit))


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A listing's two statements: a page of rows with the total riding along, and the total alone.

    Built once per kind of listing (their values are parameters, the page's among them), so a
    request only supplies values.
    """

    rows: Select[Any]
    total: Select[Any]

    @classmethod
    def build(
        cls,
        *,
        source: FromClause,
        columns: Sequence[InstrumentedAttribute[Any]],
        where: Sequence[ColumnElement[bool]],
        guard: ColumnElement[bool],
        order_by: Sequence[UnaryExpression[Any]],
    ) -> PageQuery:
        """The statements of a listing; ``guard`` (the caller's permission) applies to the rows."""
        total = select(func.count()).select_from(source).where(*where).scalar_subquery()
        rows = (
            select(total, *columns)
            .where(*where, guard)
            .order_by(*order_by)
            .limit(bindparam(_LIMIT, type_=Integer))
            .offset(bindparam(_OFFSET, type_=Integer))
        )
        return cls(rows=rows, total=select(total))


async def fetch_page(  # noqa: PLR0913  (the query, its values, and the page)
    db: Statements,
    query: PageQuery,
    params: Mapping[str, Any],
    *,
    page: int,
    limit: int,
    on_empty: Callable[[], Awaitable[None]],
) -> tuple[list[tuple[Any, ...]], int]:
    """Rows of one page and the total of the listing, in one round trip (two past the last page).

    An empty page calls ``on_empty`` (which raises if the guard refused) and, past the first page,
    counts on its own: the total stays right however far the page is.
    """
    values = {**params, _LIMIT: limit, _OFFSET: (page - 1) * limit}
    rows = await db.all(query.rows, values)
    if rows:
        return [tuple(row[1:]) for row in rows], int(rows[0][0])
    await on_empty()
    if page == 1:
        return [], 0
    counted = await db.one(query.total, values)
    return [], int(counted[0]) if counted else 0
