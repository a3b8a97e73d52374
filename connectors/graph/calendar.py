"""The calendar `Source`: a user's calendars, their events within a window, and event content.

Graph tracks calendar changes through `calendarView/delta`, which lists expanded
instances (single events, occurrences and exceptions of series):
https://learn.microsoft.com/en-us/graph/api/event-delta. The engine moves one item
per single event or series master, so a round of delta is read whole, instances
(and a series master, where the service lists one too) are folded into their
master (`seriesMasterId`) and each master is emitted once, with a version that
changes whenever one of its instances did.

Three behaviours of the service shape this module:

- a calendar view may span at most 1,825 days ("The range between the start and
  end dates is greater than the allowed range. Maximum number of days: 1825",
  microsoftgraph/microsoft-graph-docs-contrib issue 6321), so the window is cut
  into slices, each with its own delta link;
- delta says nothing about a cancelled (deleted) occurrence beyond an `@removed`
  entry carrying the occurrence's own id (microsoft-graph-docs pull request 4501),
  and a deleted series only shows as its instances being removed; Exchange updates
  the series master instead (microsoft-graph-docs issue 5520). So the cursor keeps
  the changeKey of every series master seen, and each round compares them with the
  calendar's current masters: a changed changeKey re-emits the master, a missing
  master is removed;
- `@removed` also lists events outside the view's range that changed
  (event-delta, "Response"), so an id is only removed when no slice saw it alive.

Occurrences in delta pages may carry only `id`, `type`, `seriesMasterId`, `start`,
`end` and `@odata.etag` (microsoft-graph-docs issue 7632): nothing here reads more.
The cursor is this module's own JSON (window, one delta link per slice, masters);
it is only ever handed back by the engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.users.item.calendars.calendars_request_builder import (
    CalendarsRequestBuilder,
)
from msgraph.generated.users.item.calendars.item.calendar_view.delta.delta_request_builder import (  # noqa: E501
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.calendars.item.events.events_request_builder import (
    EventsRequestBuilder,
)
from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)

from ...migrator.errors import CursorExpired
from ...migrator.model import Container, Item, Owner, Page
from .calendar_window import Window, iso, numbered_range_end, overlaps
from .client import GraphClient
from .directory import tenant_users
from .errors import Call

PERMISSION = "Calendars.Read"
PAGE_SIZE = 1000  # asked with Prefer: odata.maxpagesize; Graph may answer with less
ITEMS_PER_PAGE = 100  # items handed to the engine per Page (one transaction each)
CURSOR_VERSION = 1
SINGLE, MASTER = "singleInstance", "seriesMaster"
LISTING_SELECT = ["id", "type", "changeKey", "iCalUId", "start", "end", "recurrence"]
MASTER_SELECT = ["id", "type", "changeKey", "iCalUId"]


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    """The calendar source's options: the window of events to carry.

    Dates or ISO datetimes; by default five years back and five years ahead of now.
    """

    window_start: str | date | None = None
    window_end: str | date | None = None

    def window(self, now: datetime | None = None) -> Window:
        return Window.from_settings(self.window_start, self.window_end, now)


@dataclass
class _Cursor:
    """What a finished round leaves for the next: window, delta links, known masters."""

    window: Window
    links: list[str | None]
    masters: dict[str, str] = field(default_factory=dict)  # master id -> its changeKey

    def dumps(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "start": self.window.start_text,
                "end": self.window.end_text,
                "links": self.links,
                "masters": self.masters,
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> _Cursor:
        """Read a stored cursor; anything unreadable means enumerating again."""
        try:
            state = json.loads(text)
            window = Window.parse(state["start"], state["end"])
            links = [link if isinstance(link, str) else None for link in state["links"]]
            masters = {str(k): str(v) for k, v in dict(state.get("masters") or {}).items()}
            if state.get("v") != CURSOR_VERSION or len(links) != len(window.slices()):
                raise ValueError("cursor of another shape")
        except (ValueError, KeyError, TypeError) as exc:
            raise CursorExpired(f"unreadable calendar cursor ({exc})") from exc
        return cls(window, links, masters)


@dataclass
class _Round:
    """Everything one round of delta said, across the window's slices."""

    singles: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> version, uid
    series: dict[str, dict[str, str]] = field(default_factory=dict)  # master -> instance tokens
    live: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    def take(self, entry: Mapping[str, Any]) -> None:
        event_id = str(entry["id"])
        if "@removed" in entry:
            self.removed.add(event_id)
            return
        self.live.add(event_id)
        master = entry.get("seriesMasterId")
        if entry.get("type") == MASTER:
            self.series.setdefault(event_id, {})[event_id] = _token(entry)
        elif master:
            self.series.setdefault(str(master), {})[event_id] = _token(entry)
        else:
            self.singles[event_id] = (_token(entry), str(entry.get("iCalUId") or ""))

    @property
    def empty(self) -> bool:
        return not (self.live or self.removed)


