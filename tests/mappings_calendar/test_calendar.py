"""The calendar mapper against Graph-shaped events: properties, occurrences, errors, findings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import recurring_ical_events
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, vCategory

from hirondelle.mappings.calendar import (
    event_description,
    event_findings,
    map_event,
    resource_name,
    unmapped_attendees,
)
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Item, Payload

DATA = Path(__file__).parent / "data"
SERIES = [
    "series_weekly_instances_example.json",
    "series_daily_dst.json",
    "series_allday_last_friday.json",
    "series_monthly_31st.json",
]


def document(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def mapped(doc: dict[str, Any]) -> tuple[Payload, Calendar]:
    event = doc["event"]
    item = Item(
        event["id"], event["changeKey"], {"type": event["type"], "iCalUId": event["iCalUId"]}
    )
    payload = map_event(item, json.dumps(doc).encode("utf-8"))
    return payload, Calendar.from_ical(payload.content)


def vevents(calendar: Calendar) -> list[Event]:
    return [cast(Event, event) for event in calendar.walk("VEVENT")]  # built as Event


def addresses(values: Any) -> frozenset[str]:
    if values is None:
        return frozenset()
    values = values if isinstance(values, list) else [values]
    return frozenset(str(v).removeprefix("mailto:").lower() for v in values)


# -- a single online meeting -----------------------------------------------------------------


def test_single_meeting_properties() -> None:
    doc = document("single_online_meeting.json")
    payload, calendar = mapped(doc)
    (vevent,) = vevents(calendar)
    uid = doc["event"]["iCalUId"]
    assert payload.fingerprint == f"uid:{uid}" and payload.attrs["uid"] == uid
    assert payload.attrs["resource"] == resource_name(doc["event"]["id"]) + ".ics"
    assert len(payload.attrs["resource"]) == 44
    assert payload.attrs["content_type"] == "text/calendar; charset=utf-8"
    assert calendar["PRODID"] == "-//Hirondelle//EN" and calendar["VERSION"] == "2.0"
    # 09:00 UTC in Graph is 10:00 in Paris, kept in the event's own zone.
    assert vevent["DTSTART"].params["TZID"] == "Europe/Paris"
    assert vevent.decoded("DTSTART").replace(tzinfo=None) == datetime(2024, 3, 12, 10, 0)
    assert vevent.decoded("DTEND") - vevent.decoded("DTSTART") == timedelta(minutes=45)
    assert vevent["SUMMARY"] == "Point d’étape « Hirondelle » 🐦"
    assert vevent["LOCATION"] == "Salle Everest"
    assert vevent["CLASS"] == "PRIVATE" and vevent["TRANSP"] == "OPAQUE"
    assert vevent["PRIORITY"] == 1
    categories = vevent["CATEGORIES"]
    assert isinstance(categories, vCategory)
    assert [str(c) for c in categories.cats] == ["Projet Hirondelle", "Rouge"]
    assert "STATUS" not in vevent and "RRULE" not in vevent
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]


def test_single_meeting_people() -> None:
    _payload, calendar = mapped(document("single_online_meeting.json"))
    (vevent,) = vevents(calendar)
    organizer = vevent["ORGANIZER"]
    assert str(organizer) == "mailto:camille.martin@contoso.fr"
    assert organizer.params["CN"] == "Camille Martin"
    attendees = vevent["ATTENDEE"]
    assert isinstance(attendees, list)
    people = {str(a).removeprefix("mailto:"): a.params for a in attendees}
    assert "camille.martin@contoso.fr" not in people  # the organizer's own attendee entry
    expected = {
        "lea.dubois@contoso.fr": ("REQ-PARTICIPANT", "ACCEPTED"),
        "hugo.bernard@contoso.fr": ("REQ-PARTICIPANT", "DECLINED"),
        "anais.petit@fabrikam.com": ("OPT-PARTICIPANT", "TENTATIVE"),
        "tom.durand@contoso.fr": ("REQ-PARTICIPANT", "NEEDS-ACTION"),
        "ines.moreau@fabrikam.com": ("OPT-PARTICIPANT", "NEEDS-ACTION"),
        "salle.everest@contoso.fr": ("NON-PARTICIPANT", "ACCEPTED"),
    }
    assert {k: (v["ROLE"], v["PARTSTAT"]) for k, v in people.items()} == expected
    assert people["anais.petit@fabrikam.com"]["CN"] == "Anaïs Petit"
    assert people["lea.dubois@contoso.fr"]["RSVP"] == "TRUE"
    assert people["salle.everest@contoso.fr"]["CUTYPE"] == "RESOURCE"


def test_single_meeting_text_alarm_and_conference() -> None:
    doc = document("single_online_meeting.json")
    _payload, calendar = mapped(doc)
    (vevent,) = vevents(calendar)
    join_url = doc["event"]["onlineMeeting"]["joinUrl"]
    description = str(vevent["DESCRIPTION"])
    assert description.startswith("Point d’étape du projet 🚀 : budget & planning.")
    assert "- Revue des jalons\n- Risques" in description
    assert join_url in description and "<" not in description.replace(f"<{join_url}>", "")
    assert "p{margin:0}" not in description  # style sheets are not text
    conference = vevent["CONFERENCE"]
    assert str(conference) == join_url and conference.params["FEATURE"] == "VIDEO"
    assert conference.params["VALUE"] == "URI" and str(vevent["URL"]) == join_url
    (alarm,) = vevent.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY" and alarm.decoded("TRIGGER") == timedelta(minutes=-30)


def test_mapping_is_deterministic() -> None:
    doc = document("series_weekly_instances_example.json")
    assert mapped(doc)[0].content == mapped(doc)[0].content


# -- series: the expanded output equals the instances Graph listed ---------------------------


def graph_time(value: dict[str, str], all_day: bool) -> date | datetime:
    moment = datetime.fromisoformat(value["dateTime"])
    assert value["timeZone"] == "UTC"
    return moment.date() if all_day else moment.replace(tzinfo=UTC)


def ical_time(value: date | datetime) -> date | datetime:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


Occurrence = tuple[Any, Any, str, str, frozenset[str]]


def graph_occurrences(doc: dict[str, Any]) -> set[Occurrence]:
    occurrences = set()
    for instance in doc["instances"]:
        all_day = instance["isAllDay"]
        people = [
            a["emailAddress"]["address"]
            for a in instance["attendees"]
            if a["status"]["response"] != "organizer"
        ]
        occurrences.add(
            (
                graph_time(instance["start"], all_day),
                graph_time(instance["end"], all_day),
                instance["subject"],
                event_description(instance),
                frozenset(p.lower() for p in people),
            )
        )
    return occurrences


def expanded_occurrences(calendar: Calendar, window: dict[str, str]) -> set[Occurrence]:
    start = datetime.fromisoformat(window["start"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(window["end"]).replace(tzinfo=UTC)
    return {
        (
            ical_time(v.decoded("DTSTART")),
            ical_time(v.decoded("DTEND")),
            str(v.get("SUMMARY", "")),
            str(v.get("DESCRIPTION", "")),
            addresses(v.get("ATTENDEE")),
        )
        for v in recurring_ical_events.of(calendar).between(start, end)
    }


@pytest.mark.parametrize("name", SERIES)
def test_series_expands_to_the_graph_instances(name: str) -> None:
    doc = document(name)
    _payload, calendar = mapped(doc)
    assert expanded_occurrences(calendar, doc["window"]) == graph_occurrences(doc)


EXPECTED_DATES = {
    "series_weekly_instances_example.json": (
        "FREQ=WEEKLY;UNTIL=20190625T065959Z;INTERVAL=1;BYDAY=MO;WKST=SU",
        [datetime(2019, 4, 22, 13, 30)],
        [datetime(2019, 4, 15, 13, 30)],
    ),
    "series_daily_dst.json": (
        "FREQ=DAILY;UNTIL=20240420T215959Z;INTERVAL=2;WKST=MO",
        [datetime(2024, 4, 8, 8, 30)],
        [datetime(2024, 4, 2, 8, 30)],
    ),
    "series_allday_last_friday.json": (
        "FREQ=MONTHLY;COUNT=6;INTERVAL=1;BYDAY=-1FR;WKST=MO",
        [date(2024, 5, 31)],
        [date(2024, 3, 29)],
    ),
    "series_monthly_31st.json": (
        "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=28,29,30,31;BYSETPOS=-1;WKST=SU",
        [],
        [],
    ),
}


def ical_text(value: Any) -> str:
    """A property's iCalendar text (`to_ical` gives bytes)."""
    raw = value.to_ical()
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def naive(value: date | datetime) -> date | datetime:
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


