"""Seeded calendars, events and contacts for the sandbox.

Every user gets a default calendar ("Calendrier") and an extra one ("Projets"), a
default contacts folder ("Contacts") and an extra one ("Fournisseurs"). The events
start with a fixed showcase covering every recurrence pattern and range type, all-day
events, several Windows time zones, modified and cancelled occurrences, attendees with
each response, a private and a confidential event and a Teams meeting; random singles
fill up to `events_per_user`. Everything derives from the tenant's seed and a fixed
epoch: no wall clock, no global random state.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from html import escape
from typing import Any

from .calendar_data import (
    CALENDAR_ID_PREFIX,
    CONTACT_FOLDER_ID_PREFIX,
    CONTACT_ID_PREFIX,
    EVENT_ID_PREFIX,
    CalendarData,
    SandboxCalendar,
    SandboxContact,
    SandboxContactFolder,
    SandboxEvent,
    ical_uid,
    instance_id,
    iso7,
    iso_z,
    rng_for,
)
from .contact_seed import contact_fields, contact_photo
from .mime import CONTACTS, FIRST_NAMES, LAST_NAMES, SUBJECTS
from .recurrence import event_span, graph_time, occurrence_start, pattern_dates
from .tenant_records import EPOCH, SandboxUser, change_key, colleagues, stable_id

JSON = dict[str, Any]

# --- generation --------------------------------------------------------------------------

_PARIS = "Romance Standard Time"
_BERLIN = "W. Europe Standard Time"
_LONDON = "GMT Standard Time"
_NEW_YORK = "Eastern Standard Time"
_NO_DATE = "0001-01-01"
_NO_TIME = "0001-01-01T00:00:00Z"
_RESPONSES = ("accepted", "declined", "tentativelyAccepted", "none", "notResponded")
_SENTENCES = (
    "Merci de préparer vos points à l'avance.",
    "L'ordre du jour est joint ; n'hésitez pas à le compléter. 📎",
    "Nous ferons le bilan du trimestre et des prochaines étapes.",
    "Café et croissants offerts ☕🥐.",
    "Pensez à mettre à jour le tableau de suivi avant la réunion.",
    "Die Unterlagen folgen per E-Mail. Grüße aus Zürich!",
)


@dataclass(frozen=True)
class EventPlan:
    """One seeded event: a single or a series, in its own Windows time zone."""

    subject: str
    start: datetime  # naive wall-clock time in `zone_name`
    minutes: int
    zone_name: str = _PARIS
    all_day: bool = False
    recurrence: tuple[JSON, JSON] | None = None  # (pattern, range); startDate added here
    calendar: int = 0  # 0: the default calendar, 1: the extra one
    attendees: str = "none"  # "none" | "team" | "responses" | "resource"
    extra: JSON = field(default_factory=dict)  # other properties: sensitivity, showAs...
    online: bool = False
    external_organizer: bool = False
    exceptions: tuple[int, ...] = ()  # indexes of occurrences given their own details
    cancelled: tuple[int, ...] = ()  # indexes of cancelled occurrences


def _pattern(kind: str, interval: int = 1, **values: Any) -> JSON:
    """A recurrencePattern with every property, as Graph returns it (unused ones zeroed)."""
    base: JSON = {
        "type": kind,
        "interval": interval,
        "month": 0,
        "dayOfMonth": 0,
        "daysOfWeek": [],
        "firstDayOfWeek": "sunday",
        "index": "first",
    }
    return base | values


def _range(kind: str, limit: str | int | None = None) -> JSON:
    """A recurrenceRange as Graph returns it: endDate "0001-01-01" unless it is `endDate`."""
    return {
        "type": kind,
        "startDate": None,
        "endDate": limit if kind == "endDate" else _NO_DATE,
        "recurrenceTimeZone": None,
        "numberOfOccurrences": limit if kind == "numbered" else 0,
    }


def _day(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute)


_WORKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
SHOWCASE: tuple[EventPlan, ...] = (
    EventPlan("Réunion d'équipe ☕", _day(2024, 1, 9, 10), 60, attendees="responses",
          extra={"categories": ["Équipe"], "location": "Salle Vercors"}),
    EventPlan("Stand-up quotidien", _day(2024, 1, 15, 9), 15, attendees="team",
          recurrence=(_pattern("daily"), _range("numbered", 10)), exceptions=(2,), cancelled=(4,)),
    EventPlan("Point Teams avec Fabrikam 🌍", _day(2024, 1, 23, 11), 30, _NEW_YORK,
          attendees="team", online=True, external_organizer=True),
    EventPlan("Congés d'hiver 🏖️", _day(2024, 2, 12), 5 * 1440, all_day=True,
          extra={"showAs": "oof", "isReminderOn": False}),
    EventPlan("Rendez-vous médical", _day(2024, 1, 18, 8, 30), 45, _LONDON,
          extra={"sensitivity": "private"}),
    EventPlan("Revue de code", _day(2024, 2, 1, 14), 30, _BERLIN,
          recurrence=(_pattern("daily", 2), _range("endDate", "2024-02-29"))),
    EventPlan("Cours de yoga 🧘", _day(2024, 3, 4, 18), 60, extra={"categories": ["Perso"]},
          recurrence=(_pattern("weekly", daysOfWeek=["monday", "wednesday", "friday"],
                               firstDayOfWeek="monday"), _range("endDate", "2024-04-12")),
          cancelled=(3,)),
    EventPlan("Comité de pilotage", _day(2024, 1, 2, 16), 60, _NEW_YORK, attendees="team",
          recurrence=(_pattern("weekly", 2, daysOfWeek=["tuesday", "thursday"]),
                      _range("numbered", 12)), exceptions=(5,)),
    EventPlan("Clôture mensuelle", _day(2024, 1, 15, 17), 30,
          recurrence=(_pattern("absoluteMonthly", dayOfMonth=15), _range("noEnd"))),
    EventPlan("Réunion bimestrielle", _day(2024, 2, 5, 10), 90, _BERLIN, attendees="team",
          recurrence=(_pattern("absoluteMonthly", 2, dayOfMonth=5), _range("numbered", 6))),
    EventPlan("Point du premier lundi", _day(2024, 1, 1, 9, 30), 60,
          recurrence=(_pattern("relativeMonthly", daysOfWeek=["monday"], index="first"),
                      _range("endDate", "2024-12-31"))),
    EventPlan("Afterwork 🍻", _day(2024, 1, 26, 18, 30), 120, _LONDON,
          extra={"categories": ["Détente"]},
          recurrence=(_pattern("relativeMonthly", daysOfWeek=["friday"], index="last"),
                      _range("numbered", 8))),
    EventPlan("Bilan du deuxième jour ouvré", _day(2024, 1, 2, 11), 30,
          recurrence=(_pattern("relativeMonthly", daysOfWeek=_WORKDAYS, index="second"),
                      _range("endDate", "2024-06-30"))),
    EventPlan("Anniversaire de Marc 🎉", _day(2024, 3, 14), 1440, all_day=True,
          extra={"reminderMinutesBeforeStart": 1080},
          recurrence=(_pattern("absoluteYearly", month=3, dayOfMonth=14), _range("noEnd"))),
    EventPlan("Dîner de Thanksgiving 🦃", _day(2024, 11, 28, 19), 180, _NEW_YORK,
          recurrence=(_pattern("relativeYearly", daysOfWeek=["thursday"], index="fourth", month=11),
                      _range("numbered", 3))),
    EventPlan("Télétravail", _day(2024, 1, 5), 1440, all_day=True,
          extra={"showAs": "workingElsewhere", "isReminderOn": False},
          recurrence=(_pattern("weekly", daysOfWeek=["friday"]), _range("numbered", 10))),
    EventPlan("Maintenance serveur", _day(2024, 1, 27, 22), 90, "UTC",
          extra={"categories": ["Rouge"], "showAs": "tentative"}),
    EventPlan("Anniversaire de Léa 🎂", _day(2024, 3, 5), 1440, all_day=True),
    EventPlan("Lancement du projet Hirondelle 🚀", _day(2024, 1, 10, 14), 120, calendar=1,
          attendees="resource", extra={"categories": ["Projet X", "Client important"]}),
    EventPlan("Sprint review", _day(2024, 1, 16, 15), 60, calendar=1, attendees="team",
          recurrence=(_pattern("weekly", daysOfWeek=["tuesday"], firstDayOfWeek="monday"),
                      _range("numbered", 8)), exceptions=(1,), cancelled=(5,)),
    EventPlan("Atelier RGPD 🔒", _day(2024, 2, 20, 9), 180, _BERLIN, calendar=1, attendees="team",
          extra={"sensitivity": "confidential", "reminderMinutesBeforeStart": 1440}),
)  # fmt: skip


def generate_calendar_data(
    seed: int, users: list[SandboxUser], events_per_user: int, contacts_per_user: int
) -> CalendarData:
    """Two calendars and two contact folders per user, filled deterministically from `seed`."""
    data = CalendarData()
    fill = calendar_filler(data, seed, users, events_per_user, contacts_per_user)
    for index in range(len(users)):
        fill(index)
    return data


def calendar_filler(
    data: CalendarData,
    seed: int,
    users: list[SandboxUser],
    events_per_user: int,
    contacts_per_user: int,
) -> Callable[[int], None]:
    """What fills the calendars and contacts of the user at an index into `data`; users
    filled in index order get the same events, ids and sequence numbers whenever it
    happens."""

    def fill(index: int) -> None:
        user = users[index]
        seeder = _UserSeeder(data, seed, user, colleagues(users, user.id))
        seeder.fill(events_per_user, contacts_per_user, index)

    return fill


class _UserSeeder:
    """Fills one user's calendars and contacts."""

    def __init__(
        self, data: CalendarData, seed: int, user: SandboxUser, colleagues: list[SandboxUser]
    ) -> None:
        self.data = data
        self.seed = seed
        self.user = user
        self.colleagues = colleagues
        self.rng = rng_for(seed, "calendar", user.id)

    def fill(self, events: int, contacts: int, index: int) -> None:
        names = (("Calendrier", True, "auto", ""), ("Projets", False, "lightGreen", "#87D28E"))
        for n, (name, default, color, hex_color) in enumerate(names):
            calendar_id = stable_id(CALENDAR_ID_PREFIX, self.seed, self.user.id, "calendar", n)
            calendar = SandboxCalendar(calendar_id, self.user.id, name, default, color, hex_color)
            self.data.add_calendar(calendar)
        root = stable_id(CONTACT_FOLDER_ID_PREFIX, self.seed, self.user.id, "root")
        for n, name in enumerate(("Contacts", "Fournisseurs")):
            folder_id = stable_id(CONTACT_FOLDER_ID_PREFIX, self.seed, self.user.id, "folder", n)
            self.data.add_contact_folder(
                SandboxContactFolder(folder_id, self.user.id, name, root, n == 0)
            )
        plans = list(SHOWCASE[:events])
        plans += [self.random_plan(n) for n in range(events - len(plans))]
        for n, plan in enumerate(plans):
            self.add_event(plan, n)
        for n in range(contacts):
            self.data.put_contact(self.contact(n, index))

    # --- events -----------------------------------------------------------------------------

    def random_plan(self, n: int) -> EventPlan:
        day = EPOCH.replace(tzinfo=None) + timedelta(days=self.rng.randint(-60, 120))
        start = day.replace(hour=self.rng.choice((8, 9, 10, 14, 16)))
        zone_name = self.rng.choice((_PARIS, _BERLIN, _LONDON, _NEW_YORK, "UTC"))
        return EventPlan(
            f"{self.rng.choice(SUBJECTS)} #{n + 1}",
            start,
            self.rng.choice((30, 45, 60, 90)),
            zone_name,
            attendees=self.rng.choice(("none", "team")),
        )

    def add_event(self, plan: EventPlan, n: int) -> SandboxEvent:
        calendars = self.data.calendars(self.user.id)
        event_id = stable_id(EVENT_ID_PREFIX, self.seed, self.user.id, "event", n)
        fields = build_event_fields(plan, self.user, self.people(plan.attendees), event_id)
        created = self.data.clock()
        event = SandboxEvent(
            event_id, self.user.id, calendars[plan.calendar].id, 0, "", fields, created=created
        )
        event = self.data.put_event(event)
        dates = _occurrence_keys(event, max(plan.exceptions + plan.cancelled, default=-1) + 1)
        for position in plan.exceptions:
            event = add_exception(self.data, event, dates[position], self.rng, self.colleagues)
        for position in plan.cancelled:
            event = self.data.cancel_occurrence(event, dates[position])
        return event

    def people(self, kind: str) -> list[JSON]:
        internal = [(u.display_name, u.mail) for u in self.colleagues]
        crowd = internal + list(CONTACTS)
        if kind == "none" or not crowd:
            return []
        if kind == "responses":
            chosen = [crowd[i % len(crowd)] for i in range(len(_RESPONSES))]
            return [_attendee(p, r, "required") for p, r in zip(chosen, _RESPONSES, strict=True)]
        chosen = self.rng.sample(crowd, min(3, len(crowd)))
        found = [
            _attendee(p, self.rng.choice(_RESPONSES), self.rng.choice(("required", "optional")))
            for p in chosen
        ]
        if kind == "resource":
            domain = self.user.mail.split("@")[1]
            found.append(
                _attendee(("Salle Everest", f"salle.everest@{domain}"), "accepted", "resource")
            )
        return found

    # --- contacts ---------------------------------------------------------------------------

    def contact(self, n: int, user_index: int) -> SandboxContact:
        rng = rng_for(self.seed, "contact", self.user.id, n)
        folders = self.data.contact_folders(self.user.id)
        folder = folders[1] if n % 3 == 2 else folders[0]
        given = FIRST_NAMES[(n * 5 + user_index) % len(FIRST_NAMES)]
        surname = LAST_NAMES[(n * 7 + user_index * 3) % len(LAST_NAMES)]
        contact_id = stable_id(CONTACT_ID_PREFIX, self.seed, self.user.id, "contact", n)
        fields = contact_fields(rng, given, surname, folder.id, n)
        photo, photo_type = contact_photo(contact_id, n)
        return SandboxContact(
            contact_id, self.user.id, folder.id, 0, "", fields, photo, photo_type,
            created=self.data.clock(),
        )  # fmt: skip


