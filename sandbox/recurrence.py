"""Expansion of Graph's `patternedRecurrence` into occurrences, as Outlook defines them.

The pattern says on which days a series falls, the range says from when and for how
long (https://learn.microsoft.com/en-us/graph/api/resources/recurrencepattern and
https://learn.microsoft.com/en-us/graph/api/resources/recurrencerange). Occurrences keep
the series' wall-clock time in the range's `recurrenceTimeZone`, so their UTC instant
moves with daylight saving time.

Outlook's rules that differ from a naive reading, all implemented here:

- `weekly`: weeks are counted from the week (starting on `firstDayOfWeek`) that holds
  `startDate`; every `interval`-th week, every listed day on or after `startDate`.
- `relativeMonthly` / `relativeYearly` with several `daysOfWeek`: "the event falls on the
  first day that satisfies the pattern", i.e. the index counts days of the month whose
  weekday is listed (first weekday, last weekend day...), like RFC 5545's BYSETPOS.
- `absoluteMonthly` / `absoluteYearly` on a day the month lacks (31, or 29 February):
  Outlook schedules the last day of that month instead of skipping it.
- `numbered` counts every occurrence the pattern produces, cancelled ones included;
  `endDate` is inclusive (a date in the recurrence time zone).
"""

from __future__ import annotations

import calendar as gregorian
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

JSON = dict[str, Any]

# Windows time-zone names to IANA ones: the territory "001" rows of CLDR's windowsZones.xml
# (https://github.com/unicode-org/cldr/blob/main/common/supplemental/windowsZones.xml),
# for the zones the sandbox uses.
WINDOWS_ZONES: dict[str, str] = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Romance Standard Time": "Europe/Paris",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Pacific Standard Time": "America/Los_Angeles",
    "Tokyo Standard Time": "Asia/Tokyo",
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK_INDEXES = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
# A pattern that cannot produce a date within this many periods is treated as empty.
_MAX_EMPTY_PERIODS = 4000


def zone(name: str) -> ZoneInfo:
    """The zone of a Windows name ("Romance Standard Time") or an IANA one ("Europe/Paris")."""
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ValueError, KeyError) as error:
        raise ValueError(f"Unknown time zone: {name!r}") from error


def parse_graph_time(value: Mapping[str, str]) -> datetime:
    """A Graph dateTimeTimeZone (`{"dateTime": ..., "timeZone": ...}`) as an aware datetime."""
    text = value["dateTime"].rstrip("Z")
    head, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else ""))
    return moment.replace(tzinfo=zone(value.get("timeZone") or "UTC"))


def graph_time(moment: datetime, zone_name: str) -> JSON:
    """`moment` as Graph writes it in the zone `zone_name`: seven decimals, no offset."""
    local = moment.astimezone(zone(zone_name)).replace(tzinfo=None)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def pattern_dates(recurrence: Mapping[str, Any]) -> Iterator[date]:
    """Every date of the series in order, the range's end applied (endless for `noEnd`)."""
    pattern, series_range = recurrence["pattern"], recurrence["range"]
    start = date.fromisoformat(series_range["startDate"])
    dates = _pattern_candidates(pattern, start)
    kind = series_range.get("type", "noEnd")
    if kind == "numbered":
        total = int(series_range.get("numberOfOccurrences") or 0)
        for produced, day in enumerate(dates):
            if produced >= total:
                return
            yield day
    elif kind == "endDate":
        last = date.fromisoformat(series_range["endDate"])
        for day in dates:
            if day > last:
                return
            yield day
    else:
        yield from dates


def _pattern_candidates(pattern: Mapping[str, Any], start: date) -> Iterator[date]:
    interval = max(1, int(pattern.get("interval") or 1))
    kind = pattern["type"]
    if kind == "daily":
        return (start + timedelta(days=interval * n) for n in count())
    if kind == "weekly":
        return _weekly(pattern, start, interval)
    if kind in ("absoluteMonthly", "relativeMonthly"):
        months = (_add_months(start.year, start.month, interval * n) for n in count())
    elif kind in ("absoluteYearly", "relativeYearly"):
        month = int(pattern.get("month") or start.month)
        months = ((start.year + interval * n, month) for n in count())
    else:
        raise ValueError(f"Unknown recurrence pattern type: {kind!r}")
    relative = kind.startswith("relative")
    return _monthly(pattern, start, months, relative)


