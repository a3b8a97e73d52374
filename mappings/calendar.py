"""The calendar mapper: a Graph single event or series master (plus its instances) to iCalendar.

Pure: no network, no database, no file I/O. The content is the JSON document the Graph
calendar source fetches: {"event": <single or master>, "instances": [<occurrences and
exceptions in the window>], "window": {"start", "end"}}. The result is one VCALENDAR holding
the VTIMEZONE of the event's zone, the event (with RRULE and EXDATE for a series) and one
VEVENT with RECURRENCE-ID per exception.

Time zones: Graph returns times in UTC unless asked otherwise, while the event lives in its
own zone (`originalStartTimeZone`, and `recurrence.range.recurrenceTimeZone` for a series):
https://learn.microsoft.com/en-us/graph/api/resources/event . Times are converted to that
zone so that a series repeats at the same wall-clock time across daylight-saving changes.

Recurrence (https://learn.microsoft.com/en-us/graph/api/resources/patternedrecurrence) maps to
one RRULE (`event_recurrence`); the event's times are read by `event_times`.

Cancelled occurrences are simply missing from Graph's instances
(https://learn.microsoft.com/en-us/graph/api/event-list-instances): every occurrence the rule
produces well inside the window and absent from "instances" becomes an EXDATE.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from html.parser import HTMLParser
from typing import Any

from icalendar import Alarm, Calendar, Event, vCalAddress, vUri

from ..migrator.errors import SkipItem
from ..migrator.model import Item, Payload
from .event_recurrence import Series, recurrence_problem, series_of
from .event_times import (
    date_of,
    event_span,
    event_zone,
    local_day,
    member_of,
    parse_datetime,
    parse_instant,
    zone_names,
)
from .timezones import iana_name, vtimezone

PRODID = "-//Hirondelle//EN"
CONTENT_TYPE = "text/calendar; charset=utf-8"
JOIN_LABEL = "Join the online meeting"

PARTSTAT = {
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentativelyAccepted": "TENTATIVE",
    "none": "NEEDS-ACTION",
    "notResponded": "NEEDS-ACTION",
}
ROLE = {"required": "REQ-PARTICIPANT", "optional": "OPT-PARTICIPANT", "resource": "NON-PARTICIPANT"}
CLASS = {"private": "PRIVATE", "confidential": "CONFIDENTIAL"}
PRIORITY = {"high": 1, "normal": 5, "low": 9}
_FATAL_SHAPES = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


def resource_name(source_id: str) -> str:
    """The stable 40-hex-digit name of the target resource for a Graph id (reruns overwrite it)."""
    return hashlib.sha1(source_id.encode("utf-8")).hexdigest()


# -- public entry points ------------------------------------------------------------------


def map_event(item: Item, content: bytes) -> Payload:
    """The .ics payload of one single event or series master (see the module docstring).

    Raises `SkipItem` with the reason when the content is malformed or cannot be expressed.
    """
    event, instances, window = _load(content)
    uid = event.get("iCalUId")
    if not isinstance(uid, str) or not uid:
        raise SkipItem("event has no iCalUId")
    try:
        calendar = _calendar(event, instances, window, uid)
        ics = calendar.to_ical()
    except SkipItem:
        raise
    except _FATAL_SHAPES as error:
        raise SkipItem(f"malformed event: {type(error).__name__}: {error}") from error
    attrs = {"resource": f"{resource_name(item.source_id)}.ics", "uid": uid}
    attrs["content_type"] = CONTENT_TYPE
    return Payload(item.source_id, ics, f"uid:{uid}", attrs)


def event_description(event: Mapping[str, Any]) -> str:
    """DESCRIPTION text of an event: its body as text, keeping the online meeting join URL."""
    body = event.get("body")
    text = ""
    if isinstance(body, Mapping) and isinstance(body.get("content"), str):
        text = body_text(body["content"], str(body.get("contentType") or "html"))
    elif isinstance(event.get("bodyPreview"), str):
        text = body_text(event["bodyPreview"], "text")
    join_url = _join_url(event)
    if join_url and join_url not in text:
        text = f"{text}\n\n{JOIN_LABEL}: {join_url}".strip()
    return text


def event_findings(event: Any) -> list[str]:
    """What `plan` should tell about an event before it is migrated (empty when nothing)."""
    if not isinstance(event, Mapping):
        return ["event is not a JSON object"]
    findings = [
        f"time zone {name!r} ({field}) has no IANA mapping"
        for field, name in zone_names(event)
        if iana_name(name) is None
    ]
    recurrence = event.get("recurrence")
    if recurrence:
        problem = recurrence_problem(recurrence)
        if problem:
            findings.append(f"recurrence cannot be expressed: {problem}")
    elif event.get("type") == "seriesMaster":
        findings.append("series master without a recurrence")
    attendees = _attendee_entries(event)
    if attendees and not _address(event.get("organizer")):
        findings.append("event has attendees but no organizer address")
    for attendee in attendees:
        if not _address(attendee):
            name = member_of(attendee.get("emailAddress"), "name") or "?"
            findings.append(f"attendee {name!r} has no email address and is left out")
    if event.get("hasAttachments"):
        findings.append("event attachments are not carried")
    if not event.get("iCalUId"):
        findings.append("event has no iCalUId")
    return findings


def unmapped_attendees(event: Any, known_domains: Iterable[str]) -> list[str]:
    """Organizer and attendee addresses (lower case, sorted) outside `known_domains`.

    Domains compare case-insensitively and exactly (a subdomain is another domain).
    """
    if not isinstance(event, Mapping):
        return []
    known = {d.strip().lower().lstrip("@") for d in known_domains}
    people = [event.get("organizer"), *_attendee_entries(event)]
    addresses = {a.lower() for a in map(_address, people) if a}
    return sorted(a for a in addresses if a.rpartition("@")[2] not in known)


# -- content ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime
    end: datetime


def _load(content: Any) -> tuple[dict[str, Any], list[dict[str, Any]], _Window | None]:
    if not isinstance(content, bytes | bytearray | str):
        raise SkipItem("calendar content is not JSON bytes")
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        raise SkipItem(f"calendar content is not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("event"), dict):
        raise SkipItem("calendar content has no event object")
    instances = document.get("instances") or []
    if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
        raise SkipItem("calendar content has malformed instances")
    return document["event"], instances, _window(document.get("window"))


def _window(window: Any) -> _Window | None:
    if not isinstance(window, Mapping) or not window.get("start") or not window.get("end"):
        return None
    start = parse_instant(window["start"], "window.start")
    end = parse_instant(window["end"], "window.end")
    return _Window(start, end) if end > start else None


# -- components ---------------------------------------------------------------------------


def _calendar(
    event: dict[str, Any], instances: list[dict[str, Any]], window: _Window | None, uid: str
) -> Calendar:
    zone = event_zone(event)
    recurrence = event.get("recurrence")
    if event.get("type") == "seriesMaster" and not recurrence:
        raise SkipItem("series master without a recurrence")
    components: list[Event] = []
    if recurrence:
        components = _series_components(event, instances, window, zone, uid)
    else:
        start, end = event_span(event, zone)
        components = [_vevent(event, uid, start, end)]
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    iana = iana_name(getattr(zone, "key", "UTC"))
    if iana and iana != "UTC":
        low, high = _date_bounds(components, event, window)
        calendar.add_component(vtimezone(iana, low - timedelta(days=366), high))
    for component in components:
        calendar.add_component(component)
    return calendar


def _series_components(
    master: dict[str, Any],
    instances: list[dict[str, Any]],
    window: _Window | None,
    zone: tzinfo,
    uid: str,
) -> list[Event]:
    series = series_of(master["recurrence"], master, zone)
    start, end = event_span(master, zone)
    first = series.first
    duration = end - start  # type: ignore[operator]  # event_span gives two dates or two datetimes
    vevent = _vevent(master, uid, first, first + duration)
    vevent.add("rrule", series.rule)
    keys = {_instance_key(instance, series) for instance in instances}
    exdates = [o for o in _certain_occurrences(series, window, duration) if _key(o) not in keys]
    if exdates:
        vevent.add("exdate", exdates)
    components = [vevent]
    for instance in instances:
        if instance.get("type") == "exception":
            components.append(_exception(instance, series, uid))
    return components


def _key(occurrence: date | datetime) -> date | datetime:
    """What identifies an occurrence: its day (all-day) or its UTC instant."""
    return occurrence.astimezone(UTC) if isinstance(occurrence, datetime) else occurrence


def _instance_key(instance: Mapping[str, Any], series: Series) -> date | datetime:
    """The occurrence an instance stands for: its originalStart, else its own start."""
    original = instance.get("originalStart")
    if isinstance(original, str) and original:
        moment = parse_datetime(original, "originalStart")
        if series.all_day:
            return local_day(moment, series.zone)
        return parse_instant(original, "originalStart")
    return _key(event_span({**instance, "isAllDay": series.all_day}, series.zone)[0])


def _certain_occurrences(
    series: Series, window: _Window | None, duration: timedelta
) -> list[date | datetime]:
    """The rule's occurrences that Graph must have listed: well inside the window."""
    if window is None:
        return []
    found = series.between(window.start - timedelta(days=1), window.end)
    if series.all_day:
        low, high = window.start.date(), window.end.date()
        return [d for d in found if low < d and d + timedelta(days=1) < high]
    return [o for o in found if window.start <= o and o + duration <= window.end]


