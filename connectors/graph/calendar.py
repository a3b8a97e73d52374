"""The calendar `Source`: a user's calendars, their events within a window, and event content.

Graph tracks calendar changes through `calendarView/delta`, which lists expanded
instances (single events, occurrences and exceptions of series). Version 1.0
documents it for the user's primary calendar only, `/users/{id}/calendarView/delta`
(https://learn.microsoft.com/en-us/graph/api/event-delta, "HTTP request"; the
per-calendar forms are beta's); asked of another calendar, Graph answers an error
such as 400 "Change tracking is not supported against 'microsoft.graph.event'"
(microsoftgraph/msgraph-metadata issue 608). So:

- the default calendar is read through delta: a round of delta is read whole, its
  instances (and a series master, where the service lists one too) are folded into
  their master (`seriesMasterId`) and each master is emitted once, with a version
  that changes whenever one of its instances did;
- every other calendar is read through the documented plain view,
  `/users/{id}/calendars/{id}/calendarView`
  (https://learn.microsoft.com/en-us/graph/api/calendar-list-calendarview), in full
  at every pass, folded the same way. The cursor remembers the version of every
  single and master it carried: what changed is emitted, what is listed no more
  was removed. A pass costs, per slice of the window, one request per 1,000
  instances (occurrences of series included), plus one per 1,000 events for the
  masters' changeKeys when the calendar holds a series; a quiet delta pass costs
  one request per slice. A cursor written when every calendar was read through
  delta still has its links followed once for the deletions they report; a
  tenant that refuses them (400, 501) costs those deletions, not the calendar.

Three behaviours of the service shape the delta rounds:

- a calendar view may span at most 1,825 days ("The range between the start and
  end dates is greater than the allowed range. Maximum number of days: 1825",
  microsoftgraph/microsoft-graph-docs-contrib issue 6321), so the window is cut
  into slices, each with its own delta link (and its own plain views);
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
Folding, settling and the cursor live in `calendar_rounds.py`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.calendars.calendars_request_builder import (
    CalendarsRequestBuilder,
)
from msgraph.generated.users.item.calendars.item.calendar_view.calendar_view_request_builder import (  # noqa: E501
    CalendarViewRequestBuilder,
)
from msgraph.generated.users.item.calendars.item.events.events_request_builder import (
    EventsRequestBuilder,
)
from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)

from ...migrator.errors import CursorExpired
from ...migrator.model import Container, Item, Owner, Page
from .calendar_rounds import (
    MASTER,
    SINGLE,
    Cursor,
    Masters,
    Round,
    item_of,
    settle_delta,
    settle_listing,
)
from .calendar_window import Window, iso, numbered_range_end, overlaps
from .client import GraphClient
from .directory import tenant_users
from .errors import Call

PERMISSION = "Calendars.Read"
PAGE_SIZE = 1000  # asked with Prefer: odata.maxpagesize or $top; Graph may answer with less
ITEMS_PER_PAGE = 100  # items handed to the engine per Page (one transaction each)
LISTING_SELECT = ["id", "type", "changeKey", "iCalUId", "start", "end", "recurrence"]
MASTER_SELECT = ["id", "type", "changeKey", "iCalUId"]
VIEW_SELECT = ["id", "type", "seriesMasterId", "changeKey", "iCalUId"]
UNSUPPORTED_DELTA = frozenset({400, 501})  # how Graph refuses delta on another calendar

log = logging.getLogger(__name__)
Settled = tuple[list[Item], set[str], Cursor]


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    """The calendar source's options: the window of events to carry.

    Dates or ISO datetimes; by default five years back and five years ahead of now.
    """

    window_start: str | date | None = None
    window_end: str | date | None = None

    def window(self, now: datetime | None = None) -> Window:
        return Window.from_settings(self.window_start, self.window_end, now)


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
        """One round over every slice, as single and master items: through delta for the
        default calendar, through full plain views for every other one."""
        state = Cursor.loads(cursor) if cursor else Cursor(self.window, [None] * self._slices)
        self._windows[(container.owner, container.source_id)] = state.window
        if container.role == "default":
            items, removed, after = await self._delta_round(container, state)
        else:
            items, removed, after = await self._listing_round(container, state)
        delta_link = after.dumps()
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
                items.append(item_of(event, str(event.get("changeKey") or "")))
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

    async def _delta_round(self, container: Container, state: Cursor) -> Settled:
        """`/users/{id}/calendarView/delta` over every slice, settled against the masters.

        A stored link Graph refuses as unsupported (one an earlier version took on the
        calendar's own path) means enumerating again, like an expired one."""
        found = Round()
        links: list[str | None] = []
        for bounds, link in zip(state.window.slices(), state.links, strict=True):
            try:
                links.append(await self._read_slice(container, bounds, link, found))
            except APIError as exc:
                if link is None or exc.response_status_code not in UNSUPPORTED_DELTA:
                    raise
                status = exc.response_status_code
                raise CursorExpired(
                    f"the stored calendar delta link is refused ({status})"
                ) from exc
        items: list[Item] = []
        removed: set[str] = set()
        tracked = state.masters  # a quiet round changed no series: no listing needed
        if not found.empty:
            masters = await self._masters(container) if found.series or state.masters else {}
            items, removed, tracked = settle_delta(found, state.masters, masters)
        return items, removed, Cursor(state.window, links, tracked)

    async def _read_slice(
        self,
        container: Container,
        bounds: tuple[datetime, datetime],
        link: str | None,
        found: Round,
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
        """The documented delta of the user's primary calendar (event-delta, v1.0)."""
        params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            start_date_time=iso(bounds[0]), end_date_time=iso(bounds[1])
        )
        return self._user(container.owner).calendar_view.delta.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    # -- full listings of the other calendars -------------------------------------------

    async def _listing_round(self, container: Container, state: Cursor) -> Settled:
        """Every instance of the window through plain views, compared with what the
        cursor remembers; an older cursor's delta links give their deletions once."""
        found = Round()
        for bounds in state.window.slices():
            await self._read_view(container, bounds, found)
        masters: Masters = await self._masters(container) if found.series else {}
        known = state.known if state.known is not None else {}
        if state.known is None and any(state.links):
            known = dict.fromkeys(await self._earlier_removals(container, state), "")
            known |= dict.fromkeys(state.masters, "")
        items, removed, listed = settle_listing(found, masters, known)
        return items, removed, Cursor(state.window, [None] * len(state.links), {}, listed)

    async def _read_view(
        self, container: Container, bounds: tuple[datetime, datetime], found: Round
    ) -> None:
        """`/calendars/{id}/calendarView` of one slice, every page, feeding `found`."""
        params = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
            start_date_time=iso(bounds[0]),
            end_date_time=iso(bounds[1]),
            select=VIEW_SELECT,
            top=self.page_size,
        )
        calendar = self._user(container.owner).calendars.by_calendar_id(container.source_id)
        request = calendar.calendar_view.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        call = Call(f"calendar view of {container.owner} {container.display_path}", PERMISSION)
        async for page in self.client.pages(request, container.owner, call):
            for entry in page.get("value", []):
                found.take(entry)

    async def _earlier_removals(self, container: Container, state: Cursor) -> set[str]:
        """The ids an older cursor's delta links report removed; none when Graph refuses
        delta on this calendar (as it may: v1.0 documents it for the primary one only)."""
        found = Round()
        try:
            for bounds, link in zip(state.window.slices(), state.links, strict=True):
                if link:
                    await self._read_slice(container, bounds, link, found)
        except (APIError, CursorExpired) as exc:
            status = exc.response_status_code if isinstance(exc, APIError) else "expired"
            if isinstance(exc, APIError) and status not in UNSUPPORTED_DELTA:
                raise
            log.warning(
                "%s %s: the delta links of an earlier version were refused (%s): "
                "deletions made before this pass are not carried",
                container.owner,
                container.display_path,
                status,
            )
            return set()
        return found.removed - found.live

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


def _start_text(instance: Mapping[str, Any]) -> str:
    return str((instance.get("start") or {}).get("dateTime") or "")