@pytest.mark.parametrize("name", SERIES)
def test_series_rule_cancellations_and_exceptions(name: str) -> None:
    rule, cancelled, moved = EXPECTED_DATES[name]
    _payload, calendar = mapped(document(name))
    master, *exceptions = vevents(calendar)
    assert ical_text(master["RRULE"]) == rule
    exdates = master.get("EXDATE")
    found = [naive(d.dt) for d in exdates.dts] if exdates is not None else []
    assert found == cancelled
    assert [naive(e.decoded("RECURRENCE-ID")) for e in exceptions] == moved
    for exception in exceptions:
        assert exception["UID"] == master["UID"]
        assert exception["RECURRENCE-ID"].params.get("TZID") == master["DTSTART"].params.get("TZID")


def test_exception_carries_its_own_text_and_attendees() -> None:
    _payload, calendar = mapped(document("series_weekly_instances_example.json"))
    _master, exception = vevents(calendar)
    assert exception["SUMMARY"] == "Review strategy for Q3 (moved)"
    assert exception["DESCRIPTION"] == "Changing meeting from 4/15 to 4/16."
    assert addresses(exception["ATTENDEE"]) == {
        "adelev@m365x214355.onmicrosoft.com",
        "lynner@m365x214355.onmicrosoft.com",
    }
    assert exception.decoded("DTSTART").replace(tzinfo=None) == datetime(2019, 4, 16, 13, 30)


