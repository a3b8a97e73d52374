"""Outlook's recurrence rules against hand-computed dates, one case per pattern and range."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import pytest

from hirondelle.sandbox.recurrence import expand, pattern_dates, zone

JSON = dict[str, Any]


def series(pattern: JSON, start: str, kind: str = "noEnd", limit: Any = None) -> JSON:
    series_range: JSON = {"type": kind, "startDate": start, "recurrenceTimeZone": "UTC"}
    if kind == "numbered":
        series_range["numberOfOccurrences"] = limit
    if kind == "endDate":
        series_range["endDate"] = limit
    return {"pattern": {"interval": 1} | pattern, "range": series_range}


def dates(recurrence: JSON, count: int = 50) -> list[str]:
    return [d.isoformat() for d in islice(pattern_dates(recurrence), count)]


def test_daily_every_other_day_counts_occurrences() -> None:
    recurrence = series({"type": "daily", "interval": 2}, "2024-02-27", "numbered", 4)
    assert dates(recurrence) == ["2024-02-27", "2024-02-29", "2024-03-02", "2024-03-04"]


def test_end_date_is_inclusive() -> None:
    recurrence = series({"type": "daily"}, "2024-01-30", "endDate", "2024-02-01")
    assert dates(recurrence) == ["2024-01-30", "2024-01-31", "2024-02-01"]


def test_no_end_keeps_going() -> None:
    recurrence = series({"type": "daily", "interval": 7}, "2024-01-01")
    assert len(dates(recurrence, 500)) == 500


@pytest.mark.parametrize(
    ("first_day", "expected"),
    [
        # Weeks start on Sunday: Jan 7-13 holds the start, then Jan 21-27, Feb 4-10.
        ("sunday", ["2024-01-07", "2024-01-08", "2024-01-21", "2024-01-22", "2024-02-04"]),
        # Weeks start on Monday: Jan 1-7 holds the start (Monday the 1st is before it).
        ("monday", ["2024-01-07", "2024-01-15", "2024-01-21", "2024-01-29", "2024-02-04"]),
    ],
)
def test_weekly_interval_counts_weeks_from_first_day_of_week(
    first_day: str, expected: list[str]
) -> None:
    pattern = {
        "type": "weekly",
        "interval": 2,
        "daysOfWeek": ["sunday", "monday"],
        "firstDayOfWeek": first_day,
    }
    assert dates(series(pattern, "2024-01-07", "numbered", 5)) == expected


def test_weekly_several_days_skip_days_before_the_start() -> None:
    pattern = {"type": "weekly", "daysOfWeek": ["monday", "wednesday", "friday"]}
    got = dates(series(pattern | {"firstDayOfWeek": "monday"}, "2024-03-06", "numbered", 4))
    assert got == ["2024-03-06", "2024-03-08", "2024-03-11", "2024-03-13"]


def test_absolute_monthly_falls_back_to_the_last_day_of_short_months() -> None:
    pattern = {"type": "absoluteMonthly", "dayOfMonth": 31}
    got = dates(series(pattern, "2024-01-31", "numbered", 4))
    assert got == ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]


def test_absolute_monthly_every_two_months_starts_after_the_start_date() -> None:
    pattern = {"type": "absoluteMonthly", "interval": 2, "dayOfMonth": 5}
    got = dates(series(pattern, "2024-01-10", "numbered", 3))
    assert got == ["2024-03-05", "2024-05-05", "2024-07-05"]


@pytest.mark.parametrize(
    ("index", "days", "expected"),
    [
        ("first", ["monday"], ["2024-01-01", "2024-02-05", "2024-03-04"]),
        ("last", ["friday"], ["2024-01-26", "2024-02-23", "2024-03-29"]),
        ("fourth", ["thursday"], ["2024-01-25", "2024-02-22", "2024-03-28"]),
        # Several days: the index counts the days that match (the second weekday).
        (
            "second",
            ["monday", "tuesday", "wednesday", "thursday", "friday"],
            ["2024-01-02", "2024-02-02", "2024-03-04"],
        ),
        ("first", ["saturday", "sunday"], ["2024-01-06", "2024-02-03", "2024-03-02"]),
    ],
)
def test_relative_monthly(index: str, days: list[str], expected: list[str]) -> None:
    pattern = {"type": "relativeMonthly", "daysOfWeek": days, "index": index}
    assert dates(series(pattern, "2024-01-01", "numbered", 3)) == expected


def test_absolute_yearly_on_29_february() -> None:
    pattern = {"type": "absoluteYearly", "month": 2, "dayOfMonth": 29}
    got = dates(series(pattern, "2024-01-01", "endDate", "2028-12-31"))
    assert got == ["2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"]


def test_relative_yearly_fourth_thursday_of_november() -> None:
    pattern = {
        "type": "relativeYearly",
        "month": 11,
        "daysOfWeek": ["thursday"],
        "index": "fourth",
    }
    got = dates(series(pattern, "2024-11-28", "numbered", 3))
    assert got == ["2024-11-28", "2025-11-27", "2026-11-26"]


def paris_series(**pattern: Any) -> JSON:
    recurrence = series({"type": "weekly", "daysOfWeek": ["friday"]} | pattern, "2024-03-22")
    recurrence["range"]["recurrenceTimeZone"] = "Romance Standard Time"
    return {
        "start": {"dateTime": "2024-03-22T09:00:00.0000000", "timeZone": "Romance Standard Time"},
        "end": {"dateTime": "2024-03-22T10:00:00.0000000", "timeZone": "Romance Standard Time"},
        "isAllDay": False,
        "recurrence": recurrence,
    }


def test_expand_keeps_wall_clock_time_across_daylight_saving() -> None:
    got = expand(paris_series(), datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 6, tzinfo=UTC))
    assert got == [datetime(2024, 3, 22, 8, tzinfo=UTC), datetime(2024, 3, 29, 8, tzinfo=UTC),
                   datetime(2024, 4, 5, 7, tzinfo=UTC)]  # fmt: skip


def test_expand_keeps_an_occurrence_that_overlaps_the_window_start() -> None:
    window_start = datetime(2024, 3, 22, 8, 30, tzinfo=UTC)  # mid-way through the first one
    got = expand(paris_series(), window_start, datetime(2024, 3, 30, tzinfo=UTC))
    assert got == [datetime(2024, 3, 22, 8, tzinfo=UTC), datetime(2024, 3, 29, 8, tzinfo=UTC)]


def test_expand_a_single_event_and_an_all_day_series() -> None:
    single = paris_series() | {"recurrence": None}
    window = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
    assert expand(single, *window) == [datetime(2024, 3, 22, 8, tzinfo=UTC)]
    assert expand(single, datetime(2024, 3, 23, tzinfo=UTC), window[1]) == []
    all_day = paris_series() | {
        "isAllDay": True,
        "start": {"dateTime": "2024-03-22T00:00:00.0000000", "timeZone": "Romance Standard Time"},
        "end": {"dateTime": "2024-03-23T00:00:00.0000000", "timeZone": "Romance Standard Time"},
    }
    got = expand(all_day, *window)
    assert got == [datetime(2024, 3, 22, tzinfo=UTC), datetime(2024, 3, 29, tzinfo=UTC)]


def test_windows_zone_names_map_to_iana() -> None:
    assert str(zone("Romance Standard Time")) == "Europe/Paris"
    assert str(zone("Eastern Standard Time")) == "America/New_York"
    assert str(zone("Europe/Berlin")) == "Europe/Berlin"
    with pytest.raises(ValueError):
        zone("Nowhere Standard Time")
    assert date(2024, 1, 1).weekday() == 0  # the fixtures above assume 2024-01-01 is a Monday
