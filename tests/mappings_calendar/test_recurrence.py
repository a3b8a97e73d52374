"""Graph recurrence -> RRULE, checked against a small independent expansion of Graph patterns.

The reference below walks the calendar day by day and applies each pattern's definition
(https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern and
.../recurrencerange); the mapper's RRULE is expanded by recurring-ical-events. Both must give
the same occurrence dates, for every pattern and range type.
"""

from __future__ import annotations

import calendar as month_calendar
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from hirondelle.mappings.calendar import map_event
from hirondelle.mappings.event_recurrence import recurrence_problem
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Item

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
ZONES = {
    "Romance Standard Time": "Europe/Paris",
    "Eastern Standard Time": "America/New_York",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "UTC": "UTC",
}
HORIZON_DAYS = 800


# -- the reference expansion ------------------------------------------------------------------


def months_between(first: date, day: date) -> int:
    return (day.year - first.year) * 12 + day.month - first.month


def nth_weekday_match(day: date, weekdays: set[int], index: str) -> bool:
    """Whether `day` is the index-th day of its month whose weekday is in `weekdays`."""
    last = month_calendar.monthrange(day.year, day.month)[1]
    matches = [
        d
        for d in (date(day.year, day.month, n) for n in range(1, last + 1))
        if d.weekday() in weekdays
    ]
    position = INDEX[index]
    return position < len(matches) and matches[position] == day


def clamped_day(day: date, day_of_month: int) -> int:
    return min(day_of_month, month_calendar.monthrange(day.year, day.month)[1])


def on_pattern(pattern: dict[str, Any], first: date, day: date) -> bool:
    kind, interval = pattern["type"], pattern["interval"]
    weekdays = {DAYS.index(d) for d in pattern.get("daysOfWeek", [])}
    if kind == "daily":
        return (day - first).days % interval == 0
    if kind == "weekly":
        week_start = DAYS.index(pattern["firstDayOfWeek"])

        def start_of(d: date) -> date:
            return d - timedelta(days=(d.weekday() - week_start) % 7)

        weeks = (start_of(day) - start_of(first)).days // 7
        return day.weekday() in weekdays and weeks % interval == 0
    if kind.endswith("Monthly") and months_between(first, day) % interval:
        return False
    if kind.endswith("Yearly"):
        if (day.year - first.year) % interval or day.month != pattern["month"]:
            return False
    if kind.startswith("absolute"):
        return day.day == clamped_day(day, pattern["dayOfMonth"])
    return nth_weekday_match(day, weekdays, pattern["index"])


def reference_dates(recurrence: dict[str, Any], horizon: date) -> list[date]:
    pattern, range_ = recurrence["pattern"], recurrence["range"]
    first = date.fromisoformat(range_["startDate"])
    found: list[date] = []
    day = first
    while day <= horizon:
        if range_["type"] == "endDate" and day > date.fromisoformat(range_["endDate"]):
            break
        if on_pattern(pattern, first, day):
            found.append(day)
            if range_["type"] == "numbered" and len(found) == range_["numberOfOccurrences"]:
                break
        day += timedelta(days=1)
    return found


# -- the mapper under test ----------------------------------------------------------------------


@st.composite
def recurrences(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "daily",
                "weekly",
                "absoluteMonthly",
                "relativeMonthly",
                "absoluteYearly",
                "relativeYearly",
            ]
        )
    )
    pattern: dict[str, Any] = {
        "type": kind,
        "interval": draw(st.integers(1, 3 if kind.endswith("Yearly") else 4)),
        "firstDayOfWeek": draw(st.sampled_from(DAYS)),
        "month": draw(st.one_of(st.integers(1, 12), st.just(2))),  # February: the short month
        "dayOfMonth": draw(st.one_of(st.integers(1, 31), st.integers(28, 31))),  # month ends
        "index": draw(st.sampled_from(list(INDEX))),
        "daysOfWeek": draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True)),
    }
    start = draw(st.dates(date(2023, 1, 1), date(2026, 12, 31)))
    range_: dict[str, Any] = {"type": draw(st.sampled_from(["endDate", "noEnd", "numbered"]))}
    range_["startDate"] = start.isoformat()
    range_["endDate"] = (start + timedelta(days=draw(st.integers(0, 700)))).isoformat()
    range_["numberOfOccurrences"] = draw(st.integers(1, 25))
    return {"pattern": pattern, "range": range_}