def _weekly(pattern: Mapping[str, Any], start: date, interval: int) -> Iterator[date]:
    days = {WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or ()}
    if not days:
        return
    first = WEEKDAYS.index((pattern.get("firstDayOfWeek") or "sunday").lower())
    week = start - timedelta(days=(start.weekday() - first) % 7)
    while True:
        for offset in range(7):
            day = week + timedelta(days=offset)
            if day.weekday() in days and day >= start:
                yield day
        week += timedelta(weeks=interval)


def _monthly(
    pattern: Mapping[str, Any],
    start: date,
    months: Iterator[tuple[int, int]],
    relative: bool,
) -> Iterator[date]:
    empty = 0
    for year, month in months:
        day = (
            _relative_day(pattern, year, month) if relative else _absolute_day(pattern, year, month)
        )
        if day is not None and day >= start:
            empty = 0
            yield day
        else:
            empty += 1
            if empty > _MAX_EMPTY_PERIODS:
                return


def _absolute_day(pattern: Mapping[str, Any], year: int, month: int) -> date:
    """The month's `dayOfMonth`, or its last day when the month is shorter (Outlook's rule)."""
    last = gregorian.monthrange(year, month)[1]
    return date(year, month, min(int(pattern.get("dayOfMonth") or 1), last))


def _relative_day(pattern: Mapping[str, Any], year: int, month: int) -> date | None:
    """The index-th day of the month whose weekday is one of `daysOfWeek`."""
    wanted = {WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or ()}
    last = gregorian.monthrange(year, month)[1]
    matching = [
        date(year, month, n) for n in range(1, last + 1) if date(year, month, n).weekday() in wanted
    ]
    position = WEEK_INDEXES[(pattern.get("index") or "first").lower()]
    if not matching or position >= len(matching):
        return None
    return matching[position]


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + months
    return total // 12, total % 12 + 1


def series_zone(event: Mapping[str, Any]) -> str:
    """The zone the series keeps its wall-clock time in."""
    recurrence = event.get("recurrence") or {}
    named = (recurrence.get("range") or {}).get("recurrenceTimeZone")
    return str(named or event.get("originalStartTimeZone") or event["start"]["timeZone"])


def occurrence_start(event: Mapping[str, Any], day: date) -> datetime:
    """The UTC start of the series' occurrence on `day` (all-day: midnight, floating as UTC)."""
    if event.get("isAllDay"):
        return datetime.combine(day, time(), tzinfo=UTC)
    local = parse_graph_time(event["start"]).astimezone(zone(series_zone(event)))
    wall = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=local.tzinfo)
    return wall.astimezone(UTC)


def event_span(event: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """The event's own (start, end) in UTC; all-day dates float and are read as UTC."""
    if event.get("isAllDay"):
        start = parse_graph_time({"dateTime": event["start"]["dateTime"], "timeZone": "UTC"})
        end = parse_graph_time({"dateTime": event["end"]["dateTime"], "timeZone": "UTC"})
        return start, end
    start = parse_graph_time(event["start"]).astimezone(UTC)
    return start, parse_graph_time(event["end"]).astimezone(UTC)


def series_days(event: Mapping[str, Any], window_end: datetime) -> Iterator[date]:
    """The series' dates whose occurrence starts before `window_end`."""
    for day in pattern_dates(event["recurrence"]):
        if occurrence_start(event, day) >= window_end:
            return
        yield day


def expand(
    event: Mapping[str, Any], window_start: datetime, window_end: datetime
) -> list[datetime]:
    """UTC starts of the occurrences overlapping [window_start, window_end), in order.

    A single event gives its own start when it overlaps the window. Occurrences
    are those the pattern produces: cancellations and exceptions are the caller's
    business (an exception is keyed by the `originalStart` returned here).
    """
    start, end = event_span(event)
    duration = end - start
    if not event.get("recurrence"):
        return [start] if start < window_end and start + duration > window_start else []
    starts = (occurrence_start(event, day) for day in series_days(event, window_end))
    return [moment for moment in starts if moment + duration > window_start]
