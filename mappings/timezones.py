"""Windows time-zone names (as Graph returns them) to IANA zones, and VTIMEZONE components.

Graph names zones the Windows way ("Romance Standard Time") in `start.timeZone`,
`originalStartTimeZone` and `recurrence.range.recurrenceTimeZone`; it also accepts IANA names
and writes a few special values ("tzone://Microsoft/Utc", "tzone://Microsoft/Custom").
https://learn.microsoft.com/en-us/graph/api/resources/datetimetimezone

The Windows -> IANA table is CLDR's windowsZones.xml (territory "001", the golden zone of each
Windows name). It is not copied here: the `icalendar` package ships it, generated from
https://github.com/unicode-org/cldr/blob/main/common/supplemental/windowsZones.xml
(`icalendar.timezone.windows_to_olson.WINDOWS_TO_OLSON`, its CLDR commit in `version`).
"""

from __future__ import annotations

from datetime import UTC, date, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Timezone
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
from icalendar.timezone.windows_to_olson import version as CLDR_VERSION

__all__ = ["CLDR_VERSION", "WINDOWS_TO_IANA", "iana_name", "is_utc", "vtimezone", "zone_of"]

WINDOWS_TO_IANA: dict[str, str] = dict(WINDOWS_TO_OLSON)

# Names that mean UTC whatever table is used; "tzone://Microsoft/Utc" is what Outlook writes
# in originalStartTimeZone for events created in UTC.
_UTC_NAMES = frozenset({"utc", "etc/utc", "gmt", "etc/gmt", "z", "tzone://microsoft/utc"})


def is_utc(name: str | None) -> bool:
    """True if the Graph time-zone name stands for UTC."""
    return bool(name) and str(name).strip().lower() in _UTC_NAMES


@lru_cache(maxsize=512)
def iana_name(name: str | None) -> str | None:
    """The IANA zone for a Graph time-zone name (Windows or IANA), "UTC", or None if unknown.

    "tzone://Microsoft/Custom" (a zone defined inside the event) has no name to map: None.
    """
    if not name or not isinstance(name, str):
        return None
    name = name.strip()
    if is_utc(name):
        return "UTC"
    mapped = WINDOWS_TO_IANA.get(name)
    if mapped is None:
        lowered = name.lower()
        mapped = next((v for k, v in WINDOWS_TO_IANA.items() if k.lower() == lowered), None)
    candidate = mapped or name
    if "/" not in candidate and candidate != "UTC":
        return None  # not an IANA area/location name ("EST5EDT"-like aliases stay unmapped)
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return candidate


def zone_of(name: str | None) -> tzinfo | None:
    """The tzinfo for a Graph time-zone name: `datetime.UTC`, a `ZoneInfo`, or None."""
    iana = iana_name(name)
    if iana is None:
        return None
    return UTC if iana == "UTC" else ZoneInfo(iana)


@lru_cache(maxsize=256)
def _vtimezone_ical(iana: str, first_year: int, last_year: int) -> bytes:
    component = Timezone.from_tzinfo(
        ZoneInfo(iana), iana, date(first_year, 1, 1), date(last_year, 12, 31)
    )
    return component.to_ical()


def vtimezone(iana: str, first: date, last: date) -> Timezone:
    """A VTIMEZONE for `iana` whose observances cover `first`..`last` (whole years).

    Built by icalendar from the IANA data (tzdata); a fresh component on every call, the
    serialised form cached per year range because generating it walks every transition.
    """
    ical = _vtimezone_ical(iana, first.year, max(first.year, last.year))
    return Timezone.from_ical(ical)  # type: ignore[return-value]  # a VTIMEZONE's text parses to a Timezone
