"""The mutations applied to the sandbox's seeded calendars, events and contacts.

A `Mutation`'s calendar and contact fields (`tenant.Tenant.mutate`) change, cancel, add
and delete events and contacts, derived from the tenant's seed like the seeding itself.
"""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

from .calendar_data import (
    CONTACT_ID_PREFIX,
    EVENT_ID_PREFIX,
    CalendarData,
    SandboxContact,
    SandboxEvent,
    iso_z,
    rng_for,
)
from .calendar_seed import EventPlan, add_exception, build_event_fields, event_body
from .contact_seed import contact_fields
from .mime import FIRST_NAMES, LAST_NAMES, SUBJECTS
from .recurrence import event_span, graph_time, occurrence_start, pattern_dates
from .tenant_records import EPOCH, SandboxUser, colleagues, stable_id

JSON = dict[str, Any]


# --- mutations ---------------------------------------------------------------------------


def mutate_calendar_data(
    data: CalendarData, seed: int, users: list[SandboxUser], mutation: Any
) -> tuple[list[str], list[str]]:
    """Apply a `Mutation`'s calendar and contact fields; return (event ids, contact ids) touched.

    Each single or master is touched at most once per mutation. `event_changes` changes
    a single's subject, time or body, and gives one occurrence of a series its own
    details (an exception); `event_cancellations` deletes one occurrence of a series.
    """
    rng = rng_for(seed, "calendar-mutation", getattr(mutation, "seed", 1), data.seq)
    ids = [u.id for u in users]
    events = sorted(data.all_events(ids), key=lambda e: e.id)
    series = [e for e in events if e.is_series and _open_occurrences(data, e)]
    touched: list[str] = []
    for event in rng.sample(series, min(getattr(mutation, "event_cancellations", 0), len(series))):
        touched.append(_cancel_one(data, rng, event))
    rest = [e for e in events if e.id not in touched]
    wanted = getattr(mutation, "event_changes", 0) + getattr(mutation, "event_deletions", 0)
    picks = rng.sample(rest, min(wanted, len(rest)))
    changes = picks[: getattr(mutation, "event_changes", 0)]
    for event in changes:
        touched.append(_change_event(data, rng, event, users))
    for event in picks[len(changes) :]:
        data.delete_event(event.user_id, event.id)
        touched.append(event.id)
    for n in range(getattr(mutation, "new_events", 0) if users else 0):
        touched.append(_new_event(data, seed, rng, rng.choice(users), n))
    return touched, _mutate_contacts(data, seed, rng, users, mutation)


def _open_occurrences(data: CalendarData, event: SandboxEvent) -> list[str]:
    """The original starts of the series' first occurrences that are not cancelled yet."""
    keys = []
    for n, day in enumerate(pattern_dates(event.fields["recurrence"])):
        key = iso_z(occurrence_start(event.fields, day))
        if key not in event.cancelled:
            keys.append(key)
        if n >= 12:
            break
    return keys


def _cancel_one(data: CalendarData, rng: random.Random, event: SandboxEvent) -> str:
    original = rng.choice(_open_occurrences(data, event))
    data.cancel_occurrence(event, original)
    return event.id


def _change_event(
    data: CalendarData, rng: random.Random, event: SandboxEvent, users: list[SandboxUser]
) -> str:
    if event.is_series:
        original = rng.choice(_open_occurrences(data, event) or [None])
        if original is not None:
            add_exception(data, event, original, rng, colleagues(users, event.user_id))
            return event.id
    what = rng.choice(("subject", "time", "body"))
    fields = copy.deepcopy(event.fields)
    fields["subject"] = f"{fields['subject']} – mis à jour"
    if what == "time" and not fields.get("isAllDay") and not event.is_series:
        fields |= shifted(event, rng.choice((30, 60, -60)))
    if what == "body" or what == "subject":
        html, preview = event_body(fields["subject"], "Ordre du jour révisé. 📝", None)
        fields |= {"body": {"contentType": "html", "content": html}, "bodyPreview": preview}
    data.put_event(replace(event, fields=fields))
    return event.id


def _new_event(data: CalendarData, seed: int, rng: random.Random, user: SandboxUser, n: int) -> str:
    start = (EPOCH + timedelta(days=30 + data.seq % 200)).replace(tzinfo=None, hour=10)
    plan = EventPlan(f"{rng.choice(SUBJECTS)} (nouveau)", start, 45, attendees="none")
    event_id = stable_id(EVENT_ID_PREFIX, seed, user.id, "new-event", data.seq, n)
    calendar = data.calendar(user.id, None)
    fields = build_event_fields(plan, user, [], event_id)
    created = data.clock()
    data.put_event(SandboxEvent(event_id, user.id, calendar.id, 0, "", fields, created=created))
    return event_id


def _mutate_contacts(
    data: CalendarData, seed: int, rng: random.Random, users: list[SandboxUser], mutation: Any
) -> list[str]:
    contacts = sorted(data.all_contacts([u.id for u in users]), key=lambda c: c.id)
    changes = getattr(mutation, "contact_changes", 0)
    picks = rng.sample(
        contacts, min(changes + getattr(mutation, "contact_deletions", 0), len(contacts))
    )
    touched = []
    for contact in picks[:changes]:
        fields = copy.deepcopy(contact.fields)
        fields["jobTitle"] = f"{fields.get('jobTitle') or ''} (promu·e)".strip()
        fields["businessPhones"] = [*fields.get("businessPhones", []), "+33 1 00 00 00 00"]
        data.put_contact(replace(contact, fields=fields))
        touched.append(contact.id)
    for contact in picks[changes:]:
        data.delete_contact(contact.user_id, contact.id)
        touched.append(contact.id)
    for n in range(getattr(mutation, "new_contacts", 0) if users else 0):
        user = rng.choice(users)
        folder = data.contact_folder(user.id, None)
        contact_id = stable_id(CONTACT_ID_PREFIX, seed, user.id, "new-contact", data.seq, n)
        given, surname = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        fields = contact_fields(rng, given, surname, folder.id, data.seq)
        contact = SandboxContact(
            contact_id, user.id, folder.id, 0, "", fields, created=data.clock()
        )
        data.put_contact(contact)
        touched.append(contact_id)
    return touched


def shifted(event: SandboxEvent, minutes: int) -> JSON:
    """The event's start and end moved by `minutes`, in its own zone."""
    zone_name = event.fields["start"]["timeZone"]
    start, end = event_span(event.fields)
    delta = timedelta(minutes=minutes)
    return {
        "start": graph_time(start + delta, zone_name),
        "end": graph_time(end + delta, zone_name),
    }
