"""Windows time-zone names to IANA (CLDR windowsZones) and VTIMEZONE generation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from hirondelle.mappings.timezones import WINDOWS_TO_IANA, iana_name, is_utc, vtimezone, zone_of


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("Romance Standard Time", "Europe/Paris"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("GMT Standard Time", "Europe/London"),
        ("Eastern Standard Time", "America/New_York"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("romance standard time", "Europe/Paris"),
        ("Europe/Lisbon", "Europe/Lisbon"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
    ],
)
def test_known_names_map_to_iana(name: str, iana: str) -> None:
    assert iana_name(name) == iana


@pytest.mark.parametrize(
    "name", ["tzone://Microsoft/Custom", "Mars Standard Time", "", None, "EST"]
)
def test_unknown_names_map_to_nothing(name: str | None) -> None:
    assert iana_name(name) is None and zone_of(name) is None


def test_every_cldr_name_resolves_to_a_zone() -> None:
    assert len(WINDOWS_TO_IANA) > 100
    for name in WINDOWS_TO_IANA:
        assert zone_of(name) is not None, name


def test_zone_of_utc_is_the_utc_singleton() -> None:
    assert zone_of("UTC") is UTC and is_utc("tzone://Microsoft/Utc") and not is_utc("GMT+1")


def test_vtimezone_offsets_agree_with_tzdata() -> None:
    component = vtimezone("Europe/Paris", date(2024, 1, 1), date(2025, 12, 31))
    assert component["TZID"] == "Europe/Paris"
    zone = component.to_tz()
    for moment in (
        datetime(2024, 1, 15, 12),
        datetime(2024, 7, 15, 12),
        datetime(2025, 10, 27, 12),
    ):
        assert (
            moment.replace(tzinfo=zone).utcoffset()
            == moment.replace(tzinfo=ZoneInfo("Europe/Paris")).utcoffset()
        )
    assert vtimezone("Europe/Paris", date(2024, 1, 1), date(2025, 12, 31)) is not component
