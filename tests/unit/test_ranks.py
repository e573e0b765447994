"""Manual order: keys between keys, appends that stay short, the rebalancing threshold."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from todo_service.tasks.ranks import (
    DIGITS,
    MAX_KEY_LENGTH,
    RankError,
    is_key,
    key_between,
    spread,
    time_key,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (None, None, "n0"),
        ("n0", None, "n1"),
        ("nz", None, "o00"),
        (None, "n0", "mz"),
        (None, "mz", "my"),
        ("n0", "n1", "n0i"),
        ("n0i", "n1", "n0r"),
        ("n0", "n0i", "n09"),
        ("n0", "n2", "n1"),
        ("mz", "n0", "mzi"),
        ("n0z", "n1", "n0zi"),
        ("a" + "0" * 12 + "1", None, "a" + "0" * 12 + "2"),
    ],
)
def test_key_between_table(a: str | None, b: str | None, expected: str) -> None:
    key = key_between(a, b)
    assert key == expected
    assert is_key(key)
    assert a is None or a < key
    assert b is None or key < b


@pytest.mark.parametrize(
    ("a", "b"),
    [("n1", "n0"), ("n0", "n0"), ("n00", None), ("x", None), (None, "N0"), ("n0-", None), ("", None)],
)
def test_bad_keys_are_refused(a: str | None, b: str | None) -> None:
    with pytest.raises(RankError):
        key_between(a, b)


def test_is_key() -> None:
    assert is_key("n0")
    assert is_key(time_key(datetime.now(UTC)))
    assert not is_key("a" + "0" * 13)  # the smallest integer has nothing before it
    assert not is_key("n01230")  # a fraction never ends in 0
    assert not is_key("z")  # the head promises 13 digits
    assert not is_key("n" + "1" * 200)


def test_appends_stay_short() -> None:
    keys = spread(100_000)
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert max(map(len, keys)) <= 5


def test_prepends_stay_short() -> None:
    key = "n0"
    for _ in range(10_000):
        before = key_between(None, key)
        assert before < key
        key = before
    assert len(key) <= 4


def test_inserting_into_one_gap_reaches_the_rebalancing_threshold_rarely() -> None:
    """Always between the same left neighbour and the last insert: the worst case for length."""
    a, b, inserts = "n0", "n1", 0
    while len(b) <= MAX_KEY_LENGTH:
        b = key_between(a, b)
        inserts += 1
    assert inserts >= 150
    a, b, inserts = "n0", "n1", 0
    while len(a) <= MAX_KEY_LENGTH:
        a = key_between(a, b)
        inserts += 1
    assert inserts >= 150


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=300))
def test_random_moves_keep_a_total_order(choices: list[int]) -> None:
    """Insert at random places of a list: the keys always sort in the list's order, all distinct."""
    order = spread(3)
    for choice in choices:
        place = choice % (len(order) + 1)
        left = order[place - 1] if place > 0 else None
        right = order[place] if place < len(order) else None
        order.insert(place, key_between(left, right))
        assert order[place] == key_between(left, right)
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    assert all(is_key(key) for key in order)


def test_time_keys_follow_creation_order() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    instants = [start + timedelta(microseconds=random.randrange(10**12)) for _ in range(1000)]  # noqa: S311
    keys = [time_key(instant) for instant in instants]
    assert sorted(keys) == [time_key(instant) for instant in sorted(instants)]
    assert time_key(start) < time_key(start + timedelta(microseconds=1))
    assert len(time_key(start)) == 11
    assert time_key(datetime(1960, 1, 1, tzinfo=UTC)) == "w" + "0" * 10
    # A task moved to the end (an increment) sorts before a task created a moment later.
    moved = key_between(time_key(start), None)
    assert time_key(start) < moved < time_key(start + timedelta(milliseconds=1))


def test_rebalanced_keys_sort_before_new_tasks() -> None:
    assert spread(1000)[-1] < time_key(datetime(2000, 1, 1, tzinfo=UTC))
    assert set("".join(spread(1000))) <= set(DIGITS)