class GraphCalendarSource:
    """Reads calendars out of Microsoft Graph; implements `migrator.protocols.Source`."""

    workload = "calendar"
    page_size = PAGE_SIZE

    def __init__(
        self,
        client: GraphClient,
        settings: CalendarSettings | None = None,
    ) -> None:
        self.client = client
        self.window = (settings or CalendarSettings()).window()
        self._sdk = client.sdk
        self._windows: dict[tuple[str, str], Window] = {}  # the window each calendar ran with

    async def owners(self) -> list[Owner]:
        """Every user of the tenant (`/users`, paged)."""
        return await tenant_users(self.client)

    async def containers(self, owner: Owner) -> list[Container]:
        """The user's calendars; the default one has role "default"."""
        params = CalendarsRequestBuilder.CalendarsRequestBuilderGetQueryParameters(
            select=["id", "name", "isDefaultCalendar"], top=250
        )
        request = self._user(owner.upn).calendars.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        # A 404 means the user has no mailbox: the owner is skipped, not the run.
        call = Call(f"calendars of {owner.upn}", PERMISSION, item=True)
        pages = self.client.pages(request, owner.upn, call)
        calendars = [calendar async for page in pages for calendar in page.get("value", [])]
        default_id = next((c["id"] for c in calendars if c.get("isDefaultCalendar")), None)
        if default_id is None and calendars:
            default_id = await self._default_calendar_id(owner.upn)
        return [
            Container(
                workload=self.workload,
                owner=owner.upn,
                source_id=calendar["id"],
                path=(calendar.get("name") or "",),
                role="default" if calendar["id"] == default_id else None,
            )
            for calendar in calendars
        ]

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """One round of `calendarView/delta` over every slice, as single and master items."""
        state = _Cursor.loads(cursor) if cursor else _Cursor(self.window, [None] * self._slices)
        self._windows[(container.owner, container.source_id)] = state.window
        found = _Round()
        links: list[str | None] = []
        for bounds, link in zip(state.window.slices(), state.links, strict=True):
            links.append(await self._read_slice(container, bounds, link, found))
        items: list[Item] = []
        removed: set[str] = set()
        tracked = state.masters  # a quiet round changed no series: no listing needed
        if not found.empty:
            masters = await self._masters(container) if found.series or state.masters else {}
            items, removed, tracked = _settle(found, state.masters, masters)
        delta_link = _Cursor(state.window, links, tracked).dumps()
        chunks = [items[i : i + ITEMS_PER_PAGE] for i in range(0, len(items), ITEMS_PER_PAGE)]
        for chunk in chunks[:-1]:
            yield Page(tuple(chunk))
        yield Page(tuple(chunks[-1] if chunks else ()), tuple(sorted(removed)), None, delta_link)

    async def fetch(self, container: Container, item: Item) -> bytes:
        """The event's JSON and, for a series, its instances in the window (shared contract)."""
        upn = container.owner
        window = self._windows.get((upn, container.source_id), self.window)
        request = self._user(upn).events.by_event_id(item.source_id).to_get_request_information()
        event = await self.client.get_json(
            request, upn, Call(f"event {item.source_id} of {upn}", PERMISSION, item=True)
        )
        instances: list[dict[str, Any]] = []
        if (event.get("type") or item.meta.get("type")) == MASTER:
            instances = await self._instances(upn, item.source_id, window)
        content = {
            "event": event,
            "instances": instances,
            "window": {"start": window.start_text, "end": window.end_text},
        }
        return json.dumps(content, ensure_ascii=False).encode("utf-8")

    async def listing(self, container: Container) -> list[Item]:
        """Every single event and series master of the calendar that falls in the window."""
        window = self._windows.get((container.owner, container.source_id), self.window)
        items: list[Item] = []
        for event in await self._events(container, LISTING_SELECT):
            if event.get("type") not in (SINGLE, MASTER):
                continue
            if await self._in_window(container.owner, event, window):
                items.append(_item(event, str(event.get("changeKey") or "")))
        return items

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    # -- delta ---------------------------------------------------------------------------

    @property
    def _slices(self) -> int:
        return len(self.window.slices())

    @property
    def _max_page(self) -> str:
        return f"odata.maxpagesize={self.page_size}"

    async def _read_slice(
        self,
        container: Container,
        bounds: tuple[datetime, datetime],
        link: str | None,
        found: _Round,
    ) -> str | None:
        """Follow one slice's delta pages to its new delta link, feeding `found`."""
        upn = container.owner
        what = f"calendar changes of {upn} {container.display_path}"
        target: RequestInformation | str = link or self._delta_request(container, bounds)
        call = Call(what, PERMISSION, cursor=link is not None)
        prefer = [self._max_page]
        while True:
            body = await self.client.get_json(target, upn, call, prefer=prefer)
            for entry in body.get("value", []):
                found.take(entry)
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return body.get("@odata.deltaLink") or link
            target, call = next_link, Call(what, PERMISSION, cursor=True)

    def _delta_request(
        self, container: Container, bounds: tuple[datetime, datetime]
    ) -> RequestInformation:
        params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            start_date_time=iso(bounds[0]), end_date_time=iso(bounds[1])
        )
        calendar = self._user(container.owner).calendars.by_calendar_id(container.source_id)
        return calendar.calendar_view.delta.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    async def _masters(self, container: Container) -> dict[str, tuple[str, str]]:
        """Series master id -> (changeKey, iCalUId) for the whole calendar."""
        return {
            str(event["id"]): (str(event.get("changeKey") or ""), str(event.get("iCalUId") or ""))
            for event in await self._events(container, MASTER_SELECT)
            if event.get("type") == MASTER
        }

    # -- listings ------------------------------------------------------------------------

    async def _events(self, container: Container, select: list[str]) -> list[dict[str, Any]]:
        """`/calendars/{id}/events`: singles and series masters, never their instances."""
        params = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(
            select=select, top=self.page_size
        )
        calendar = self._user(container.owner).calendars.by_calendar_id(container.source_id)
        request = calendar.events.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        call = Call(f"events of {container.owner} {container.display_path}", PERMISSION)
        pages = self.client.pages(request, container.owner, call)
        return [event async for page in pages for event in page.get("value", [])]

    async def _instances(self, upn: str, master_id: str, window: Window) -> list[dict[str, Any]]:
        """The series' occurrences and exceptions in `window`, slice by slice, once each."""
        seen: dict[str, dict[str, Any]] = {}
        call, prefer = self._instances_call(upn, master_id), [self._max_page]
        for bounds in window.slices():
            first = self._instances_request(upn, master_id, bounds, self.page_size)
            async for page in self.client.pages(first, upn, call, prefer=prefer):
                for instance in page.get("value", []):
                    seen.setdefault(str(instance["id"]), instance)
        return sorted(seen.values(), key=_start_text)

    async def _has_instance(self, upn: str, master_id: str, window: Window) -> bool:
        """Whether the series has at least one instance in `window` (one id per slice)."""
        for bounds in window.slices():
            request = self._instances_request(upn, master_id, bounds, 1, ["id"])
            page = await self.client.get_json(request, upn, self._instances_call(upn, master_id))
            if page.get("value"):
                return True
        return False

    def _instances_request(
        self,
        upn: str,
        master_id: str,
        bounds: tuple[datetime, datetime],
        top: int,
        select: list[str] | None = None,
    ) -> RequestInformation:
        params = InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(
            start_date_time=iso(bounds[0]), end_date_time=iso(bounds[1]), top=top, select=select
        )
        instances = self._user(upn).events.by_event_id(master_id).instances
        return instances.to_get_request_information(RequestConfiguration(query_parameters=params))

    def _instances_call(self, upn: str, master_id: str) -> Call:
        return Call(f"instances of event {master_id} of {upn}", PERMISSION, item=True)

    async def _in_window(self, upn: str, event: Mapping[str, Any], window: Window) -> bool:
        """Whether delta would list the event: it, or one of its occurrences, meets the window."""
        if event.get("type") == SINGLE:
            return overlaps(event.get("start"), event.get("end"), window)
        recurrence = event.get("recurrence") or {}
        series = recurrence.get("range") or {}
        try:
            first = date.fromisoformat(str(series["startDate"])[:10])
        except (KeyError, ValueError):
            return True  # no readable range: keep it rather than hide it
        if first > window.end.date():
            return False
        kind = series.get("type")
        if kind == "endDate":
            return str(series.get("endDate") or "")[:10] >= window.start.date().isoformat()
        if kind == "numbered" and first < window.start.date():
            last = numbered_range_end(recurrence, first)
            if last < window.start.date() - timedelta(days=1):
                return False
            return await self._has_instance(upn, str(event["id"]), window)
        return True

    async def _default_calendar_id(self, upn: str) -> str | None:
        request = self._user(upn).calendar.to_get_request_information()
        answer = await self.client.get_json(
            request, upn, Call(f"default calendar of {upn}", PERMISSION, item=True)
        )
        return answer.get("id")

    def _user(self, upn: str) -> Any:
        return self._sdk.users.by_user_id(upn)