def _occurrence_keys(event: SandboxEvent, wanted: int) -> list[str]:
    """The original starts of the series' first `wanted` occurrences."""
    if wanted <= 0:
        return []
    keys = []
    for day in pattern_dates(event.fields["recurrence"]):
        keys.append(iso_z(occurrence_start(event.fields, day)))
        if len(keys) == wanted:
            break
    return keys


def _attendee(person: tuple[str, str], response: str, kind: str) -> JSON:
    answered = response not in ("none", "notResponded")
    return {
        "type": kind,
        "status": {"response": response, "time": "2023-12-20T10:00:00Z" if answered else _NO_TIME},
        "emailAddress": {"name": person[0], "address": person[1]},
    }


def build_event_fields(
    plan: EventPlan, user: SandboxUser, attendees: list[JSON], event_id: str
) -> JSON:
    """The Graph JSON of a seeded single or master, in the plan's own time zone."""
    start = plan.start
    recurrence = None
    if plan.recurrence is not None:
        pattern, series_range = copy.deepcopy(plan.recurrence)
        series_range |= {
            "startDate": start.date().isoformat(),
            "recurrenceTimeZone": plan.zone_name,
        }
        recurrence = {"pattern": pattern, "range": series_range}
        first = next(pattern_dates(recurrence))
        start = datetime.combine(first, start.time())
        series_range["startDate"] = first.isoformat()
    end = start + timedelta(minutes=plan.minutes)
    organizer = CONTACTS[0] if plan.external_organizer else (user.display_name, user.mail)
    join_url = _join_url(event_id) if plan.online else None
    html, preview = event_body(
        plan.subject, _SENTENCES[len(plan.subject) % len(_SENTENCES)], join_url
    )
    location = plan.extra.get("location", "Microsoft Teams Meeting" if plan.online else "")
    fields: JSON = {
        "categories": list(plan.extra.get("categories", [])),
        "transactionId": None,
        "originalStartTimeZone": plan.zone_name,
        "originalEndTimeZone": plan.zone_name,
        "iCalUId": ical_uid(event_id),
        "reminderMinutesBeforeStart": plan.extra.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": plan.extra.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": plan.subject,
        "bodyPreview": preview,
        "importance": "normal",
        "sensitivity": plan.extra.get("sensitivity", "normal"),
        "isAllDay": plan.all_day,
        "isCancelled": False,
        "isOrganizer": not plan.external_organizer,
        "responseRequested": True,
        "seriesMasterId": None,
        "showAs": plan.extra.get("showAs", "busy"),
        "onlineMeetingUrl": None,
        "isOnlineMeeting": plan.online,
        "onlineMeetingProvider": "teamsForBusiness" if plan.online else "unknown",
        "allowNewTimeProposals": True,
        "isDraft": False,
        "hideAttendees": False,
        "responseStatus": {
            "response": "accepted" if plan.external_organizer else "organizer",
            "time": "2023-12-20T10:00:00Z" if plan.external_organizer else _NO_TIME,
        },
        "body": {"contentType": "html", "content": html},
        "start": _local(start, plan.zone_name, plan.all_day),
        "end": _local(end, plan.zone_name, plan.all_day),
        "location": _location(location),
        "locations": [_location(location)] if location else [],
        "recurrence": recurrence,
        "attendees": attendees,
        "organizer": {"emailAddress": {"name": organizer[0], "address": organizer[1]}},
        "onlineMeeting": {"joinUrl": join_url} if join_url else None,
    }
    return fields


