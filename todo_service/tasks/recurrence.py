"""Recurring tasks: an RFC 5545 ``RRULE``, validated and bounded, evaluated in the task's IANA time zone.

python-dateutil expands the rule in the zone's *wall-clock* time (naive local datetimes), and each
occurrence becomes an instant only then, with :mod:`zoneinfo`: "every day at 09:00 Europe/Berlin"
stays 09:00 in Berlin across DST. A local time that does not exist (the hour skipped in spring) is
taken with the offset before the gap, so 02:30 becomes 03:30 (RFC 5545 section 3.3.5); a local
time that happens twice (autumn) is the first of the two.

The rules chosen (docs/api.md, "Recurring tasks"):

- ``FREQ`` is ``DAILY``, ``WEEKLY``, ``MONTHLY`` or ``YEARLY``: a task recurs at most daily, or
  several times a day with ``BYHOUR``/``BYMINUTE`` (at most 24 times). Sub-daily frequencies are
  refused, which is also what keeps the work of an expansion bounded (below).
- ``COUNT`` 1..1000 or ``UNTIL`` (a date, inclusive, or a UTC time ending in ``Z``), never both;
  ``INTERVAL`` 1..1000; ``BYSETPOS`` only with ``MONTHLY``/``YEARLY``, at most 5 values, with at
  most one ``BYHOUR`` and ``BYMINUTE``; ``BYSECOND``, ``DTSTART``, ``RDATE`` and ``EXDATE`` are
  refused (the task's due is the start).
- ``COUNT`` counts the occurrences left *including the current due*: moving to the next occurrence
  rewrites it (:meth:`Recurrence.text`), so it survives the start moving with every completion.
- The next occurrence is searched at most :data:`HORIZON_YEARS` ahead: a rule that does not occur
  within them ends the series (and one that never occurs is refused when it is set).

Bounded work: dateutil stops only at an occurrence or at year 9999, so a rule that never matches
(``BYMONTH=2;BYMONTHDAY=30``, an ``INTERVAL`` out of phase with ``BYDAY``) would loop through
every day until then (seconds). The search runs shifted by a multiple of 400 years, the period of
the Gregorian calendar (same weekdays, leap years and week numbers), so that year 9999 comes
between :data:`HORIZON_YEARS` and 400 years after the point searched from: at most about 150,000
periods of work (under 0.5 s), whatever the rule.

(Over 300 lines on purpose: the checks of every RRULE part, with their messages, beside the search
whose work they bound.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "HORIZON_YEARS",
    "MAX_COUNT",
    "MAX_RULE_LENGTH",
    "Occurrence",
    "Recurrence",
    "RecurrenceError",
    "check_series",
    "next_date",
    "next_occurrence",
    "parse_rule",
    "parse_zone",
    "with_count",
)

MAX_RULE_LENGTH = 500
MAX_COUNT = 1000
MAX_INTERVAL = 1000
HORIZON_YEARS = 10
_MAX_SETPOS = 5
_MAX_TIMES_A_DAY = 24
_MAX_ZONE_NAME = 64
_CYCLE_YEARS = 400  # the Gregorian calendar repeats exactly every 400 years (146,097 days, 20,871 weeks)
_MAX_YEAR = 9999
_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")
# BYxxx parts: their allowed range (negative values count from the end where RFC 5545 allows it).
_RANGES = {
    "BYMONTH": (1, 12, False),
    "BYWEEKNO": (1, 53, True),
    "BYYEARDAY": (1, 366, True),
    "BYMONTHDAY": (1, 31, True),
    "BYHOUR": (0, 23, False),
    "BYMINUTE": (0, 59, False),
    "BYSETPOS": (1, 366, True),
}
_KNOWN = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", *_RANGES}


_T = TypeVar("_T", datetime, date)


class RecurrenceError(ValueError):
    """The rule or the time zone is refused; the message says why, for a 422."""


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated rule: its parts without ``COUNT`` and ``UNTIL``, which are kept apart."""

    parts: tuple[tuple[str, str], ...]
    count: int | None = None
    until: date | datetime | None = None  # a date (inclusive, local) or an aware UTC instant

    @property
    def freq(self) -> str:
        """The rule's ``FREQ``."""
        return dict(self.parts)["FREQ"]

    def text(self, count: int | None = None) -> str:
        """The rule as stored and shown, with ``count`` occurrences left when given."""
        parts = [f"{key}={value}" for key, value in self.parts]
        left = self.count if count is None else count
        if left is not None:
            parts.append(f"COUNT={left}")
        if isinstance(self.until, datetime):
            parts.append(f"UNTIL={self.until.astimezone(UTC):%Y%m%dT%H%M%SZ}")
        elif self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%d}")
        return ";".join(parts)