def _exception(instance: Mapping[str, Any], series: Series, uid: str) -> Event:
    key = _instance_key(instance, series)
    recurrence_id: date | datetime = key
    if isinstance(key, datetime):
        recurrence_id = key.astimezone(series.zone)
    start, end = event_span(instance, series.zone)
    vevent = _vevent(instance, uid, start, end)
    vevent.add("recurrence-id", recurrence_id)
    return vevent


def _date_bounds(
    components: list[Event], event: Mapping[str, Any], window: _Window | None
) -> tuple[date, date]:
    days = [date_of(c.decoded("dtstart")) for c in components]
    days += [date_of(c.decoded("dtend")) for c in components]
    if window is not None and event.get("recurrence"):
        days.append(window.end.date())
    for until in components[0].get("RRULE", {}).get("UNTIL", []):
        days.append(date_of(until))
    return min(days), max(days)


def _vevent(event: Mapping[str, Any], uid: str, start: date | datetime, end: Any) -> Event:
    vevent = Event()
    vevent.add("uid", uid)
    vevent.add("dtstamp", _stamp(event))
    vevent.add("dtstart", start)
    vevent.add("dtend", end)
    _describe(vevent, event)
    return vevent


def _stamp(event: Mapping[str, Any]) -> datetime:
    for field in ("lastModifiedDateTime", "createdDateTime"):
        value = event.get(field)
        if isinstance(value, str) and value:
            return parse_instant(value, field)
    return datetime(1970, 1, 1, tzinfo=UTC)


