"""Every calendar and contacts route through the real msgraph SDK's typed models."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.calendar import Calendar
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.contact_folder import ContactFolder
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.users.item.calendars.item.calendar_view.calendar_view_request_builder import (  # noqa: E501
    CalendarViewRequestBuilder,
)
from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)
from sandbox_helpers import graph_client, raw_client

from hirondelle.sandbox.server import SandboxServer

START, END = "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"


def with_sdk(sb: SandboxServer, use: Callable[[GraphServiceClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        client, credential = graph_client(sb)
        try:
            return await use(client)
        finally:
            await credential.close()

    return asyncio.run(run())


async def every_page(page: Any, client: GraphServiceClient, builder: Any) -> list[Any]:
    found = list(page.value)
    while page.odata_next_link:
        page = await builder.with_url(page.odata_next_link).get()
        found += page.value
    return found


def test_calendars_default_and_by_id(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]

    async def use(client: GraphServiceClient) -> tuple[Any, ...]:
        mailbox = client.users.by_user_id(user.upn)
        listed = await mailbox.calendars.get()
        default = await mailbox.calendar.get()
        extra = await mailbox.calendars.by_calendar_id(listed.value[1].id).get()
        return listed, default, extra

    listed, default, extra = with_sdk(sb, use)
    assert all(isinstance(c, Calendar) for c in listed.value)
    assert [c.name for c in listed.value] == ["Calendrier", "Projets"]
    assert default.is_default_calendar and default.id == listed.value[0].id
    assert extra.name == "Projets" and not extra.is_default_calendar
    assert extra.owner.address == user.mail


def test_events_are_singles_and_masters_with_every_pattern_and_range(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]

    async def use(client: GraphServiceClient) -> list[Event]:
        found: list[Event] = []
        for calendar in (await client.users.by_user_id(user.id).calendars.get()).value:
            builder = client.users.by_user_id(user.id).calendars.by_calendar_id(calendar.id).events
            found += await every_page(await builder.get(), client, builder)
        return found

    events = with_sdk(sb, use)
    assert len(events) == 21 and len({e.id for e in events}) == 21
    assert {e.type for e in events} == {EventType.SingleInstance, EventType.SeriesMaster}
    patterns = {e.recurrence.pattern.type for e in events if e.recurrence}
    ranges = {e.recurrence.range.type for e in events if e.recurrence}
    assert patterns == set(RecurrencePatternType) and ranges == set(RecurrenceRangeType)
    assert {e.original_start_time_zone for e in events} >= {
        "Romance Standard Time", "W. Europe Standard Time", "GMT Standard Time",
        "Eastern Standard Time", "UTC",
    }  # fmt: skip
    assert all(e.start.time_zone == "UTC" for e in events if not e.is_all_day)
    assert any(e.is_all_day for e in events) and any(
        e.sensitivity.value == "private" for e in events
    )
    online = [e for e in events if e.is_online_meeting]
    assert online and online[0].online_meeting.join_url.startswith("https://teams.microsoft.com/")
    assert online[0].online_meeting.join_url in online[0].body.content.replace("&amp;", "&")
    responses = {a.status.response.value for e in events for a in e.attendees or []}
    assert responses >= {"accepted", "declined", "tentativelyAccepted", "none", "notResponded"}
    assert any(a.type.value == "resource" for e in events for a in e.attendees or [])
    assert any("🚀" in e.subject for e in events) and all(e.organizer for e in events)


def test_instances_match_calendar_view_and_skip_cancelled(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    data = sb.tenant.calendar_data
    calendar = data.calendar(user.id, None)
    series = [e for e in data.events(user.id, calendar.id) if e.is_series]
    standup = next(e for e in series if e.fields["subject"] == "Stand-up quotidien")

    async def use(client: GraphServiceClient) -> tuple[list[Event], list[Event], list[Event]]:
        mailbox = client.users.by_user_id(user.upn)
        view_query = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
            start_date_time=START, end_date_time=END, top=50
        )
        view_builder = mailbox.calendars.by_calendar_id(calendar.id).calendar_view
        page = await view_builder.get(RequestConfiguration(query_parameters=view_query))
        view = await every_page(page, client, view_builder)
        instances: list[Event] = []
        for master in series:
            query = InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(
                start_date_time=START, end_date_time=END, top=100
            )
            builder = mailbox.events.by_event_id(master.id).instances
            page = await builder.get(RequestConfiguration(query_parameters=query))
            instances += await every_page(page, client, builder)
        standup_instances = [i for i in instances if i.series_master_id == standup.id]
        return view, instances, standup_instances

    view, instances, standup_instances = with_sdk(sb, use)
    from_view = {e.id: (e.start.date_time, e.subject) for e in view if e.series_master_id}
    assert from_view == {i.id: (i.start.date_time, i.subject) for i in instances}
    assert not any(e.type == EventType.SeriesMaster for e in view)
    assert len(standup_instances) == 9  # ten planned, one cancelled
    exceptions = [i for i in standup_instances if i.type == EventType.Exception]
    assert len(exceptions) == 1 and exceptions[0].subject != "Stand-up quotidien"
    assert exceptions[0].original_start is not None


def test_one_occurrence_by_its_own_id_and_windows_in_preferred_zone(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    with raw_client(sb) as client:
        view = client.get(
            f"users/{user.id}/calendar/calendarView",
            params={"startdatetime": "2024-03-25T00:00:00", "enddatetime": "2024-04-06T00:00:00"},
            headers={"Prefer": 'outlook.timezone="Romance Standard Time"'},
        )
        yoga = [e for e in view.json()["value"] if e["subject"].startswith("Cours de yoga")]
        one = client.get(f"users/{user.upn}/events/{yoga[-1]['id']}")
    assert view.headers["Preference-Applied"] == 'outlook.timezone="Romance Standard Time"'
    # The wall-clock time holds across the switch to summer time on 31 March 2024.
    assert {e["start"]["dateTime"][11:16] for e in yoga} == {"18:00"}
    assert {e["start"]["timeZone"] for e in yoga} == {"Romance Standard Time"}
    assert one.status_code == 200 and one.json()["type"] == "occurrence"
    assert one.json()["start"] == {"dateTime": "2024-04-05T16:00:00.0000000", "timeZone": "UTC"}


def test_errors_have_graph_codes(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    with raw_client(sb) as client:
        no_window = client.get(f"users/{user.id}/calendarView")
        unknown_event = client.get(f"users/{user.id}/events/AAMkAGI2THVSAAAnope")
        unknown_user = client.get("users/nobody@contoso.test/calendars")
        unknown_mailbox = client.get("users/nobody@contoso.test/mailFolders")
        no_photo = client.get(f"users/{user.id}/contacts/{_contact(sb, False)}/photo/$value")
        writes = client.post(f"users/{user.id}/events", json={})
    assert no_window.status_code == 400
    assert no_window.json()["error"]["code"] == "ErrorInvalidParameter"
    assert unknown_event.status_code == 404
    assert unknown_event.json()["error"]["code"] == "ErrorItemNotFound"
    assert unknown_user.status_code == 404 and no_photo.status_code == 404
    for answer in (unknown_user, unknown_mailbox):  # calendars and mail answer alike
        assert answer.json()["error"]["code"] == "ErrorInvalidUser"
        assert "'nobody@contoso.test' is invalid" in answer.json()["error"]["message"]
    assert writes.status_code == 405


def _contact(sb: SandboxServer, with_photo: bool) -> str:
    user = sb.tenant.users[0]
    contacts = sb.tenant.calendar_data.all_contacts([user.id])
    return next(c.id for c in sorted(contacts, key=lambda c: c.id) if bool(c.photo) == with_photo)


def test_contact_folders_contacts_and_photos(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    photo_id = _contact(sb, True)

    async def use(client: GraphServiceClient) -> tuple[Any, ...]:
        mailbox = client.users.by_user_id(user.upn)
        folders = await mailbox.contact_folders.get()
        default = await mailbox.contacts.get()
        extra = await mailbox.contact_folders.by_contact_folder_id(
            folders.value[1].id
        ).contacts.get()
        photo = await mailbox.contacts.by_contact_id(photo_id).photo.content.get()
        return folders, default, extra, photo

    folders, default, extra, photo = with_sdk(sb, use)
    assert all(isinstance(f, ContactFolder) for f in folders.value)
    assert [f.display_name for f in folders.value] == ["Contacts", "Fournisseurs"]
    contacts = default.value + extra.value
    assert all(isinstance(c, Contact) for c in contacts) and len(contacts) == 10
    assert {c.parent_folder_id for c in extra.value} == {folders.value[1].id}
    assert any(len(c.email_addresses) > 1 for c in contacts)
    assert any(c.home_phones and c.business_phones and c.mobile_phone for c in contacts)
    assert any(c.birthday for c in contacts) and any(c.home_address.city for c in contacts)
    assert photo == sb.tenant.calendar_data.contact(user.id, photo_id).photo
    assert photo[:2] == b"\xff\xd8" or photo[:4] == b"\x89PNG"


def test_requests_count_against_the_mailbox(sb: SandboxServer) -> None:
    user = sb.tenant.users[1]
    before = sb.stats()["by_mailbox"].get(user.upn.lower(), {}).get("requests", 0)
    with raw_client(sb) as client:
        client.get(f"users/{user.id}/calendars").raise_for_status()
        client.get(f"users/{user.id}/contactFolders").raise_for_status()
    assert sb.stats()["by_mailbox"][user.upn.lower()]["requests"] == before + 2


def test_view_window_is_read_in_utc_when_it_has_no_offset(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    with raw_client(sb) as client:
        view = client.get(
            f"users/{user.id}/calendar/calendarView",
            params={"startDateTime": "2024-01-27T22:30:00", "endDateTime": "2024-01-27T22:31:00"},
        ).json()["value"]
    assert [e["subject"] for e in view] == ["Maintenance serveur"]
    assert datetime.fromisoformat(view[0]["start"]["dateTime"][:19]).replace(tzinfo=UTC) == (
        datetime(2024, 1, 27, 22, tzinfo=UTC)
    )


def test_sdk_raises_on_missing_contact(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]

    async def use(client: GraphServiceClient) -> None:
        await client.users.by_user_id(user.upn).contacts.by_contact_id("AAMkAGI2TGNvAAAnope").get()

    with pytest.raises(APIError) as caught:
        with_sdk(sb, use)
    assert caught.value.response_status_code == 404
