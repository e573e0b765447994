"""Recurring tasks: RRULE validation and the next occurrence across DST changes and month ends."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from todo_service.tasks.recurrence import (
    HORIZON_YEARS,
    RecurrenceError,
    check_series,
    next_date,
    next_occurrence,
    parse_rule,
    parse_zone,
)

BERLIN = parse_zone("Europe/Berlin")
NEW_YORK = parse_zone("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def series(rule: str, zone: str, start: str, n: int) -> list[str]:
    """The n occurrences after ``start`` (UTC), chained as completions would: each one after the previous."""
    recurrence, tz = parse_rule(rule), parse_zone(zone)
    first = current = utc(start)
    out = []
    for _ in range(n):
        found = next_occurrence(recurrence, tz, first, current)
        assert found is not None
        current = found.at
        out.append(current.astimezone(tz).isoformat())
    return out


# Europe/Berlin 2026: summer time from 29 March 02:00 (-> 03:00) to 25 October 03:00 (-> 02:00).
# America/New_York 2026: summer time from 8 March 02:00 (-> 03:00) to 1 November 02:00 (-> 01:00).
DST_TABLE = [
    pytest.param(
        "FREQ=DAILY",
        "Europe/Berlin",
        "2026-03-28T08:00",
        ["2026-03-29T09:00:00+02:00", "2026-03-30T09:00:00+02:00"],
        id="berlin-spring-09:00-stays-09:00",
    ),
    pytest.param(
        "FREQ=DAILY",
        "Europe/Berlin",
        "2026-10-24T07:00",
        ["2026-10-25T09:00:00+01:00", "2026-10-26T09:00:00+01:00"],
        id="berlin-autumn-09:00-stays-09:00",
    ),
    pytest.param(
        "FREQ=DAILY",
        "Europe/Berlin",
        "2026-03-28T01:30",  # 02:30 CET
        ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"],
        id="berlin-skipped-hour-02:30-becomes-03:30",
    ),
    pytest.param(
        "FREQ=DAILY",
        "Europe/Berlin",
        "2026-10-24T00:30",  # 02:30 CEST
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        id="berlin-repeated-hour-first-of-two",
    ),
    pytest.param(
        "FREQ=WEEKLY;BYDAY=SU;BYHOUR=9,18;BYMINUTE=0",
        "Europe/Berlin",
        "2026-03-22T17:00",  # Sunday 18:00 CET
        ["2026-03-29T09:00:00+02:00", "2026-03-29T18:00:00+02:00", "2026-04-05T09:00:00+02:00"],
        id="berlin-weekly-two-times-on-the-change-day",
    ),
    pytest.param(
        "FREQ=DAILY",
        "America/New_York",
        "2026-03-07T14:00",  # 09:00 EST
        ["2026-03-08T09:00:00-04:00", "2026-03-09T09:00:00-04:00"],
        id="new-york-spring-09:00-stays-09:00",
    ),
    pytest.param(
        "FREQ=DAILY",
        "America/New_York",
        "2026-10-31T13:00",  # 09:00 EDT
        ["2026-11-01T09:00:00-05:00", "2026-11-02T09:00:00-05:00"],
        id="new-york-autumn-09:00-stays-09:00",
    ),
    pytest.param(
        "FREQ=DAILY",
        "America/New_York",
        "2026-03-07T07:15",  # 02:15 EST
        ["2026-03-08T03:15:00-04:00", "2026-03-09T02:15:00-04:00"],
        id="new-york-skipped-hour-02:15-becomes-03:15",
    ),
    pytest.param(
        "FREQ=DAILY",
        "America/New_York",
        "2026-10-31T05:30",  # 01:30 EDT
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        id="new-york-repeated-hour-first-of-two",
    ),
    pytest.param(
        "FREQ=MONTHLY;BYDAY=-1FR",
        "America/New_York",
        "2026-02-27T22:00",  # last Friday of February, 17:00 EST
        ["2026-03-27T17:00:00-04:00", "2026-04-24T17:00:00-04:00"],
        id="new-york-last-friday-17:00",
    ),
]


@pytest.mark.parametrize(("rule", "zone", "start", "expected"), DST_TABLE)
def test_wall_clock_time_survives_dst(rule: str, zone: str, start: str, expected: list[str]) -> None:
    assert series(rule, zone, start, len(expected)) == expected


MONTH_END_TABLE = [
    pytest.param(
        "FREQ=MONTHLY;BYMONTHDAY=31",
        date(2026, 1, 31),
        [date(2026, 3, 31), date(2026, 5, 31), date(2026, 7, 31), date(2026, 8, 31), date(2026, 10, 31)],
        id="31st-skips-short-months",
    ),
    pytest.param(
        "FREQ=MONTHLY",
        date(2026, 1, 31),
        [date(2026, 3, 31), date(2026, 5, 31)],
        id="monthly-from-the-31st-skips-short-months-too",
    ),
    pytest.param(
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        date(2028, 1, 31),
        [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)],
        id="last-day-of-month-leap-february",
    ),
    pytest.param(
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        date(2027, 1, 31),
        [date(2027, 2, 28), date(2027, 3, 31)],
        id="last-day-of-month-plain-february",
    ),
    pytest.param(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        date(2026, 1, 30),
        [date(2026, 2, 27), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 29)],
        id="last-weekday-of-month",
    ),
    pytest.param(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        date(2024, 2, 29),
        [date(2028, 2, 29), date(2032, 2, 29)],
        id="leap-day-every-four-years",
    ),
    pytest.param(
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
        date(2026, 1, 5),
        [date(2026, 1, 8), date(2026, 1, 19), date(2026, 1, 22), date(2026, 2, 2)],
        id="every-other-week-two-days",
    ),
]


@pytest.mark.parametrize(("rule", "start", "expected"), MONTH_END_TABLE)
def test_month_ends_and_dates(rule: str, start: date, expected: list[date]) -> None:
    recurrence, current, out = parse_rule(rule, all_day=True), start, []
    for _ in expected:
        found = next_date(recurrence, start, current)
        assert found is not None
        current = found.at
        out.append(current)
    assert out == expected


def test_month_end_in_a_time_zone() -> None:
    assert series("FREQ=MONTHLY;BYMONTHDAY=31", "Europe/Berlin", "2026-01-31T08:00", 3) == [
        "2026-03-31T09:00:00+02:00",
        "2026-05-31T09:00:00+02:00",
        "2026-07-31T09:00:00+02:00",
    ]


def test_count_is_what_is_left_including_the_current_due() -> None:
    rule = parse_rule("FREQ=DAILY;COUNT=3")
    start = utc("2026-03-28T08:00")
    first = next_occurrence(rule, BERLIN, start, start)
    assert first is not None
    assert (first.at, first.count) == (utc("2026-03-29T07:00"), 2)
    assert rule.text(first.count) == "FREQ=DAILY;COUNT=2"
    again = next_occurrence(parse_rule(rule.text(first.count)), BERLIN, first.at, first.at)
    assert again is not None
    assert again.count == 1
    assert next_occurrence(parse_rule("FREQ=DAILY;COUNT=1"), BERLIN, again.at, again.at) is None


def test_occurrences_missed_while_overdue_are_skipped_and_counted() -> None:
    rule = parse_rule("FREQ=DAILY;COUNT=10")
    start = utc("2026-01-01T08:00")
    found = next_occurrence(rule, BERLIN, start, utc("2026-01-04T12:00"))
    assert found is not None
    assert (found.at, found.count) == (utc("2026-01-05T08:00"), 6)  # the 2nd..4th passed unused
    assert next_occurrence(rule, BERLIN, start, utc("2026-01-11T12:00")) is None  # all ten are past


def test_until_date_is_inclusive_in_local_time() -> None:
    rule = parse_rule("FREQ=DAILY;UNTIL=20260330")
    start = utc("2026-03-28T08:00")
    last = next_occurrence(rule, BERLIN, start, utc("2026-03-29T08:00"))
    assert last is not None
    assert last.at == utc("2026-03-30T07:00")
    assert next_occurrence(rule, BERLIN, start, last.at) is None


def test_until_utc_instant() -> None:
    rule = parse_rule("FREQ=DAILY;UNTIL=20260329T070000Z")
    start = utc("2026-03-28T08:00")
    found = next_occurrence(rule, BERLIN, start, start)
    assert found is not None
    assert found.at == utc("2026-03-29T07:00")
    assert next_occurrence(rule, BERLIN, start, found.at) is None
    assert rule.text() == "FREQ=DAILY;UNTIL=20260329T070000Z"
    assert next_date(parse_rule("FREQ=DAILY;UNTIL=20260329T070000Z"), date(2026, 3, 29), date(2026, 3, 29)) is None


def test_a_long_overdue_series_keeps_its_phase() -> None:
    """Far behind, the search starts near `after` (no count to keep) yet stays on the rule's days."""
    rule = parse_rule("FREQ=DAILY;INTERVAL=3")
    start = utc("1990-06-01T07:00")
    found = next_occurrence(rule, BERLIN, start, utc("2026-03-28T12:00"))
    assert found is not None
    local = found.at.astimezone(BERLIN)
    assert (local.hour, local.minute) == (9, 0)
    assert (local.date() - date(1990, 6, 1)).days % 3 == 0
    assert timedelta(0) < found.at - utc("2026-03-28T12:00") <= timedelta(days=3)
    weekly = next_date(parse_rule("FREQ=WEEKLY;INTERVAL=2"), date(1990, 6, 1), date(2026, 3, 28))
    assert weekly is not None
    assert (weekly.at - date(1990, 6, 1)).days % 14 == 0
    assert weekly.at > date(2026, 3, 28)


