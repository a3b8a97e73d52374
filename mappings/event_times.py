"""Times of a Graph event read for iCalendar: instants, days, its zone and its span.

Pure. Graph returns times in UTC unless asked otherwise, while the event lives in its
own zone (`originalStartTimeZone`, and `recurrence.range.recurrenceTimeZone` for a
series): https://learn.microsoft.com/en-us/graph/api/resources/event . A value that
cannot be read raises `SkipItem`, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from ..migrator.errors import SkipItem
from .timezones import zone_of


def parse_datetime(text: Any, field: str) -> datetime:
    if not isinstance(text, str) or not text:
        raise SkipItem(f"{field} is missing")
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise SkipItem(f"{field} is not a date-time: {text!r}") from error


def parse_instant(text: Any, field: str) -> datetime:
    """An ISO date-time as an aware UTC instant (naive values are UTC, as Graph writes them)."""
    value = parse_datetime(text, field)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def parse_day(text: Any, field: str) -> date:
    if not isinstance(text, str):
        raise SkipItem(f"{field} is missing")
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as error:
        raise SkipItem(f"{field} is not a date: {text!r}") from error


def graph_time(value: Any, field: str) -> datetime:
    """A Graph dateTimeTimeZone as an aware datetime in its own zone."""
    if not isinstance(value, Mapping):
        raise SkipItem(f"{field} is missing")
    zone = zone_of(value.get("timeZone"))
    if zone is None:
        raise SkipItem(f"{field}.timeZone {value.get('timeZone')!r} has no IANA mapping")
    moment = parse_datetime(value.get("dateTime"), f"{field}.dateTime")
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


def local_day(moment: datetime, zone: tzinfo) -> date:
    """The calendar day of an all-day boundary: midnight as written, else its day in `zone`."""
    if moment.time() == time(0, 0):
        return moment.date()
    return moment.astimezone(zone).date()


def event_zone(event: Mapping[str, Any]) -> tzinfo:
    """The zone the event lives in: the series', then the original, then the returned one."""
    for _field, name in zone_names(event):
        zone = zone_of(name)
        if zone is not None:
            return zone
    raise SkipItem("event has no time zone with an IANA mapping")


def member_of(value: Any, key: str) -> Any:
    """`value[key]` when `value` is a JSON object, else None (odd shapes are not errors here)."""
    return value.get(key) if isinstance(value, Mapping) else None


def zone_names(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    recurrence = event.get("recurrence")
    candidates = [
        ("recurrenceTimeZone", member_of(member_of(recurrence, "range"), "recurrenceTimeZone")),
        ("originalStartTimeZone", event.get("originalStartTimeZone")),
        ("start.timeZone", member_of(event.get("start"), "timeZone")),
        ("originalEndTimeZone", event.get("originalEndTimeZone")),
        ("end.timeZone", member_of(event.get("end"), "timeZone")),
    ]
    return [(field, name) for field, name in candidates if isinstance(name, str) and name]


def event_span(event: Mapping[str, Any], zone: tzinfo) -> tuple[date | datetime, date | datetime]:
    """DTSTART and DTEND of a single event or instance, in `zone` (dates when all-day)."""
    start = graph_time(event.get("start"), "start")
    end = graph_time(event.get("end"), "end")
    if event.get("isAllDay"):
        first, after = local_day(start, zone), local_day(end, zone)
        return first, max(after, first + timedelta(days=1))
    if end < start:
        raise SkipItem("event ends before it starts")
    return start.astimezone(zone), end.astimezone(zone)


def date_of(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