def _describe(vevent: Event, event: Mapping[str, Any]) -> None:
    """Everything but the times: text, people, alarm, classification, meeting link."""
    subject = event.get("subject")
    if isinstance(subject, str) and subject:
        vevent.add("summary", subject)
    description = event_description(event)
    if description:
        vevent.add("description", description)
    location = event.get("location")
    if isinstance(location, Mapping) and location.get("displayName"):
        vevent.add("location", str(location["displayName"]))
    _add_people(vevent, event)
    _add_flags(vevent, event)
    join_url = _join_url(event)
    if join_url:
        conference = {"VALUE": "URI", "FEATURE": "VIDEO", "LABEL": JOIN_LABEL}
        vevent.add("conference", vUri(join_url), parameters=conference)
        vevent.add("url", vUri(join_url))
    if event.get("isReminderOn"):
        vevent.add_component(_alarm(event))
    for field, name in (("createdDateTime", "created"), ("lastModifiedDateTime", "last-modified")):
        if isinstance(event.get(field), str) and event.get(field):
            vevent.add(name, parse_instant(event[field], field))


def _add_flags(vevent: Event, event: Mapping[str, Any]) -> None:
    categories = [c for c in event.get("categories") or [] if isinstance(c, str) and c]
    if categories:
        vevent.add("categories", categories)
    vevent.add("class", CLASS.get(str(event.get("sensitivity")), "PUBLIC"))
    show_as = str(event.get("showAs") or "busy")
    vevent.add("transp", "TRANSPARENT" if show_as == "free" else "OPAQUE")
    vevent.add("x-microsoft-cdo-busystatus", show_as.upper())
    if str(event.get("importance")) in PRIORITY:
        vevent.add("priority", PRIORITY[str(event.get("importance"))])
    if event.get("isCancelled"):
        vevent.add("status", "CANCELLED")