def _local(moment: datetime, zone_name: str, all_day: bool) -> JSON:
    text = moment.strftime("%Y-%m-%dT00:00:00.0000000" if all_day else "%Y-%m-%dT%H:%M:%S.0000000")
    return {"dateTime": text, "timeZone": zone_name}


def _location(name: str) -> JSON:
    if not name:
        return {"displayName": "", "locationType": "default", "uniqueIdType": "unknown"}
    return {
        "displayName": name,
        "locationType": "default",
        "uniqueId": name,
        "uniqueIdType": "private",
    }


def _join_url(event_id: str) -> str:
    """A Teams-like join URL (percent-encoded thread id and context, as Teams writes them)."""
    thread = stable_id("", "meeting", event_id).replace("-", "").replace("_", "")[:32]
    return (
        f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0"
        "?context=%7b%22Tid%22%3a%2272f988bf-86f1-41af-91ab-2d7cd011db47%22%7d"
    )


def event_body(subject: str, text: str, join_url: str | None) -> tuple[str, str]:
    """(HTML body, text preview) of an event, with the Teams block when online."""
    parts = [f"<p>{escape(subject)}</p>", f"<p>{escape(text)}</p>"]
    preview = f"{subject} {text}"
    if join_url:
        parts.append(
            "<div><p>Réunion Microsoft Teams</p>"
            f'<p><a href="{escape(join_url)}">Rejoindre la réunion maintenant</a></p></div>'
        )
        preview += f" Réunion Microsoft Teams Rejoindre la réunion maintenant <{join_url}>"
    head = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
    return f"{head}<body>{''.join(parts)}</body></html>", preview[:255]