@dataclass(frozen=True, slots=True)
class Occurrence(Generic[_T]):
    """The next occurrence, and the ``COUNT`` left from it on (None: the rule has no ``COUNT``)."""

    at: _T
    count: int | None


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name (``Europe/Berlin``); RecurrenceError when there is none."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", name) or len(name) > _MAX_ZONE_NAME:
        msg = "must be an IANA time zone name, such as Europe/Berlin"
        raise RecurrenceError(msg)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"is not a known IANA time zone: {name}"
        raise RecurrenceError(msg) from exc


def _integers(key: str, value: str) -> list[int]:
    low, high, negative = _RANGES[key]
    numbers: list[int] = []
    for item in value.split(","):
        if not re.fullmatch(r"[+-]?\d{1,3}", item) or not (low <= abs(int(item)) <= high):
            sign = f"±{low}..{high}" if negative else f"{low}..{high}"
            msg = f"{key} values must be integers in {sign}, got {item!r}"
            raise RecurrenceError(msg)
        if int(item) < 0 and not negative:
            msg = f"{key} values cannot be negative, got {item!r}"
            raise RecurrenceError(msg)
        numbers.append(int(item))
    if len(numbers) != len(set(numbers)):
        msg = f"{key} repeats a value"
        raise RecurrenceError(msg)
    return numbers


def _check_byday(value: str, freq: str) -> None:
    for item in value.split(","):
        match = _BYDAY.match(item)
        if match is None:
            msg = f"BYDAY values are weekdays (MO..SU), optionally numbered like 1MO or -1FR, got {item!r}"
            raise RecurrenceError(msg)
        if match.group(2) is not None:
            if freq not in {"MONTHLY", "YEARLY"}:
                msg = "numbered BYDAY values (such as -1FR) need FREQ=MONTHLY or YEARLY"
                raise RecurrenceError(msg)
            if not 1 <= int(match.group(2)) <= (5 if freq == "MONTHLY" else 53):
                msg = f"BYDAY ordinal out of range in {item!r}"
                raise RecurrenceError(msg)


def _parse_until(value: str) -> date | datetime:
    match = _UNTIL.match(value)
    if match is None or (match.group(2) is not None and not match.group(3)):
        msg = "UNTIL must be a date (20301231) or a UTC time (20301231T170000Z)"
        raise RecurrenceError(msg)
    try:
        day = datetime.strptime(match.group(1), "%Y%m%d").date()  # noqa: DTZ007  (a calendar date)
        if match.group(2) is None:
            return day
        clock = datetime.strptime(match.group(2), "%H%M%S").time()  # noqa: DTZ007
    except ValueError as exc:
        msg = f"UNTIL is not a valid date: {value}"
        raise RecurrenceError(msg) from exc
    return datetime.combine(day, clock, tzinfo=UTC)


