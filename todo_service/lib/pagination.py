"""Pages of rows with their total, in one round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter
from sqlalchemy import func, select

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import InstrumentedAttribute
    from sqlalchemy.sql import FromClause
    from sqlalchemy.sql.elements import UnaryExpression

__all__ = ("Page", "PageNumber", "PageSize", "fetch_page")

T = TypeVar("T")

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


async def fetch_page(  # noqa: PLR0913  (each argument is one part of the statement)
    db: AsyncSession,
    *,
    source: FromClause,
    columns: Sequence[InstrumentedAttribute[Any]],
    where: Sequence[ColumnElement[bool]],
    guard: ColumnElement[bool],
    order_by: Sequence[UnaryExpression[Any]],
    page: int,
    limit: int,
    on_empty: Callable[[], Awaitable[None]],
) -> tuple[list[tuple[Any, ...]], int]:
    """Rows of one page and the total matching ``where``, with ``guard`` (the caller's permission).

    The total rides along as a scalar subquery, so a page costs one statement. An empty page calls
    ``on_empty`` (which raises if the guard refused) and, past the first page, counts on its own:
    the total stays right however far the page is.
    """
    total = select(func.count()).select_from(source).where(*where).scalar_subquery()
    statement = select(total, *columns).where(*where, guard).order_by(*order_by).limit(limit).offset((page - 1) * limit)
    rows = (await db.execute(statement)).all()
    if rows:
        return [tuple(row)[1:] for row in rows], int(rows[0][0])
    await on_empty()
    return [], 0 if page == 1 else int((await db.execute(select(total))).scalar_one())