def master_event(recurrence: dict[str, Any], zone_name: str, at: time | None) -> dict[str, Any]:
    """A series master as Graph returns it with `Prefer: outlook.timezone` set to its zone."""
    start = date.fromisoformat(recurrence["range"]["startDate"])
    recurrence["range"]["recurrenceTimeZone"] = zone_name
    if at is None:
        times = [
            datetime.combine(start, time()),
            datetime.combine(start + timedelta(days=1), time()),
        ]
    else:
        times = [datetime.combine(start, at), datetime.combine(start, at) + timedelta(hours=1)]
    start_value, end_value = (
        {"dateTime": t.isoformat() + ".0000000", "timeZone": zone_name} for t in times
    )
    return {
        "id": "AAMkAGSeries=",
        "iCalUId": "040000008200E00074C5B7101A82E008000000001",
        "type": "seriesMaster",
        "subject": "Série",
        "isAllDay": at is None,
        "originalStartTimeZone": zone_name,
        "start": start_value,
        "end": end_value,
        "recurrence": recurrence,
    }


def expanded_starts(ics: bytes, first: date, horizon: date) -> list[date | datetime]:
    low = datetime.combine(first, time(), UTC) - timedelta(days=1)
    high = datetime.combine(horizon + timedelta(days=2), time(), UTC)
    events = recurring_ical_events.of(Calendar.from_ical(ics)).between(low, high)
    return sorted(e.decoded("DTSTART") for e in events)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recurrence=recurrences(),
    zone_name=st.sampled_from(list(ZONES)),
    at=st.one_of(st.none(), st.sampled_from([time(0, 30), time(9, 0), time(13, 45), time(23, 15)])),
)
def test_rrule_expands_to_the_graph_pattern(
    recurrence: dict[str, Any], zone_name: str, at: time | None
) -> None:
    first = date.fromisoformat(recurrence["range"]["startDate"])
    horizon = first + timedelta(days=HORIZON_DAYS)
    expected = reference_dates(recurrence, horizon)
    content = json.dumps({"event": master_event(recurrence, zone_name, at), "instances": []})
    item = Item("AAMkAGSeries=", "ck", {"type": "seriesMaster"})
    try:
        payload = map_event(item, content.encode())
    except SkipItem as error:  # only a series that never happens is refused
        assert "no occurrence" in str(error)
        assert reference_dates(recurrence, first + timedelta(days=3700)) == []
        return
    starts = expanded_starts(payload.content, first, horizon)
    starts = [s for s in starts if (s.date() if isinstance(s, datetime) else s) <= horizon]
    if at is None:
        assert starts == expected
        return
    zone = ZoneInfo(ZONES[zone_name])
    times = [s for s in starts if isinstance(s, datetime)]
    assert len(times) == len(starts)  # a timed series expands to datetimes only
    assert [s.astimezone(zone).replace(tzinfo=None) for s in times] == [
        datetime.combine(d, at) for d in expected
    ]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ({"type": "weekly", "interval": 1}, "daysOfWeek"),
        ({"type": "relativeMonthly", "daysOfWeek": ["funday"]}, "funday"),
        ({"type": "relativeMonthly", "daysOfWeek": ["monday"], "index": "fifth"}, "fifth"),
        ({"type": "absoluteYearly", "dayOfMonth": 1, "month": 13}, "month"),
        ({"type": "absoluteMonthly", "dayOfMonth": 32}, "dayOfMonth"),
        ({"type": "daily", "interval": 1, "firstDayOfWeek": "someday"}, "someday"),
    ],
)
def test_inexpressible_patterns_are_named(pattern: dict[str, Any], problem: str) -> None:
    reason = recurrence_problem({"pattern": pattern, "range": {"type": "noEnd"}})
    assert reason is not None and problem in reason


def test_expressible_recurrence_has_no_problem() -> None:
    recurrence = {
        "pattern": {
            "type": "relativeYearly",
            "month": 11,
            "daysOfWeek": ["thursday"],
            "index": "fourth",
        },
        "range": {"type": "numbered", "startDate": "2024-11-01", "numberOfOccurrences": 3},
    }
    assert recurrence_problem(recurrence) is None