def test_all_day_series_uses_dates() -> None:
    _payload, calendar = mapped(document("series_allday_last_friday.json"))
    master = vevents(calendar)[0]
    assert master["DTSTART"].params["VALUE"] == "DATE"
    assert master.decoded("DTSTART") == date(2024, 1, 26)
    assert master.decoded("DTEND") == date(2024, 1, 27)
    assert master["TRANSP"] == "TRANSPARENT"
    assert master.walk("VALARM")[0].decoded("TRIGGER") == timedelta(minutes=-1080)


def test_vtimezone_covers_the_series() -> None:
    _payload, calendar = mapped(document("series_daily_dst.json"))
    (timezone,) = calendar.walk("VTIMEZONE")
    assert timezone["TZID"] == "Europe/Paris"
    transitions = [ical_text(sub["DTSTART"]) for sub in timezone.subcomponents]
    transitions += [r.to_ical().decode() for sub in timezone.subcomponents for r in _rdates(sub)]
    assert any(t.startswith("20240331T") for t in transitions)  # the change inside the series


def _rdates(component: Any) -> list[Any]:
    rdates = component.get("RDATE")
    if rdates is None:
        return []
    rdates = rdates if isinstance(rdates, list) else [rdates]
    return [value for rdate in rdates for value in [rdate]]


def test_window_border_occurrence_is_not_excluded() -> None:
    doc = document("series_weekly_instances_example.json")
    # A window ending during the 4/29 meeting: Graph may or may not list it; no EXDATE for it.
    doc["window"]["end"] = "2019-04-29T20:45:00Z"
    doc["instances"] = [
        i for i in doc["instances"] if not i["originalStart"].startswith("2019-04-29")
    ]
    _payload, calendar = mapped(doc)
    exdates = [naive(d.dt) for d in vevents(calendar)[0].get("EXDATE").dts]
    assert exdates == [datetime(2019, 4, 22, 13, 30)]


def test_times_given_in_the_event_zone_are_read_the_same() -> None:
    doc = document("single_online_meeting.json")
    doc["event"]["start"] = {
        "dateTime": "2024-03-12T10:00:00.0000000",
        "timeZone": "Romance Standard Time",
    }
    doc["event"]["end"] = {
        "dateTime": "2024-03-12T10:45:00.0000000",
        "timeZone": "Romance Standard Time",
    }
    _payload, calendar = mapped(doc)
    (vevent,) = vevents(calendar)
    assert vevent.decoded("DTSTART").astimezone(UTC) == datetime(2024, 3, 12, 9, 0, tzinfo=UTC)


def test_cancelled_event_and_utc_zone() -> None:
    doc = document("single_online_meeting.json")
    doc["event"].update(isCancelled=True, originalStartTimeZone="tzone://Microsoft/Utc")
    doc["event"].update(originalEndTimeZone="UTC", sensitivity="confidential", showAs="free")
    _payload, calendar = mapped(doc)
    (vevent,) = vevents(calendar)
    assert vevent["STATUS"] == "CANCELLED" and vevent["CLASS"] == "CONFIDENTIAL"
    assert vevent["TRANSP"] == "TRANSPARENT"
    assert vevent.decoded("DTSTART") == datetime(2024, 3, 12, 9, 0, tzinfo=UTC)
    assert calendar.walk("VTIMEZONE") == []


# -- malformed content ------------------------------------------------------------------------


def broken(change: Any) -> bytes:
    doc = document("series_weekly_instances_example.json")
    change(doc)
    return json.dumps(doc).encode()


