"""The sandbox's calendars and contacts: Graph routes, windows, delta and the mailbox gate.

Serves calendars, events (singles and series masters), instances, calendarView and
its delta, contact folders, contacts, their delta and photos, from
`tenant.calendar_data`. Outlook counts calendar and contact requests against the
mailbox, so every request passes the mail service's throttle under the mailbox key.
The entity JSON, windows and time zones are `calendar_wire`'s; the delta walks'
tokens and pages are `calendar_delta`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hirondelle.sandbox.calendar_data import (
    CalendarData,
    SandboxCalendar,
    SandboxContact,
    SandboxContactFolder,
    SandboxEvent,
    iso7,
)
from hirondelle.sandbox.calendar_delta import DeltaPages
from hirondelle.sandbox.calendar_wire import (
    calendar_json,
    contact_json,
    folder_json,
    in_zone,
    parse_moment,
    removed_entry,
    typed_event,
    view_window,
    zone_applied,
    zone_preference,
)
from hirondelle.sandbox.mail import (
    DELTA_SEGMENTS,
    GraphRequest,
    GraphResponse,
    mailbox_key,
    mailbox_read,
)
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    QueryOptions,
    select_keys,
)
from hirondelle.sandbox.recurrence import event_span
from hirondelle.sandbox.service import Gate
from hirondelle.sandbox.throttle import MailboxThrottle

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant
    from hirondelle.sandbox.tenant_records import SandboxUser

OWNED = frozenset({"calendars", "calendar", "events", "calendarview", "contactfolders", "contacts"})
NOT_FOUND = "The specified object was not found in the store."
# What Graph answers a delta it does not support on events, here any calendarView/delta but
# the primary calendar's (github.com/microsoftgraph/msgraph-metadata/issues/608).
UNSUPPORTED_DELTA = (
    "Unsupported request: Change tracking is not supported against 'microsoft.graph.event'."
)
# contacts/delta answers at most 200 contacts a page whatever odata.maxpagesize asks: the
# contact-delta page gives no maximum; measured by users and confirmed on Microsoft Q&A
# (https://learn.microsoft.com/en-us/answers/a/2052165: contacts pages hold 200 at most, a
# larger odata.maxpagesize is capped).
CONTACTS_DELTA_MAX_PAGE = 200
# In calendarView/delta an occurrence carries only these properties; the series master and
# the exceptions carry them all (observed behaviour, reported in
# github.com/microsoftgraph/microsoft-graph-docs/issues/7632).
OCCURRENCE_DELTA_KEYS = (
    "@odata.type",
    "@odata.etag",
    "id",
    "type",
    "seriesMasterId",
    "start",
    "end",
)


@dataclass
class MediaResponse(GraphResponse):
    """Binary content (a contact photo's `$value`), sent as is with its content type."""

    content: bytes = b""


class CalendarService:
    """Routes Graph requests on calendars, events and contacts to `tenant.calendar_data`."""

    def __init__(self, tenant: Tenant, throttle: MailboxThrottle) -> None:
        self.tenant = tenant
        self.throttle = throttle
        self.delta = DeltaPages(tenant)

    @property
    def data(self) -> CalendarData:
        return self.tenant.calendar_data

    def owns(self, request: GraphRequest) -> bool:
        names = request.names
        return len(names) > 2 and names[0] == "users" and names[2] in OWNED

    def gate(self, request: GraphRequest) -> Gate | None:
        return Gate(self.throttle, mailbox_key(self.tenant, request.segments[1]))

    def handle(self, request: GraphRequest) -> GraphResponse:
        user = mailbox_read(self.tenant, request)
        self.data.ensure_defaults(user)
        rest, names = request.segments[2:], request.names[2:]
        if names[0] in ("contactfolders", "contacts"):
            return self._contacts_route(request, user, rest, names)
        return self._calendar_route(request, user, rest, names)

    # -- routing ------------------------------------------------------------------------

    def _calendar_route(
        self, request: GraphRequest, user: SandboxUser, rest: list[str], names: list[str]
    ) -> GraphResponse:
        if names == ["calendars"]:
            return self._calendars(request, user)
        if names[0] == "calendars":
            calendar, tail, tail_names = self._calendar(user, rest[1]), rest[2:], names[2:]
        elif names[0] == "calendar":
            calendar, tail, tail_names = self._calendar(user, None), rest[1:], names[1:]
        else:  # /users/{u}/events and /users/{u}/calendarView: the default calendar
            calendar, tail, tail_names = None, rest, names
        match tail_names:
            case []:
                assert calendar is not None
                return self._entity(request, user, "calendars", calendar_json(calendar, user))
            case ["events"]:
                return self._events(request, user, calendar or self._calendar(user, None))
            case ["events", _]:
                return self._event(request, user, calendar, tail[1])
            case ["events", _, "instances"]:
                return self._instances(request, user, calendar, tail[1])
            case ["calendarview"]:
                return self._view(request, user, calendar or self._calendar(user, None))
            case ["calendarview", delta] if delta in DELTA_SEGMENTS:
                if calendar is not None:
                    # v1.0 documents delta on the primary calendar's view only.
                    raise GraphError(400, "BadRequest", UNSUPPORTED_DELTA)
                return self._view_delta(request, user, self._calendar(user, None))
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[-1]}'.")

    def _contacts_route(
        self, request: GraphRequest, user: SandboxUser, rest: list[str], names: list[str]
    ) -> GraphResponse:
        if names == ["contactfolders"]:
            folders = self.data.contact_folders(user.id)
            return self._collection(request, user, "contactFolders", folders, folder_json)
        scoped = names[0] == "contactfolders"  # /users/{u}/contacts/{id} finds any folder's
        if scoped:
            folder, tail, tail_names = self._folder(user, rest[1]), rest[2:], names[2:]
        else:
            folder, tail, tail_names = self._folder(user, None), rest, names
        within = folder if scoped else None
        match tail_names:
            case []:
                return self._entity(request, user, "contactFolders", folder_json(folder))
            case ["contacts"]:
                contacts = self.data.contacts(user.id, folder.id)
                return self._collection(request, user, "contacts", contacts, contact_json)
            case ["contacts", delta] if delta in DELTA_SEGMENTS:
                return self._contacts_delta(request, user, folder)
            case ["contacts", _]:
                contact = self._contact(user, within, tail[1])
                return self._entity(request, user, "contacts", contact_json(contact))
            case ["contacts", _, "photo"]:
                return self._photo(request, user, self._contact(user, within, tail[1]), False)
            case ["contacts", _, "photo", "$value"]:
                return self._photo(request, user, self._contact(user, within, tail[1]), True)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[-1]}'.")

    # -- lookups -------------------------------------------------------------------------

    def _calendar(self, user: SandboxUser, key: str | None) -> SandboxCalendar:
        try:
            return self.data.calendar(user.id, key)
        except KeyError:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND) from None

    def _folder(self, user: SandboxUser, key: str | None) -> SandboxContactFolder:
        try:
            return self.data.contact_folder(user.id, key)
        except KeyError:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND) from None

    def _contact(
        self, user: SandboxUser, folder: SandboxContactFolder | None, key: str
    ) -> SandboxContact:
        try:
            contact = self.data.contact(user.id, key)
        except KeyError:
            contact = None
        if contact is None or (folder is not None and contact.folder_id != folder.id):
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        return contact

    def _master(
        self, user: SandboxUser, calendar: SandboxCalendar | None, key: str
    ) -> SandboxEvent:
        try:
            event = self.data.event(user.id, key)
        except KeyError:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND) from None
        if calendar is not None and event.calendar_id != calendar.id:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        return event

    # -- calendars and events ------------------------------------------------------------

    def _calendars(self, request: GraphRequest, user: SandboxUser) -> GraphResponse:
        calendars = self.data.calendars(user.id)
        return self._collection(
            request, user, "calendars", calendars, lambda c: calendar_json(c, user)
        )

    def _events(
        self, request: GraphRequest, user: SandboxUser, calendar: SandboxCalendar
    ) -> GraphResponse:
        """Singles and series masters (https://learn.microsoft.com/en-us/graph/api/user-list-events)."""
        zone_name = zone_preference(request)
        entities = [self.data.event_json(e) for e in self.data.events(user.id, calendar.id)]
        response = self._collection(
            request, user, "events", entities, lambda e: in_zone(e, zone_name)
        )
        return zone_applied(response, request)

    def _event(
        self, request: GraphRequest, user: SandboxUser, calendar: SandboxCalendar | None, key: str
    ) -> GraphResponse:
        """A single, a master, or one occurrence or exception by its own id."""
        try:
            entity = self.data.instance(user.id, key)
        except KeyError:
            entity = self.data.event_json(self._master(user, calendar, key))
        else:
            self._master(user, calendar, entity["seriesMasterId"])  # 404 from another calendar
        options = QueryOptions.parse(request.query)
        body = select_keys(in_zone(entity, zone_preference(request)), options.select)
        return zone_applied(self._entity(request, user, "events", body), request)

    def _instances(
        self, request: GraphRequest, user: SandboxUser, calendar: SandboxCalendar | None, key: str
    ) -> GraphResponse:
        """Occurrences and exceptions in a window; cancelled ones are absent
        (https://learn.microsoft.com/en-us/graph/api/event-list-instances)."""
        event = self._master(user, calendar, key)
        start, end = view_window(request)
        zone_name = zone_preference(request)
        instances = self.data.instances(event, start, end)
        response = self._collection(
            request, user, "events", instances, lambda e: in_zone(e, zone_name)
        )
        return zone_applied(response, request)

    def _view(
        self, request: GraphRequest, user: SandboxUser, calendar: SandboxCalendar
    ) -> GraphResponse:
        """Singles, occurrences and exceptions overlapping the window, by start; no masters
        (https://learn.microsoft.com/en-us/graph/api/calendar-list-calendarview)."""
        start, end = view_window(request)
        zone_name = zone_preference(request)
        entities = sorted(
            self._view_entities(user, calendar, start, end),
            key=lambda e: (event_span(e)[0], e["id"]),
        )
        response = self._collection(
            request, user, "calendarView", entities, lambda e: in_zone(e, zone_name)
        )
        return zone_applied(response, request)

    def _view_entities(
        self, user: SandboxUser, calendar: SandboxCalendar, start: datetime, end: datetime
    ) -> list[JSON]:
        found: list[JSON] = []
        for event in self.data.events(user.id, calendar.id):
            if event.is_series:
                found += self.data.instances(event, start, end)
            elif _overlaps(event_span(event.fields), start, end):
                found.append(self.data.event_json(event))
        return found

    # -- calendarView delta ----------------------------------------------------------------

    def _view_delta(
        self, request: GraphRequest, user: SandboxUser, calendar: SandboxCalendar
    ) -> GraphResponse:
        """calendarView/delta of the primary calendar, `/users/{id}/calendarView/delta`, the
        only form v1.0 documents (https://learn.microsoft.com/en-us/graph/api/event-delta and
        https://learn.microsoft.com/en-us/graph/delta-query-events).

        The initial round lists, per single, the event, and per series, the master,
        then its occurrences (short form) and exceptions in the window. A series is
        never split over two pages (observed: microsoftgraph/microsoft-graph-docs
        pull 4501). Later rounds list removals first (deleted events, cancelled
        occurrences, as `@removed` with reason "deleted", as the docs say), then
        every changed single or series in full again by sequence; cancelling or
        changing an occurrence changes its master, so the whole series comes again.
        `$select` is not supported by this function and is ignored.
        """
        state = self.delta.state(request, user, calendar.id, "calendarView")
        window = (parse_moment(state["ws"]), parse_moment(state["we"]))
        zone_name = zone_preference(request)
        groups = self._view_groups(user, calendar, state, window)
        link = f"{request.base_url}/users/{user.id}/calendarView/delta"
        shape: Callable[[JSON], JSON] = lambda e: in_zone(e, zone_name)  # noqa: E731
        return self.delta.page(request, state, groups, link, "event", shape)

    def _view_groups(
        self,
        user: SandboxUser,
        calendar: SandboxCalendar,
        state: dict[str, Any],
        window: tuple[datetime, datetime],
    ) -> list[tuple[list[Any], list[JSON]]]:
        if state["m"] == "i":
            events = self.data.events(user.id, calendar.id)
            return [
                (_initial_key(group), group) for e in events if (group := self._group(e, window))
            ]
        changes = self.data.event_changes(user.id, calendar.id, int(state["s"]))
        groups: list[tuple[list[Any], list[JSON]]] = []
        for removal in changes.removed:
            gone = _removed_ids(self.data, removal, window)
            if gone:
                groups.append(
                    ([0, f"{removal.seq:020d}", removal.id], [removed_entry(i) for i in gone])
                )
        for event in changes.changed:
            if event.seq <= int(state["t"]):
                group = self._group(event, window) or [removed_entry(event.id)]
                groups.append(([1, f"{event.seq:020d}", event.id], group))
        return groups

    def _group(self, event: SandboxEvent, window: tuple[datetime, datetime]) -> list[JSON]:
        """The delta entries of one single or series in the window; [] when outside it."""
        if not event.is_series:
            inside = _overlaps(event_span(event.fields), *window)
            return [typed_event(self.data.event_json(event))] if inside else []
        instances = self.data.instances(event, *window)
        if not instances:
            return []
        entries = [typed_event(self.data.event_json(event))]
        for instance in instances:
            typed = typed_event(instance)
            if instance["type"] == "occurrence":
                typed = {k: typed[k] for k in OCCURRENCE_DELTA_KEYS if k in typed}
            entries.append(typed)
        return entries

    # -- contacts --------------------------------------------------------------------------

    def _contacts_delta(
        self, request: GraphRequest, user: SandboxUser, folder: SandboxContactFolder
    ) -> GraphResponse:
        """contacts/delta (https://learn.microsoft.com/en-us/graph/api/contact-delta)."""
        state = self.delta.state(request, user, folder.id, "contacts")
        select = tuple(state.get("sel", ()))
        groups: list[tuple[list[Any], list[JSON]]] = []
        if state["m"] == "i":
            for contact in self.data.contacts(user.id, folder.id):
                groups.append(([0, iso7(contact.created), contact.id], [contact_json(contact)]))
        else:
            changes = self.data.contact_changes(user.id, folder.id, int(state["s"]))
            for removal in changes.removed:
                key = [0, f"{removal.seq:020d}", removal.id]
                groups.append((key, [removed_entry(removal.id, "contact")]))
            for contact in changes.changed:
                if contact.seq <= int(state["t"]):
                    key = [1, f"{contact.seq:020d}", contact.id]
                    groups.append((key, [contact_json(contact)]))
        # Links continue the request's own path (the default folder's /contacts/delta stays
        # /contacts/delta): https://learn.microsoft.com/en-us/graph/api/contact-delta and
        # https://learn.microsoft.com/en-us/graph/delta-query-overview#state-tokens
        link = request.link().split("?", 1)[0]
        shape: Callable[[JSON], JSON] = lambda e: select_keys(e, select)  # noqa: E731
        return self.delta.page(
            request, state, groups, link, "contact", shape, CONTACTS_DELTA_MAX_PAGE
        )

    def _photo(
        self, request: GraphRequest, user: SandboxUser, contact: SandboxContact, value: bool
    ) -> GraphResponse:
        """A contact's photo (https://learn.microsoft.com/en-us/graph/api/profilephoto-get)."""
        if contact.photo is None:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        content_type = contact.photo_type or "image/jpeg"
        if value:
            return MediaResponse(headers={"Content-Type": content_type}, content=contact.photo)
        metadata = {
            "@odata.mediaContentType": content_type,
            "@odata.mediaEtag": f'W/"{contact.change_key}"',
            "id": "8X8",
            "height": 8,
            "width": 8,
        }
        return self._entity(request, user, "contacts/photo", metadata)

    # -- shared wire helpers --------------------------------------------------------------

    def _collection(
        self,
        request: GraphRequest,
        user: SandboxUser,
        where: str,
        items: list[Any],
        entity: Callable[[Any], JSON],
    ) -> GraphResponse:
        """A page with `$top`/`$skip`/`$count`/`$select` and a `$skip` nextLink."""
        options = QueryOptions.parse(request.query)
        size = options.page_size(default=10, maximum=1000)
        selected = f"({','.join(options.select)})" if options.select else ""
        body: JSON = {
            "@odata.context": f"{request.base_url}/$metadata#users('{user.id}')/{where}{selected}"
        }
        if options.count:
            body["@odata.count"] = len(items)
        page = items[options.skip : options.skip + size]
        body["value"] = [select_keys(entity(item), options.select) for item in page]
        if options.skip + size < len(items):
            body["@odata.nextLink"] = request.link(skip=str(options.skip + size))
        return GraphResponse(body=body)

    def _entity(
        self, request: GraphRequest, user: SandboxUser, where: str, entity: JSON
    ) -> GraphResponse:
        options = QueryOptions.parse(request.query)
        context = f"{request.base_url}/$metadata#users('{user.id}')/{where}/$entity"
        return GraphResponse(body={"@odata.context": context} | select_keys(entity, options.select))


# -- calendar views -------------------------------------------------------------------------


def _removed_ids(data: CalendarData, removal: Any, window: tuple[datetime, datetime]) -> list[str]:
    """Ids a removal takes out of the window: an occurrence, or an event and its instances."""
    if removal.span is not None:
        return [removal.id] if _overlaps(removal.span, *window) else []
    event = removal.event
    instances = [i["id"] for i in data.instances(event, *window)] if event is not None else []
    return [removal.id, *instances]


def _initial_key(group: list[JSON]) -> list[Any]:
    first = group[1] if len(group) > 1 else group[0]
    return [0, event_span(first)[0].isoformat(), group[0]["id"]]


def _overlaps(span: tuple[datetime, datetime], start: datetime, end: datetime) -> bool:
    return span[0] < end and (span[1] > start or (span[0] == span[1] and span[0] >= start))