def _alarm(event: Mapping[str, Any]) -> Alarm:
    minutes = event.get("reminderMinutesBeforeStart")
    minutes = minutes if isinstance(minutes, int) and not isinstance(minutes, bool) else 15
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", str(event.get("subject") or "Reminder"))
    alarm.add("trigger", timedelta(minutes=-minutes))
    return alarm


def _add_people(vevent: Event, event: Mapping[str, Any]) -> None:
    organizer = _cal_address(event.get("organizer"))
    if organizer is not None:
        vevent.add("organizer", organizer)
    for attendee in _attendee_entries(event):
        status = attendee.get("status")
        response = status.get("response") if isinstance(status, Mapping) else None
        address = _cal_address(attendee)
        if response == "organizer" or address is None:
            continue
        kind = str(attendee.get("type") or "required")
        address.params["ROLE"] = ROLE.get(kind, "REQ-PARTICIPANT")
        address.params["PARTSTAT"] = PARTSTAT.get(str(response), "NEEDS-ACTION")
        if kind == "resource":
            address.params["CUTYPE"] = "RESOURCE"
        wanted = event.get("responseRequested", True) is not False and kind != "resource"
        address.params["RSVP"] = "TRUE" if wanted else "FALSE"
        vevent.add("attendee", address, encode=False)


def _attendee_entries(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    attendees = event.get("attendees")
    if not isinstance(attendees, list):
        return []
    return [a for a in attendees if isinstance(a, Mapping)]


def _address(recipient: Any) -> str | None:
    if not isinstance(recipient, Mapping):
        return None
    email = recipient.get("emailAddress")
    address = email.get("address") if isinstance(email, Mapping) else None
    return address.strip() if isinstance(address, str) and "@" in address else None


def _cal_address(recipient: Any) -> vCalAddress | None:
    address = _address(recipient)
    if address is None:
        return None
    cal_address = vCalAddress(f"mailto:{address}")
    name = recipient["emailAddress"].get("name")
    if isinstance(name, str) and name.strip() and name.strip() != address:
        cal_address.params["CN"] = name.strip()
    return cal_address


def _join_url(event: Mapping[str, Any]) -> str | None:
    meeting = event.get("onlineMeeting")
    url = meeting.get("joinUrl") if isinstance(meeting, Mapping) else None
    url = url or event.get("onlineMeetingUrl")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


# -- body text --------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div br tr li ul ol table h1 h2 h3 h4 h5 h6 blockquote pre hr section header footer".split()
)
_HIDDEN_TAGS = frozenset({"head", "style", "script", "title"})


class _HtmlText(HTMLParser):
    """Collects the readable text of an HTML body; a link keeps its address after its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "li":
                self.parts.append("- ")
        elif tag == "td":
            self.parts.append(" ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self._break()
        elif tag == "a" and self.links:
            href, begin = self.links.pop()
            label = "".join(self.parts[begin:]).strip()
            if href.startswith(("https://", "http://")) and href != label:
                self.parts.append(f" <{href}>")

    def _break(self) -> None:
        """End the current line unless it is already ended (nested blocks give one break)."""
        text = next((part for part in reversed(self.parts) if part.strip(" \t")), "\n")
        if not text.endswith("\n"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def body_text(content: str, content_type: str) -> str:
    """Plain text of a Graph itemBody: HTML turned to text, line breaks kept, blanks tidied."""
    if content_type.lower() == "html":
        parser = _HtmlText()
        parser.feed(content)
        parser.close()
        content = "".join(parser.parts)
        content = re.sub(r"[ \t\r\f\v\xa0]+", " ", content)
    content = content.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    lines = [
        line.strip() if content_type.lower() == "html" else line.rstrip()
        for line in content.split("\n")
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
