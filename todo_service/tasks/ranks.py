"""Manual order: lexicographic ranks, so that moving a task rewrites one row, not the list.

A rank is a short string of ``0-9a-z``; tasks are ordered by it (byte order, the ``C`` collation on
PostgreSQL, SQLite's default). :func:`key_between` makes a key strictly between two neighbours,
so a move is one ``UPDATE`` of the moved task. The scheme is the fractional indexing of
Figma/rocicorp in base 36: an *integer part* whose first character encodes its length (``n``..``z``
for 1..13 digits, ``m``..``a`` for negative ones) and a *fraction* that never ends in ``0``.

- Appending (``key_between(last, None)``) increments the integer part: 100,000 appends make keys
  of at most 5 characters. Prepending decrements it.
- Inserting between two neighbours takes the midpoint of their fractions: each insert into the
  same gap adds about one character every five times (log2 36 ≈ 5.2).
- A new task takes :func:`time_key` of its creation instant (the integer part is the microseconds
  since 1970, 10 digits): tasks are appended in creation order with no read of the list.

Rebalancing (:data:`MAX_KEY_LENGTH`): a move whose key would be longer rewrites the whole group
(the tasks of one list and parent) with :func:`spread`'s keys, in one transaction, in two phases
(temporary keys first) under the group's unique index. It takes about 170 inserts into the same
gap to get there. Concurrent moves that computed the same key meet the unique index and retry with
the neighbours they now see: the order stays total and every key distinct.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ("DIGITS", "MAX_KEY_LENGTH", "RankError", "is_key", "key_between", "spread", "time_key")

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE = len(DIGITS)
_ZERO = DIGITS[0]
_TOP = DIGITS[-1]
INTEGER_ZERO = "n0"
_SMALLEST_INTEGER = "a" + _ZERO * 13
MAX_KEY_LENGTH = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RankError(ValueError):
    """The keys given cannot be ordered (not keys, or not ``a < b``), or no key is left on that side."""


def _integer_length(head: str) -> int:
    if "n" <= head <= "z":
        return ord(head) - ord("n") + 2
    if "a" <= head <= "m":
        return ord("m") - ord(head) + 2
    msg = f"invalid rank head {head!r}"
    raise RankError(msg)


def _integer_part(key: str) -> str:
    length = _integer_length(key[0])
    if length > len(key):
        msg = f"invalid rank {key!r}"
        raise RankError(msg)
    return key[:length]


def is_key(key: str) -> bool:
    """Whether ``key`` is a well-formed rank."""
    if not key or len(key) > 2 * MAX_KEY_LENGTH or any(char not in DIGITS for char in key):
        return False
    try:
        integer = _integer_part(key)
    except RankError:
        return False
    return key != _SMALLEST_INTEGER and not key[len(integer) :].endswith(_ZERO)


def _midpoint(a: str, b: str | None) -> str:
    """A fraction strictly between fractions ``a`` and ``b`` (None: 1), neither ending in ``0``."""
    if b is not None:
        n = 0
        while n < len(b) and (a[n] if n < len(a) else _ZERO) == b[n]:
            n += 1
        if n > 0:
            return b[:n] + _midpoint(a[n:], b[n:])
    digit_a = DIGITS.index(a[0]) if a else 0
    digit_b = DIGITS.index(b[0]) if b is not None else _BASE
    if digit_b - digit_a > 1:
        return DIGITS[(digit_a + digit_b + 1) // 2]
    if b is not None and len(b) > 1:
        return b[:1]
    return DIGITS[digit_a] + _midpoint(a[1:], None)


def _increment(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in range(len(digits) - 1, -1, -1):
        if digits[i] != _TOP:
            digits[i] = DIGITS[DIGITS.index(digits[i]) + 1]
            return head + "".join(digits)
        digits[i] = _ZERO
    if head == "m":
        return "n" + _ZERO
    if head == "z":
        return None
    new_head = chr(ord(head) + 1)
    if new_head > "n":
        digits.append(_ZERO)
    else:
        digits.pop()
    return new_head + "".join(digits)


def _decrement(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in range(len(digits) - 1, -1, -1):
        if digits[i] != _ZERO:
            digits[i] = DIGITS[DIGITS.index(digits[i]) - 1]
            return head + "".join(digits)
        digits[i] = _TOP
    if head == "n":
        return "m" + _TOP
    if head == "a":
        return None
    new_head = chr(ord(head) - 1)
    if new_head < "m":
        digits.append(_TOP)
    else:
        digits.pop()
    return new_head + "".join(digits)


def key_between(a: str | None, b: str | None) -> str:  # noqa: C901, PLR0911  (the cases of the scheme, in one place)
    """A key strictly between ``a`` and ``b`` (None: the start or the end of the group)."""
    for key in (a, b):
        if key is not None and not is_key(key):
            msg = f"invalid rank {key!r}"
            raise RankError(msg)
    if a is not None and b is not None and a >= b:
        msg = f"ranks out of order: {a!r} >= {b!r}"
        raise RankError(msg)
    if a is None:
        if b is None:
            return INTEGER_ZERO
        integer_b = _integer_part(b)
        if integer_b == _SMALLEST_INTEGER:
            return integer_b + _midpoint("", b[len(integer_b) :])
        if integer_b < b:
            return integer_b
        before = _decrement(integer_b)
        if before is None:  # pragma: no cover  (36**13 decrements from the start)
            msg = "no rank left before the first"
            raise RankError(msg)
        return before
    integer_a = _integer_part(a)
    fraction_a = a[len(integer_a) :]
    if b is None:
        after = _increment(integer_a)
        return integer_a + _midpoint(fraction_a, None) if after is None else after
    integer_b = _integer_part(b)
    if integer_a == integer_b:
        return integer_a + _midpoint(fraction_a, b[len(integer_b) :])
    after = _increment(integer_a)
    if after is not None and after < b:
        return after
    return integer_a + _midpoint(fraction_a, None)


def spread(count: int) -> list[str]:
    """``count`` short, increasing keys for a group being rebalanced (``n0``, ``n1``, ... ``nz``, ``o00``...)."""
    keys: list[str] = []
    key: str | None = None
    for _ in range(count):
        key = key_between(key, None)
        keys.append(key)
    return keys


def time_key(instant: datetime) -> str:
    """The rank of a task created at ``instant``: later instants sort after (10 digits until the year 5188)."""
    micros = max(0, (instant - _EPOCH) // timedelta(microseconds=1))
    digits = ""
    while micros:
        micros, digit = divmod(micros, _BASE)
        digits = DIGITS[digit] + digits
    digits = digits.rjust(10, _ZERO)
    return chr(ord("n") + len(digits) - 1) + digits
