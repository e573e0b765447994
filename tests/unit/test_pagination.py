"""Page.of: ``pages`` is the ceiling of total / limit, and everything else is kept as given."""

from __future__ import annotations

import math

import msgspec
import pytest

from todo_service.core.pagination import Page


@pytest.mark.parametrize(
    ("total", "limit", "pages"),
    [
        (0, 1, 0),
        (0, 20, 0),
        (1, 1, 1),
        (1, 20, 1),
        (19, 20, 1),
        (20, 20, 1),
        (21, 20, 2),
        (40, 20, 2),
        (41, 20, 3),
        (99, 100, 1),
        (100, 100, 1),
        (101, 100, 2),
        (7, 3, 3),
        (10**9 + 1, 1, 10**9 + 1),
        (10**12, 7, 142857142858),
    ],
)
def test_pages_is_the_ceiling_of_total_over_limit(total: int, limit: int, pages: int) -> None:
    page: Page[str] = Page.of([], total=total, page=1, limit=limit)

    assert page.pages == pages


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 20, 100])
def test_pages_matches_ceil_for_every_small_total(limit: int) -> None:
    for total in range(250):
        assert Page.of([], total=total, page=1, limit=limit).pages == math.ceil(total / limit)


def test_items_total_page_and_limit_are_kept() -> None:
    items = ["a", "b"]

    page = Page.of(items, total=12, page=3, limit=5)

    assert page == Page(items=["a", "b"], total=12, page=3, limit=5, pages=3)
    assert page.items is items


def test_a_page_past_the_end_keeps_the_real_total() -> None:
    page: Page[str] = Page.of([], total=41, page=9, limit=20)

    assert (page.items, page.total, page.page, page.pages) == ([], 41, 9, 3)


def test_serializes_with_the_contract_keys() -> None:
    page = Page.of([{"id": 1}], total=1, page=1, limit=20)

    assert msgspec.json.decode(msgspec.json.encode(page)) == {
        "items": [{"id": 1}],
        "total": 1,
        "page": 1,
        "limit": 20,
        "pages": 1,
    }


def test_a_page_is_immutable() -> None:
    page: Page[str] = Page.of([], total=0, page=1, limit=20)

    with pytest.raises(AttributeError):
        page.total = 5  # type: ignore[misc]