def add_exception(
    data: CalendarData,
    event: SandboxEvent,
    original_start: str,
    rng: random.Random,
    colleagues: list[SandboxUser],
) -> SandboxEvent:
    """Give one occurrence its own subject, body, time and attendees; restamp the master."""
    key = instance_id(event.id, original_start)
    current = data.instance_json(event, original_start)
    base = current if current is not None else data.event_json(event)
    subject = f"{event.fields['subject']} (déplacé)"
    html, preview = event_body(subject, "Exceptionnellement décalé : nouvel horaire. ⏰", None)
    original = datetime.fromisoformat(original_start.replace("Z", "+00:00"))
    start, end = event_span(base)
    minutes = rng.choice((30, 60, 90))
    zone_name = event.fields["start"]["timeZone"]
    people = [(u.display_name, u.mail) for u in colleagues] or [("Invité", "invite@example.fr")]
    with data._lock:
        stamp_seq = data.seq + 1
        overrides: JSON = {
            "subject": subject,
            "bodyPreview": preview,
            "body": {"contentType": "html", "content": html},
            "attendees": [_attendee(rng.choice(people), "tentativelyAccepted", "required")],
            "changeKey": change_key(key, stamp_seq),
            "lastModifiedDateTime": iso7(data.clock() + timedelta(minutes=1)),
        }
        if not event.fields.get("isAllDay"):
            shift = timedelta(minutes=minutes)
            overrides["start"] = graph_time(original + shift, zone_name)
            overrides["end"] = graph_time(original + shift + (end - start), zone_name)
        exceptions = dict(event.exceptions) | {original_start: overrides}
        return data.put_event(replace(event, exceptions=exceptions))
