"""A Graph event's recurrence as an iCalendar RRULE, and the series it expands to.

Pure. Recurrence (https://learn.microsoft.com/en-us/graph/api/resources/patternedrecurrence)
maps to one RRULE. Outlook's absolute day of month past the month's end falls on the
month's last day ("If for a particular month this value is larger than the number of days
in the month, the last day of the month is assumed",
https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/absolutemonthlyrecurrence),
which RRULE says as BYMONTHDAY=28,...,n;BYSETPOS=-1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrulestr
from icalendar import vRecur

from ..migrator.errors import SkipItem
from .event_times import date_of, event_span, parse_day

DAY_CODES = dict(
    zip(
        ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"),
        ("SU", "MO", "TU", "WE", "TH", "FR", "SA"),
        strict=True,
    )
)
WEEK_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
PATTERN_FREQ = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "absoluteMonthly": "MONTHLY",
    "relativeMonthly": "MONTHLY",
    "absoluteYearly": "YEARLY",
    "relativeYearly": "YEARLY",
}


def recurrence_problem(recurrence: Any) -> str | None:
    """Why a Graph patternedRecurrence cannot be written as an RRULE, or None if it can."""
    try:
        _rule_parts(recurrence)
        _range_type(recurrence)
    except SkipItem as error:
        return str(error)
    return None


def recurrence_rule(recurrence: Mapping[str, Any], zone: tzinfo, all_day: bool) -> vRecur:
    """The RRULE of a Graph patternedRecurrence whose occurrences live in `zone`.

    `numbered` -> COUNT; `endDate` -> UNTIL covering the whole last day in `zone` (a DATE
    for all-day events); `noEnd` -> no limit. Raises `SkipItem` if it cannot be expressed.
    """
    rule = vRecur(_rule_parts(recurrence))
    kind = _range_type(recurrence)
    if kind == "numbered":
        rule["COUNT"] = [_number(recurrence["range"].get("numberOfOccurrences"), 1, "count")]
    elif kind == "endDate":
        last = parse_day(recurrence["range"].get("endDate"), "range.endDate")
        until: date | datetime = last
        if not all_day:
            until = datetime.combine(last, time(23, 59, 59), zone).astimezone(UTC)
        rule["UNTIL"] = [until]
    return rule


def _number(value: Any, minimum: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SkipItem(f"{field} {value!r} is not a whole number >= {minimum}")
    return value


def _days(pattern: Mapping[str, Any]) -> list[str]:
    days = pattern.get("daysOfWeek")
    if not isinstance(days, list) or not days:
        raise SkipItem(f"{pattern.get('type')} pattern without daysOfWeek")
    try:
        codes = [DAY_CODES[str(day).lower()] for day in days]
    except KeyError as error:
        raise SkipItem(f"unknown day of week {error.args[0]!r}") from error
    return sorted(set(codes), key=list(DAY_CODES.values()).index)


def _rule_parts(recurrence: Any) -> dict[str, Any]:
    """The RRULE parts of a pattern (no COUNT/UNTIL); raises `SkipItem` if inexpressible."""
    pattern = recurrence.get("pattern") if isinstance(recurrence, Mapping) else None
    if not isinstance(pattern, Mapping):
        raise SkipItem("recurrence without a pattern")
    kind = pattern.get("type")
    if not isinstance(kind, str) or kind not in PATTERN_FREQ:
        raise SkipItem(f"unknown recurrence pattern type {kind!r}")
    parts: dict[str, Any] = {"FREQ": PATTERN_FREQ[kind]}
    parts["INTERVAL"] = _number(pattern.get("interval", 1), 1, "interval")
    first_day = str(pattern.get("firstDayOfWeek") or "sunday").lower()
    if first_day not in DAY_CODES:
        raise SkipItem(f"unknown firstDayOfWeek {first_day!r}")
    if kind == "weekly":
        parts["BYDAY"] = _days(pattern)
    if kind.endswith("Yearly"):
        parts["BYMONTH"] = _number(pattern.get("month"), 1, "month")
        if parts["BYMONTH"] > 12:
            raise SkipItem(f"month {parts['BYMONTH']} is out of range")
    if kind.startswith("absolute"):
        parts.update(_absolute_day(pattern))
    elif kind.startswith("relative"):
        parts.update(_relative_day(pattern))
    parts["WKST"] = DAY_CODES[first_day]
    return parts


def _absolute_day(pattern: Mapping[str, Any]) -> dict[str, Any]:
    day = _number(pattern.get("dayOfMonth"), 1, "dayOfMonth")
    if day > 31:
        raise SkipItem(f"dayOfMonth {day} is out of range")
    if day <= 28:
        return {"BYMONTHDAY": day}
    # Past the 28th Outlook falls back to the month's last day (see the module docstring).
    return {"BYMONTHDAY": list(range(28, day + 1)), "BYSETPOS": -1}


def _relative_day(pattern: Mapping[str, Any]) -> dict[str, Any]:
    index = str(pattern.get("index") or "first")
    if index not in WEEK_INDEX:
        raise SkipItem(f"unknown week index {index!r}")
    days = _days(pattern)
    if len(days) == 1:
        return {"BYDAY": f"{WEEK_INDEX[index]:+d}{days[0]}"}
    return {"BYDAY": days, "BYSETPOS": WEEK_INDEX[index]}


def _range_type(recurrence: Mapping[str, Any]) -> str:
    range_ = recurrence.get("range")
    if not isinstance(range_, Mapping):
        raise SkipItem("recurrence without a range")
    kind = range_.get("type")
    if kind not in ("endDate", "noEnd", "numbered"):
        raise SkipItem(f"unknown recurrence range type {kind!r}")
    if kind == "endDate":
        parse_day(range_.get("endDate"), "range.endDate")
    if kind == "numbered":
        _number(range_.get("numberOfOccurrences"), 1, "numberOfOccurrences")
    return str(kind)


@dataclass(frozen=True, slots=True)
class Series:
    """A series as RRULE text plus its first occurrence; expands to iCalendar values."""

    rule: vRecur
    first: date | datetime
    zone: tzinfo
    all_day: bool

    def between(self, low: datetime, high: datetime) -> list[date | datetime]:
        """Occurrence starts in [low, high] (aware), as DTSTART-like values."""
        rule, low, high = self._rrule(low, high)
        return [self._value(moment) for moment in rule.between(low, high, inc=True)]

    def first_after(self, low: datetime) -> date | datetime | None:
        """The first occurrence start at or after `low`, or None if the series never happens."""
        rule, low, _high = self._rrule(low, low)
        moment = rule.after(low, inc=True)
        return None if moment is None else self._value(moment)

    def _rrule(self, low: datetime, high: datetime) -> tuple[Any, datetime, datetime]:
        """dateutil's rule from our RRULE text; all-day series run on naive midnights."""
        anchor = self.first
        if self.all_day:
            anchor = datetime.combine(self.first, time())
            low, high = low.replace(tzinfo=None), high.replace(tzinfo=None)
        return rrulestr(self.rule.to_ical().decode("ascii"), dtstart=anchor), low, high

    def _value(self, moment: datetime) -> date | datetime:
        return moment.date() if self.all_day else moment


def series_of(recurrence: Mapping[str, Any], master: Mapping[str, Any], zone: tzinfo) -> Series:
    """The series' rule and first occurrence: on or after range.startDate, at the master's time."""
    all_day = bool(master.get("isAllDay"))
    rule = recurrence_rule(recurrence, zone, all_day)
    start, _end = event_span(master, zone)
    range_start = recurrence["range"].get("startDate")
    start_day = parse_day(range_start, "range.startDate") if range_start else date_of(start)
    anchor: date | datetime = start_day
    if not all_day:
        anchor = datetime.combine(start_day, start.time(), zone)  # type: ignore[union-attr]  # event_span gives datetimes when not all-day
    series = Series(rule, anchor, zone, all_day)
    first = series.first_after(datetime.combine(start_day, time(), UTC) - timedelta(days=1))
    if first is None:
        raise SkipItem("recurrence produces no occurrence")
    return Series(rule, first, zone, all_day)
