"""The sandbox's calendars, events, contact folders and contacts, with their change log.

`CalendarData` hangs off the `Tenant` (`tenant.calendar_data`) and is what
`sandbox/calendar.py` serves. Events are kept as Graph JSON in their own Windows
time zone; a series is one master plus its exceptions (by original start) and its
cancelled occurrences, and its instances are derived on demand from the pattern
(`sandbox/recurrence.py`). Every change is stamped with a rising sequence number of
this store, so `calendarView/delta` and `contacts/delta` can answer "what changed since
sequence N". Changing, cancelling or adding an exception also restamps the series
master, as Exchange does (the exceptions live inside the master item).

Generation (`generate_calendar_data`) is deterministic from the tenant's seed, and so
are mutations (`mutate_calendar_data`); nothing reads the wall clock.
"""

from __future__ import annotations

import base64
import copy
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .recurrence import event_span, expand, graph_time
from .tenant_records import EPOCH, SandboxUser, change_key, stable_id

JSON = dict[str, Any]
EVENT_ID_PREFIX = "AAMkAGI2THVSAAA"
OCCURRENCE_ID_PREFIX = "AAMkAGI2TG9jAAA"
CALENDAR_ID_PREFIX = "AAMkAGI2TGNhAAA"
CONTACT_ID_PREFIX = "AAMkAGI2TGNvAAA"
CONTACT_FOLDER_ID_PREFIX = "AQMkAGI2TGZvAAA"
ICAL_UID_PREFIX = "040000008200E00074C5B7101A82E008"
_SLACK = timedelta(days=2)  # how far an exception may move from its original start


@dataclass(frozen=True)
class SandboxCalendar:
    id: str
    user_id: str
    name: str
    is_default: bool
    color: str = "auto"
    hex_color: str = ""


@dataclass(frozen=True)
class SandboxEvent:
    """A single event or a series master; snapshots, replaced on every change."""

    id: str
    user_id: str
    calendar_id: str
    seq: int
    change_key: str
    fields: JSON  # the Graph JSON of the single/master (own zone), without the stamps
    exceptions: dict[str, JSON] = field(default_factory=dict)  # originalStart -> overrides
    cancelled: frozenset[str] = frozenset()  # originalStart values (ISO, UTC, "Z")
    created: datetime = EPOCH
    modified: datetime = EPOCH

    @property
    def is_series(self) -> bool:
        return bool(self.fields.get("recurrence"))


@dataclass(frozen=True)
class SandboxContactFolder:
    id: str
    user_id: str
    name: str
    parent_id: str
    is_default: bool


@dataclass(frozen=True)
class SandboxContact:
    id: str
    user_id: str
    folder_id: str
    seq: int
    change_key: str
    fields: JSON  # the Graph JSON of the contact, without the stamps
    photo: bytes | None = None
    photo_type: str | None = None
    created: datetime = EPOCH
    modified: datetime = EPOCH


@dataclass(frozen=True)
class Removal:
    """Something gone from a calendar view or a contact folder at `seq`."""

    seq: int
    id: str
    event: SandboxEvent | None = None  # a deleted single/master, to list its instances
    span: tuple[datetime, datetime] | None = None  # a cancelled occurrence's times


@dataclass
class Changes:
    changed: list[Any]  # SandboxEvent or SandboxContact, by sequence
    removed: list[Removal]


@dataclass
class _Mailbox:
    calendars: dict[str, SandboxCalendar] = field(default_factory=dict)
    folders: dict[str, SandboxContactFolder] = field(default_factory=dict)
    events: dict[str, SandboxEvent] = field(default_factory=dict)
    contacts: dict[str, SandboxContact] = field(default_factory=dict)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_id(master_id: str, original_start: str) -> str:
    """An occurrence's id: opaque, yet the sandbox can read its series back from it."""
    raw = f"{master_id}|{original_start}".encode()
    return OCCURRENCE_ID_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_instance_id(key: str) -> tuple[str, str] | None:
    """(master id, original start) of an occurrence id, None for any other id."""
    if not key.startswith(OCCURRENCE_ID_PREFIX):
        return None
    body = key[len(OCCURRENCE_ID_PREFIX) :]
    try:
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except ValueError:
        return None
    master, _, original = text.partition("|")
    return (master, original) if original else None


def ical_uid(event_id: str, day: datetime | None = None) -> str:
    """Exchange's Global Object Id shape: instances carry their date in bytes 16 to 19."""
    stamp = f"{day.year:04X}{day.month:02X}{day.day:02X}" if day else "00000000"
    digest = stable_id("", "ical", event_id).encode().hex().upper()[:72]
    return ICAL_UID_PREFIX + stamp + digest