def _split(body: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in body.split(";"):
        key, sep, value = item.partition("=")
        if key in {"DTSTART", "RDATE", "EXDATE", "BYSECOND", "BYEASTER"}:
            msg = f"{key} is not supported: the task's due is the start, and BYHOUR/BYMINUTE give the times of day"
            raise RecurrenceError(msg)
        if not sep or not value or key not in _KNOWN:
            msg = f"unknown or malformed part {item!r} (expected KEY=VALUE with RFC 5545 keys)"
            raise RecurrenceError(msg)
        if key in parts:
            msg = f"{key} appears twice"
            raise RecurrenceError(msg)
        parts[key] = value
    return parts


def _take_count(parts: dict[str, str]) -> int | None:
    if "COUNT" in parts and "UNTIL" in parts:
        msg = "COUNT and UNTIL cannot both be given"
        raise RecurrenceError(msg)
    if "COUNT" not in parts:
        return None
    raw = parts.pop("COUNT")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_COUNT:
        msg = f"COUNT must be an integer in 1..{MAX_COUNT}"
        raise RecurrenceError(msg)
    return int(raw)


def _check_by_parts(parts: dict[str, str], freq: str, *, all_day: bool) -> None:
    sizes = {key: len(_integers(key, parts[key])) for key in _RANGES if key in parts}
    if "BYDAY" in parts:
        _check_byday(parts["BYDAY"], freq)
    if all_day and ("BYHOUR" in parts or "BYMINUTE" in parts):
        msg = "an all-day task recurs on dates: BYHOUR and BYMINUTE are not allowed"
        raise RecurrenceError(msg)
    if sizes.get("BYHOUR", 1) * sizes.get("BYMINUTE", 1) > _MAX_TIMES_A_DAY:
        msg = f"at most {_MAX_TIMES_A_DAY} times a day (BYHOUR values times BYMINUTE values)"
        raise RecurrenceError(msg)
    if "BYWEEKNO" in parts and freq != "YEARLY":
        msg = "BYWEEKNO needs FREQ=YEARLY"
        raise RecurrenceError(msg)
    if "BYSETPOS" in parts:
        if freq not in {"MONTHLY", "YEARLY"}:
            msg = "BYSETPOS needs FREQ=MONTHLY or YEARLY"
            raise RecurrenceError(msg)
        if sizes["BYSETPOS"] > _MAX_SETPOS or sizes.get("BYHOUR", 1) > 1 or sizes.get("BYMINUTE", 1) > 1:
            msg = f"BYSETPOS takes at most {_MAX_SETPOS} values, with at most one BYHOUR and one BYMINUTE"
            raise RecurrenceError(msg)


def parse_rule(text: str, *, all_day: bool = False) -> Recurrence:
    """Validate an ``RRULE`` (with or without the ``RRULE:`` prefix); RecurrenceError says what is wrong.

    ``all_day``: the task has a due date, not a time, so ``BYHOUR`` and ``BYMINUTE`` are refused.
    """
    if len(text) > MAX_RULE_LENGTH:
        msg = f"must be at most {MAX_RULE_LENGTH} characters"
        raise RecurrenceError(msg)
    body = text.strip().upper().removeprefix("RRULE:")
    if not body:
        msg = "must not be empty"
        raise RecurrenceError(msg)
    parts = _split(body)
    freq = parts.get("FREQ")
    if freq is None:
        msg = "FREQ is required"
        raise RecurrenceError(msg)
    if freq not in _FREQUENCIES:
        msg = f"FREQ must be one of {', '.join(_FREQUENCIES)} (several times a day: BYHOUR/BYMINUTE)"
        raise RecurrenceError(msg)
    count = _take_count(parts)
    until = _parse_until(parts.pop("UNTIL")) if "UNTIL" in parts else None
    if "INTERVAL" in parts and (not parts["INTERVAL"].isdigit() or not 1 <= int(parts["INTERVAL"]) <= MAX_INTERVAL):
        msg = f"INTERVAL must be an integer in 1..{MAX_INTERVAL}"
        raise RecurrenceError(msg)
    if "WKST" in parts and parts["WKST"] not in _DAYS:
        msg = "WKST must be a weekday: MO..SU"
        raise RecurrenceError(msg)
    _check_by_parts(parts, freq, all_day=all_day)
    ordered = (("FREQ", freq), *((key, value) for key, value in parts.items() if key != "FREQ"))
    return Recurrence(parts=ordered, count=count, until=until)


def _search(
    rule: Recurrence, start: datetime, after: datetime, accept: Callable[[datetime], _T | None]
) -> tuple[_T, int] | None:
    """The first local occurrence past ``after`` (naive, local) that ``accept`` turns into a value, and its index.

    The index counts the occurrences after ``start`` (1: the first one after it). The search runs
    in a calendar shifted by a multiple of 400 years, so that dateutil's end (year 9999) bounds it.
    """
    latest = max(start, after)
    shift = max(0, (_MAX_YEAR - HORIZON_YEARS - latest.year) // _CYCLE_YEARS) * _CYCLE_YEARS
    if rule.count is None and rule.freq in {"DAILY", "WEEKLY"}:
        # No count to keep: start from the period just before `after` (same phase, same wall time).
        step = int(dict(rule.parts).get("INTERVAL", "1")) * (1 if rule.freq == "DAILY" else 7)
        periods = max(0, (after - start).days - 1) // step
        start += timedelta(days=periods * step)
    text = ";".join(f"{key}={value}" for key, value in rule.parts)
    expansion = rrulestr(text, dtstart=start + relativedelta(years=shift), cache=False)
    horizon = latest + relativedelta(years=min(HORIZON_YEARS, _MAX_YEAR - latest.year))
    index = 0
    for shifted in expansion:
        local = shifted - relativedelta(years=shift)
        if local <= start:
            continue
        index += 1
        if local > horizon or (rule.count is not None and index >= rule.count):
            return None
        if (value := accept(local)) is not None:
            return value, index
    return None


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def next_occurrence(rule: Recurrence, zone: ZoneInfo, start: datetime, after: datetime) -> Occurrence[datetime] | None:
    """The first occurrence after the instant ``after`` of the series starting at ``start`` (an instant), in UTC.

    None when the series ends (``COUNT`` used up, past ``UNTIL``, or nothing within the horizon).
    """

    def accept(local: datetime) -> datetime | None:
        instant = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the gap's offset before, the first of a repeat
        if instant <= after:
            return None
        if isinstance(rule.until, datetime) and instant > rule.until:
            raise _Ended
        if isinstance(rule.until, date) and not isinstance(rule.until, datetime) and local.date() > rule.until:
            raise _Ended
        return instant

    try:
        found = _search(rule, _local(start, zone), _local(after, zone), accept)
    except _Ended:
        return None
    if found is None:
        return None
    instant, index = found
    return Occurrence(instant, None if rule.count is None else rule.count - index)


def next_date(rule: Recurrence, start: date, after: date) -> Occurrence[date] | None:
    """:func:`next_occurrence` for an all-day task: the first date after ``after`` of the series from ``start``."""
    until = rule.until.date() if isinstance(rule.until, datetime) else rule.until

    def accept(local: datetime) -> date | None:
        if local.date() <= after:
            return None
        if until is not None and local.date() > until:
            raise _Ended
        return local.date()

    try:
        found = _search(rule, datetime.combine(start, time()), datetime.combine(after, time()), accept)
    except _Ended:
        return None
    if found is None:
        return None
    day, index = found
    return Occurrence(day, None if rule.count is None else rule.count - index)


class _Ended(Exception):
    """Control flow: the series ended at UNTIL."""


def with_count(rule: Recurrence, count: int | None) -> Recurrence:
    """The same rule with ``count`` occurrences left."""
    return replace(rule, count=count)


def check_series(rule: Recurrence, start: datetime | date, zone: ZoneInfo) -> None:
    """Refuse a rule that never occurs after ``start`` (a task's due instant, or its due date), unless COUNT=1."""
    if rule.count == 1:
        return
    if isinstance(start, datetime):
        found: object = next_occurrence(rule, zone, start, start)
    else:
        found = next_date(rule, start, start)
    if found is None:
        msg = f"has no occurrence within {HORIZON_YEARS} years after the task's due"
        raise RecurrenceError(msg)