def _settle(
    found: _Round, known: Mapping[str, str], masters: Mapping[str, tuple[str, str]]
) -> tuple[list[Item], set[str], dict[str, str]]:
    """Items to write, ids removed and the masters to remember, from one whole round."""
    items = [
        Item(event_id, version, {"type": SINGLE, "iCalUId": uid})
        for event_id, (version, uid) in sorted(found.singles.items())
    ]
    changed = {m for m, key in known.items() if m in masters and masters[m][0] != key}
    for master_id in sorted(set(found.series) | changed):
        if master_id not in masters:
            continue  # gone since delta listed it: the next round removes it
        change_key, uid = masters[master_id]
        version = _master_version(change_key, found.series.get(master_id, {}).values())
        items.append(Item(master_id, version, {"type": MASTER, "iCalUId": uid}))
    removed = (found.removed - found.live - set(masters)) | {m for m in known if m not in masters}
    tracked = {m: masters[m][0] for m in set(known) | set(found.series) if m in masters}
    return items, removed, tracked


def _master_version(change_key: str, tokens: Iterable[str]) -> str:
    """The master's changeKey, plus a digest of the instance versions delta reported."""
    reported = sorted(tokens)
    if not reported:
        return change_key
    digest = hashlib.sha256("\n".join(reported).encode()).hexdigest()[:16]
    return f"{change_key}#{digest}"


def _token(entry: Mapping[str, Any]) -> str:
    """An instance's version: its changeKey, else its etag (occurrences carry only that)."""
    return str(entry.get("changeKey") or entry.get("@odata.etag") or entry.get("id"))


def _item(event: Mapping[str, Any], version: str) -> Item:
    meta = {"type": str(event.get("type") or SINGLE), "iCalUId": str(event.get("iCalUId") or "")}
    return Item(str(event["id"]), version, meta)


def _start_text(instance: Mapping[str, Any]) -> str:
    return str((instance.get("start") or {}).get("dateTime") or "")