class CalendarData:
    """Every user's calendars and contacts; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._mailboxes: dict[str, _Mailbox] = {}
        self._event_removals: dict[str, list[Removal]] = {}  # calendar id -> removals
        self._contact_removals: dict[str, list[Removal]] = {}  # folder id -> removals
        self._seq = 0
        self.token_generation = 0  # tokens of an older generation are expired

    # --- construction -------------------------------------------------------------------

    def add_calendar(self, calendar: SandboxCalendar) -> None:
        with self._lock:
            self._mailbox(calendar.user_id).calendars[calendar.id] = calendar
            self._event_removals.setdefault(calendar.id, [])

    def add_contact_folder(self, folder: SandboxContactFolder) -> None:
        with self._lock:
            self._mailbox(folder.user_id).folders[folder.id] = folder
            self._contact_removals.setdefault(folder.id, [])

    def put_event(self, event: SandboxEvent) -> SandboxEvent:
        """Store `event` as a new change: its seq, change key and modification time are set."""
        with self._lock:
            self._seq += 1
            stamped = replace(
                event,
                seq=self._seq,
                change_key=change_key(event.id, self._seq),
                modified=self.clock(),
            )
            self._mailbox(event.user_id).events[event.id] = stamped
            return stamped

    def put_contact(self, contact: SandboxContact) -> SandboxContact:
        with self._lock:
            self._seq += 1
            stamped = replace(
                contact,
                seq=self._seq,
                change_key=change_key(contact.id, self._seq),
                modified=self.clock(),
            )
            self._mailbox(contact.user_id).contacts[contact.id] = stamped
            return stamped

    def clock(self) -> datetime:
        """Modification time: after the epoch, derived from seq (never the wall clock)."""
        return EPOCH + timedelta(minutes=self._seq)

    def _mailbox(self, user_id: str) -> _Mailbox:
        """The user's store, created empty on first use."""
        mailbox = self._mailboxes.get(user_id)
        if mailbox is None:
            mailbox = self._mailboxes[user_id] = _Mailbox()
        return mailbox

    def ensure_defaults(self, user: SandboxUser) -> None:
        """Give a user without data (a loaded tenant) an empty calendar and contacts folder."""
        with self._lock:
            mailbox = self._mailbox(user.id)
            if not mailbox.calendars:
                calendar_id = stable_id(CALENDAR_ID_PREFIX, user.id, "default")
                self.add_calendar(SandboxCalendar(calendar_id, user.id, "Calendar", True))
            if not mailbox.folders:
                folder_id = stable_id(CONTACT_FOLDER_ID_PREFIX, user.id, "default")
                root = stable_id(CONTACT_FOLDER_ID_PREFIX, user.id, "root")
                self.add_contact_folder(
                    SandboxContactFolder(folder_id, user.id, "Contacts", root, True)
                )

    # --- reads ----------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return self._seq

    def calendars(self, user_id: str) -> list[SandboxCalendar]:
        with self._lock:
            return list(self._mailbox(user_id).calendars.values())

    def calendar(self, user_id: str, key: str | None) -> SandboxCalendar:
        """A calendar by id, or the default one for None; KeyError."""
        for calendar in self.calendars(user_id):
            if calendar.id == key or (key is None and calendar.is_default):
                return calendar
        raise KeyError(key)

    def events(self, user_id: str, calendar_id: str) -> list[SandboxEvent]:
        """The calendar's singles and series masters, by start then id."""
        with self._lock:
            found = [
                e for e in self._mailbox(user_id).events.values() if e.calendar_id == calendar_id
            ]
        return sorted(found, key=lambda e: (event_span(e.fields)[0], e.id))

    def event(self, user_id: str, event_id: str) -> SandboxEvent:
        with self._lock:
            return self._mailbox(user_id).events[event_id]

    def contact_folders(self, user_id: str) -> list[SandboxContactFolder]:
        with self._lock:
            return list(self._mailbox(user_id).folders.values())

    def contact_folder(self, user_id: str, key: str | None) -> SandboxContactFolder:
        """A folder by id, or the default one for None or "contacts"; KeyError."""
        for folder in self.contact_folders(user_id):
            if folder.id == key or (
                folder.is_default and (key or "contacts").lower() == "contacts"
            ):
                return folder
        raise KeyError(key)

    def contacts(self, user_id: str, folder_id: str) -> list[SandboxContact]:
        """The folder's contacts, by creation then id."""
        with self._lock:
            found = [
                c for c in self._mailbox(user_id).contacts.values() if c.folder_id == folder_id
            ]
        return sorted(found, key=lambda c: (c.created, c.id))

    def contact(self, user_id: str, contact_id: str) -> SandboxContact:
        with self._lock:
            return self._mailbox(user_id).contacts[contact_id]

    # --- events as Graph JSON -------------------------------------------------------------

    def event_json(self, event: SandboxEvent) -> JSON:
        """The single or master as Graph returns it, times in its own zone."""
        stamps: JSON = {
            "@odata.etag": f'W/"{event.change_key}"',
            "id": event.id,
            "createdDateTime": iso7(event.created),
            "lastModifiedDateTime": iso7(event.modified),
            "changeKey": event.change_key,
        }
        body = copy.deepcopy(event.fields)
        body["type"] = "seriesMaster" if event.is_series else "singleInstance"
        body["webLink"] = _web_link(event.id)
        return stamps | body

    def instances(self, event: SandboxEvent, start: datetime, end: datetime) -> list[JSON]:
        """The series' occurrences and exceptions overlapping [start, end), by start."""
        if not event.is_series:
            return []
        found = []
        for original in expand(event.fields, start - _SLACK, end + _SLACK):
            instance = self.instance_json(event, iso_z(original))
            if instance is None:
                continue
            begins, ends = event_span(instance)
            if begins < end and ends > start:
                found.append((begins, instance))
        return [instance for _, instance in sorted(found, key=lambda pair: pair[0])]

    def instance_json(self, event: SandboxEvent, original_start: str) -> JSON | None:
        """One occurrence or exception of a series, None when cancelled."""
        if original_start in event.cancelled:
            return None
        master = self.event_json(event)
        original = datetime.fromisoformat(original_start.replace("Z", "+00:00"))
        span = event_span(event.fields)
        zone_name = event.fields["start"]["timeZone"]
        key = instance_id(event.id, original_start)
        instance = master | {
            "@odata.etag": master["@odata.etag"],
            "id": key,
            "iCalUId": ical_uid(event.id, original),
            "type": "occurrence",
            "seriesMasterId": event.id,
            "originalStart": original_start,
            "recurrence": None,
            "webLink": _web_link(key),
            "start": _floating(original, zone_name, event.fields.get("isAllDay")),
            "end": _floating(
                original + (span[1] - span[0]), zone_name, event.fields.get("isAllDay")
            ),
        }
        overrides = event.exceptions.get(original_start)
        if overrides is not None:
            instance |= copy.deepcopy(overrides) | {"type": "exception"}
            instance["@odata.etag"] = f'W/"{instance["changeKey"]}"'
        return instance

    def instance(self, user_id: str, key: str) -> JSON:
        """An occurrence or exception by id; KeyError when unknown or cancelled."""
        parsed = parse_instance_id(key)
        if parsed is None:
            raise KeyError(key)
        instance = self.instance_json(self.event(user_id, parsed[0]), parsed[1])
        if instance is None:
            raise KeyError(key)
        return instance

    # --- changes ---------------------------------------------------------------------------

    def event_changes(self, user_id: str, calendar_id: str, since: int) -> Changes:
        """Events of the calendar changed after `since`, and what left it since then."""
        with self._lock:
            changed = [e for e in self.events(user_id, calendar_id) if e.seq > since]
            removed = [r for r in self._event_removals.get(calendar_id, ()) if r.seq > since]
        return Changes(sorted(changed, key=lambda e: e.seq), removed)

    def contact_changes(self, user_id: str, folder_id: str, since: int) -> Changes:
        with self._lock:
            changed = [c for c in self.contacts(user_id, folder_id) if c.seq > since]
            removed = [r for r in self._contact_removals.get(folder_id, ()) if r.seq > since]
        return Changes(sorted(changed, key=lambda c: c.seq), removed)

    def expire_delta_tokens(self) -> None:
        """Every delta token issued so far becomes expired (tests of the 410 path)."""
        with self._lock:
            self.token_generation += 1
            for log in (*self._event_removals.values(), *self._contact_removals.values()):
                log[:] = [r for r in log if r.seq > self._seq]

    # --- the change primitives mutations use -----------------------------------------------

    def delete_event(self, user_id: str, event_id: str) -> None:
        with self._lock:
            event = self._mailbox(user_id).events.pop(event_id)
            self._seq += 1
            self._event_removals[event.calendar_id].append(Removal(self._seq, event.id, event))

    def cancel_occurrence(self, event: SandboxEvent, original_start: str) -> SandboxEvent:
        """Delete one occurrence: instances drop it and the master gets a new version."""
        with self._lock:
            instance = self.instance_json(event, original_start)
            exceptions = {k: v for k, v in event.exceptions.items() if k != original_start}
            cancelled = event.cancelled | {original_start}
            updated = self.put_event(replace(event, exceptions=exceptions, cancelled=cancelled))
            if instance is not None:
                span = event_span(instance)
                removal = Removal(updated.seq, instance["id"], span=span)
                self._event_removals[event.calendar_id].append(removal)
            return updated

    def delete_contact(self, user_id: str, contact_id: str) -> None:
        with self._lock:
            contact = self._mailbox(user_id).contacts.pop(contact_id)
            self._seq += 1
            self._contact_removals[contact.folder_id].append(Removal(self._seq, contact.id))

    def all_events(self, user_ids: Iterable[str]) -> list[SandboxEvent]:
        with self._lock:
            return [e for u in user_ids for e in self._mailbox(u).events.values()]

    def all_contacts(self, user_ids: Iterable[str]) -> list[SandboxContact]:
        with self._lock:
            return [c for u in user_ids for c in self._mailbox(u).contacts.values()]


def iso7(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _floating(moment: datetime, zone_name: str, all_day: object) -> JSON:
    """An instance's time in the series' zone; all-day dates stay at midnight."""
    if all_day:
        return {"dateTime": moment.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": zone_name}
    return graph_time(moment, zone_name)


def _web_link(event_id: str) -> str:
    return (
        "https://outlook.office365.com/owa/?itemid="
        f"{quote(event_id, safe='')}&exvsurl=1&path=/calendar/item"
    )


def rng_for(*parts: object) -> random.Random:
    return random.Random("|".join(map(str, parts)))