def test_far_dates_stay_in_range() -> None:
    assert next_date(parse_rule("FREQ=YEARLY"), date(9997, 1, 1), date(9997, 1, 1)) == next_date(
        parse_rule("FREQ=YEARLY"), date(9997, 1, 1), date(9997, 6, 1)
    )
    found = next_date(parse_rule("FREQ=YEARLY;BYMONTH=3"), date(5, 3, 1), date(5, 3, 1))
    assert found is not None
    assert found.at == date(6, 3, 1)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=DAILY;INTERVAL=7;BYDAY=MO",  # the start is a Saturday: out of phase forever
        "FREQ=MONTHLY;BYMONTHDAY=1;BYSETPOS=5",
        "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=YEARLY;BYYEARDAY=1;BYMONTH=2",
    ],
)
def test_a_rule_that_never_occurs_is_refused_in_bounded_time(rule: str) -> None:
    start = utc("2026-03-28T08:00")
    began = time.perf_counter()
    with pytest.raises(RecurrenceError, match=f"no occurrence within {HORIZON_YEARS} years"):
        check_series(parse_rule(rule), start, BERLIN)
    assert time.perf_counter() - began < 3  # about 0.4 s at worst on an idle machine


def test_check_series_accepts_rules_that_occur() -> None:
    check_series(parse_rule("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13"), utc("2026-03-28T08:00"), BERLIN)
    with pytest.raises(RecurrenceError):  # 29 February on a Monday: next in 2044, beyond the horizon
        check_series(parse_rule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"), utc("2026-03-28T08:00"), BERLIN)
    check_series(parse_rule("FREQ=MONTHLY;BYMONTHDAY=31"), date(2026, 2, 1), BERLIN)
    check_series(parse_rule("FREQ=DAILY;COUNT=1"), date(2026, 2, 1), BERLIN)
    with pytest.raises(RecurrenceError):
        check_series(parse_rule("FREQ=DAILY;UNTIL=20200101"), date(2026, 2, 1), BERLIN)


def test_text_is_normalised() -> None:
    rule = parse_rule("rrule:freq=weekly;byday=mo,we;count=5")
    assert rule.text() == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5"
    assert parse_rule("INTERVAL=2;FREQ=DAILY").text() == "FREQ=DAILY;INTERVAL=2"
    assert parse_rule("FREQ=YEARLY;UNTIL=20301231").text() == "FREQ=YEARLY;UNTIL=20301231"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "must not be empty"),
        ("FREQ=SECONDLY", "FREQ must be one of"),
        ("FREQ=MINUTELY", "FREQ must be one of"),
        ("FREQ=HOURLY", "FREQ must be one of"),
        ("FREQ=FORTNIGHTLY", "FREQ must be one of"),
        ("INTERVAL=2", "FREQ is required"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ appears twice"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be an integer in 1..1000"),
        ("FREQ=DAILY;COUNT=1001", "COUNT must be an integer in 1..1000"),
        ("FREQ=DAILY;COUNT=-3", "COUNT must be an integer"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20300101", "COUNT and UNTIL cannot both be given"),
        ("FREQ=DAILY;UNTIL=20300231", "UNTIL is not a valid date"),
        ("FREQ=DAILY;UNTIL=20300101T090000", "UNTIL must be a date"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must be a date"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be an integer in 1..1000"),
        ("FREQ=DAILY;INTERVAL=99999", "INTERVAL must be an integer in 1..1000"),
        ("FREQ=DAILY;BYSECOND=5", "BYSECOND is not supported"),
        ("DTSTART:20260101T090000;FREQ=DAILY", "unknown or malformed part"),
        ("FREQ=DAILY;DTSTART=20260101", "DTSTART is not supported"),
        ("FREQ=DAILY;BYEASTER=0", "BYEASTER is not supported"),
        ("FREQ=DAILY;X-NAME=1", "unknown or malformed part"),
        ("FREQ=DAILY;BYHOUR", "unknown or malformed part"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR values must be integers in 0..23"),
        ("FREQ=DAILY;BYHOUR=-1", "BYHOUR values cannot be negative"),
        ("FREQ=DAILY;BYMONTHDAY=0", "BYMONTHDAY values must be integers in ±1..31"),
        ("FREQ=DAILY;BYMONTHDAY=1,1", "BYMONTHDAY repeats a value"),
        ("FREQ=DAILY;BYMONTH=13", "BYMONTH values must be integers in 1..12"),
        ("FREQ=DAILY;BYDAY=XX", "BYDAY values are weekdays"),
        ("FREQ=WEEKLY;BYDAY=1MO", "numbered BYDAY values"),
        ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY ordinal out of range"),
        ("FREQ=DAILY;WKST=XX", "WKST must be a weekday"),
        ("FREQ=MONTHLY;BYWEEKNO=3", "BYWEEKNO needs FREQ=YEARLY"),
        ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1,2,3,4,5,-1", "BYSETPOS takes at most 5 values"),
        ("FREQ=YEARLY;BYSETPOS=1;BYHOUR=1,2", "with at most one BYHOUR"),
        ("FREQ=YEARLY;BYSETPOS=400", "BYSETPOS values must be integers in ±1..366"),
        ("FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12;BYMINUTE=0,30", "at most 24 times a day"),
        ("FREQ=DAILY;" + "BYMONTH=1;" * 60, "must be at most 500 characters"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(rule: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_rule(rule)


def test_all_day_rules_have_no_time_of_day() -> None:
    with pytest.raises(RecurrenceError, match="an all-day task recurs on dates"):
        parse_rule("FREQ=DAILY;BYHOUR=9", all_day=True)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../etc/passwd", "", "Europe/Berlin\x00", "a" * 65, "/abs"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(RecurrenceError, match="IANA time zone"):
        parse_zone(name)


def test_known_time_zones() -> None:
    assert str(parse_zone("America/Argentina/Buenos_Aires")) == "America/Argentina/Buenos_Aires"
    assert str(parse_zone("UTC")) == "UTC"