MALFORMED = {
    "not json": b"{nope",
    "not an object": b"[]",
    "no event": b'{"instances": []}',
    "no iCalUId": broken(lambda d: d["event"].pop("iCalUId")),
    "no start": broken(lambda d: d["event"].pop("start")),
    "bad start": broken(lambda d: d["event"]["start"].update(dateTime="yesterday")),
    "unknown zone": broken(lambda d: d["event"]["start"].update(timeZone="Mars Standard Time")),
    "instances not a list": broken(lambda d: d.update(instances={"a": 1})),
    "unknown pattern": broken(lambda d: d["event"]["recurrence"]["pattern"].update(type="hourly")),
    "weekly without days": broken(lambda d: d["event"]["recurrence"]["pattern"].pop("daysOfWeek")),
    "zero interval": broken(lambda d: d["event"]["recurrence"]["pattern"].update(interval=0)),
    "unknown range": broken(lambda d: d["event"]["recurrence"]["range"].update(type="forever")),
    "master without recurrence": broken(lambda d: d["event"].update(recurrence=None)),
}
TOLERATED = {  # odd but harmless shapes: the value is ignored, the event still maps
    "bad originalStart": broken(lambda d: d["instances"][0].update(originalStart=42)),
    "string attendees": broken(lambda d: d["event"].update(attendees="everyone")),
    "no window": broken(lambda d: d.pop("window")),
    "null body": broken(lambda d: d["event"].update(body=None, categories=None, location=7)),
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_content_is_skipped_with_a_reason(content: bytes) -> None:
    with pytest.raises(SkipItem) as raised:
        map_event(Item("AAMkAGUzYRgWAAA=", "ck", {"type": "seriesMaster"}), content)
    assert str(raised.value)


@pytest.mark.parametrize("content", TOLERATED.values(), ids=TOLERATED.keys())
def test_odd_values_are_ignored(content: bytes) -> None:
    payload = map_event(Item("AAMkAGUzYRgWAAA=", "ck", {"type": "seriesMaster"}), content)
    assert Calendar.from_ical(payload.content).walk("VEVENT")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["single_online_meeting.json", *SERIES]), data=st.data())
def test_any_damaged_field_gives_a_payload_or_skip(name: str, data: st.DataObject) -> None:
    doc = document(name)
    event = doc["event"]
    targets = [event, *doc["instances"][:1], event["start"], *event["attendees"][:1]]
    if event["recurrence"]:
        targets += [event["recurrence"]["pattern"], event["recurrence"]["range"]]
    target = data.draw(st.sampled_from(targets))
    target[data.draw(st.sampled_from(sorted(target)))] = data.draw(JSON)
    findings = event_findings(doc["event"]) + unmapped_attendees(doc["event"], ["contoso.fr"])
    assert all(isinstance(finding, str) for finding in findings)
    try:
        payload = map_event(Item("AAMkAGUzYRgWAAA=", "ck"), json.dumps(doc).encode())
    except SkipItem as error:
        assert str(error)
    else:
        assert Calendar.from_ical(payload.content).walk("VEVENT")


def test_unknown_zone_reason_names_the_zone() -> None:
    content = MALFORMED["unknown zone"]
    with pytest.raises(SkipItem, match="Mars Standard Time"):
        map_event(Item("x", "ck"), content)


# -- findings -----------------------------------------------------------------------------------


def test_findings_for_a_clean_event_are_empty() -> None:
    assert event_findings(document("series_weekly_instances_example.json")["event"]) == []


def test_findings_name_each_problem() -> None:
    event = document("single_online_meeting.json")["event"]
    event["organizer"] = {"emailAddress": {"name": "Somebody"}}
    event["originalStartTimeZone"] = "tzone://Microsoft/Custom"
    event["hasAttachments"] = True
    event["attendees"].append({"type": "required", "emailAddress": {"name": "Guest"}})
    event["recurrence"] = {"pattern": {"type": "hourly"}, "range": {"type": "noEnd"}}
    findings = event_findings(event)
    assert any("no organizer address" in f for f in findings)
    assert any("tzone://Microsoft/Custom" in f for f in findings)
    assert any("attachments" in f for f in findings)
    assert any("'Guest'" in f for f in findings)
    assert any("recurrence cannot be expressed" in f and "hourly" in f for f in findings)
    assert event_findings("nonsense") == ["event is not a JSON object"]


def test_unmapped_attendees_outside_the_known_domains() -> None:
    event = document("single_online_meeting.json")["event"]
    assert unmapped_attendees(event, ["Contoso.fr"]) == [
        "anais.petit@fabrikam.com",
        "ines.moreau@fabrikam.com",
    ]
    assert unmapped_attendees(event, ["contoso.fr", "@fabrikam.com"]) == []
    assert unmapped_attendees(None, ["contoso.fr"]) == []
