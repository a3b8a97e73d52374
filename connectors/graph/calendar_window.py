"""The window of time a calendar migration carries, and the date arithmetic around it.

Graph refuses a calendar view longer than 1,825 days ("The range between the start
and end dates is greater than the allowed range. Maximum number of days: 1825",
microsoftgraph/microsoft-graph-docs-contrib issue 6321), so a window of several
years is read as consecutive slices. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...migrator.errors import ConfigError

# calendarView refuses ranges over 1,825 days; slices stay a little under.
SLICE = timedelta(days=1820)
DEFAULT_YEARS = 5
ZONE_MARGIN = timedelta(hours=14)  # the widest UTC offset, for times not given in UTC
PERIOD_DAYS = {"daily": 1, "weekly": 7, "absoluteMonthly": 31, "relativeMonthly": 31,
               "absoluteYearly": 366, "relativeYearly": 366}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    """The span of time whose events are carried, in UTC, cut into calendar-view slices."""

    start: datetime
    end: datetime

    @classmethod
    def from_settings(
        cls, start: str | date | None, end: str | date | None, now: datetime | None = None
    ) -> Window:
        """The configured window; by default five years on each side of today (UTC)."""
        moment = now or datetime.now(UTC)
        today = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        try:
            begin = _moment(start) if start else _years(today, -DEFAULT_YEARS)
            finish = _moment(end) if end else _years(today, DEFAULT_YEARS)
        except ValueError as exc:
            names = "run.calendar_window_start/run.calendar_window_end"
            raise ConfigError(names, str(exc)) from None
        if finish <= begin:
            raise ConfigError(
                "run.calendar_window_end", "must come after run.calendar_window_start"
            )
        return cls(begin, finish)

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        """A window written by `start_text`/`end_text`; ValueError if it is not one."""
        begin, finish = _moment(start), _moment(end)
        if finish <= begin:
            raise ValueError("empty window")
        return cls(begin, finish)

    @property
    def start_text(self) -> str:
        return iso(self.start)

    @property
    def end_text(self) -> str:
        return iso(self.end)

    def slices(self) -> list[tuple[datetime, datetime]]:
        """Equal consecutive ranges, each short enough for one calendar view, covering it."""
        total = self.end - self.start
        count = -(-total // SLICE)  # ceiling division of two timedeltas
        step = timedelta(seconds=int((total / count).total_seconds()))
        bounds = [(self.start + step * i, self.start + step * (i + 1)) for i in range(count)]
        bounds[-1] = (bounds[-1][0], self.end)
        return bounds


def overlaps(start: Any, end: Any, window: Window) -> bool:
    """Whether an event's span (two dateTimeTimeZone values) meets the window.

    Without `Prefer: outlook.timezone` Graph gives UTC; any other zone is judged
    with the widest offset as a margin rather than guessed.
    """
    try:
        begin, begin_utc = _graph_time(start)
        finish, finish_utc = _graph_time(end)
    except (TypeError, ValueError, AttributeError):
        return True
    margin = timedelta(0) if begin_utc and finish_utc else ZONE_MARGIN
    return begin < window.end + margin and finish > window.start - margin


def numbered_range_end(recurrence: Mapping[str, Any], first: date) -> date:
    """A date on or after the last occurrence of a `numbered` series (a cheap upper bound)."""
    pattern = recurrence.get("pattern") or {}
    series = recurrence.get("range") or {}
    count = max(1, int(series.get("numberOfOccurrences") or 1))
    interval = max(1, int(pattern.get("interval") or 1))
    period = PERIOD_DAYS.get(str(pattern.get("type")), 366)
    if pattern.get("type") == "weekly":
        per_week = max(1, len(pattern.get("daysOfWeek") or ()))
        return first + timedelta(days=7 * interval * (-(-count // per_week)) + 7)
    return first + timedelta(days=period * interval * count)


def _graph_time(value: Mapping[str, Any]) -> tuple[datetime, bool]:
    """A dateTimeTimeZone as an aware datetime (read as UTC) and whether it was UTC."""
    text = str(value["dateTime"])
    head, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(head + ("." + fraction[:6] if fraction else ""))
    return moment.replace(tzinfo=UTC), str(value.get("timeZone") or "UTC") == "UTC"


def _moment(value: str | date) -> datetime:
    """A configured or stored bound as an aware UTC datetime; ValueError if unreadable."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _years(moment: datetime, years: int) -> datetime:
    """`moment` moved by whole years (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def iso(moment: datetime) -> str:
    """A UTC instant as Graph's query parameters take it: `2024-01-01T00:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
