"""The sandbox's calendar and contact wire format: entity JSON, windows and time zones.

Times: Graph returns start and end in UTC unless `Prefer: outlook.timezone="<zone>"`
names a Windows or IANA zone (https://learn.microsoft.com/en-us/graph/api/event-get,
"Support various time zones"); `originalStartTimeZone` keeps the event's own zone.
All-day events keep their midnight dates whatever the zone. Window parameters without
an offset are read as UTC, and the Prefer zone does not apply to them
(https://learn.microsoft.com/en-us/graph/api/calendar-list-calendarview).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hirondelle.sandbox.calendar_data import (
    SandboxCalendar,
    SandboxContact,
    SandboxContactFolder,
    iso7,
)
from hirondelle.sandbox.mail import GraphRequest, GraphResponse, _apply_preference
from hirondelle.sandbox.odata import JSON, GraphError, preferences
from hirondelle.sandbox.recurrence import graph_time, parse_graph_time, zone

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant_records import SandboxUser

NO_WINDOW = (
    "This request requires a time window specified by the query string parameters "
    "StartDateTime and EndDateTime."
)


def calendar_json(calendar: SandboxCalendar, user: SandboxUser) -> JSON:
    """A calendar (https://learn.microsoft.com/en-us/graph/api/resources/calendar)."""
    stamp = base64.b64encode(calendar.id.encode()[-12:]).decode()
    return {
        "id": calendar.id,
        "name": calendar.name,
        "color": calendar.color,
        "hexColor": calendar.hex_color,
        "isDefaultCalendar": calendar.is_default,
        "changeKey": stamp,
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": True,
        "isRemovable": not calendar.is_default,
        "owner": {"name": user.display_name, "address": user.mail},
    }


def folder_json(folder: SandboxContactFolder) -> JSON:
    return {"id": folder.id, "displayName": folder.name, "parentFolderId": folder.parent_id}


def contact_json(contact: SandboxContact) -> JSON:
    stamps: JSON = {
        "@odata.etag": f'W/"{contact.change_key}"',
        "id": contact.id,
        "createdDateTime": iso7(contact.created),
        "lastModifiedDateTime": iso7(contact.modified),
        "changeKey": contact.change_key,
    }
    return stamps | contact.fields


def in_zone(entity: JSON, zone_name: str) -> JSON:
    """The event with start and end in `zone_name` (all-day dates are kept, relabelled)."""
    converted = dict(entity)
    for key in ("start", "end"):
        value = entity.get(key)
        if not value:
            continue
        if entity.get("isAllDay"):
            converted[key] = {"dateTime": value["dateTime"], "timeZone": zone_name}
        else:
            converted[key] = graph_time(parse_graph_time(value), zone_name)
    return converted


def typed_event(entity: JSON) -> JSON:
    return {"@odata.type": "#microsoft.graph.event"} | entity


def removed_entry(key: str, kind: str = "event") -> JSON:
    return {"@odata.type": f"#microsoft.graph.{kind}", "id": key, "@removed": {"reason": "deleted"}}


def _query(request: GraphRequest, name: str) -> str | None:
    for key, value in request.query.items():
        if key.lower() == name.lower():
            return value
    return None


def parse_moment(text: str) -> datetime:
    head, _, fraction = text.rstrip("Z").partition(".")
    offset = ""
    for sign in ("+", "-"):
        if sign in fraction:
            fraction, _, rest = fraction.partition(sign)
            offset = sign + rest
    moment = datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else "") + offset)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def view_window(request: GraphRequest) -> tuple[datetime, datetime]:
    start, end = _query(request, "startDateTime"), _query(request, "endDateTime")
    if not start or not end:
        raise GraphError(400, "ErrorInvalidParameter", NO_WINDOW)
    try:
        return parse_moment(start), parse_moment(end)
    except ValueError:
        message = f"The value '{start}' or '{end}' of the StartDateTime or EndDateTime is invalid."
        raise GraphError(400, "ErrorInvalidParameter", message) from None


def zone_preference(request: GraphRequest) -> str:
    """The zone named by `Prefer: outlook.timezone`, UTC when absent or unknown."""
    named = preferences(request.headers.get("Prefer")).get("outlook.timezone")
    if not named:
        return "UTC"
    try:
        zone(named)
    except ValueError:
        return "UTC"
    return named


def zone_applied(response: GraphResponse, request: GraphRequest) -> GraphResponse:
    if "outlook.timezone" in preferences(request.headers.get("Prefer")):
        _apply_preference(response, f'outlook.timezone="{zone_preference(request)}"')
    return response
