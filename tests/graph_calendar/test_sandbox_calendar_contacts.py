"""The calendar and contacts sources through msgraph-sdk and azure-identity against the sandbox."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.calendar import GraphCalendarSource
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.contacts import GraphContactsSource
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.sandbox import tenant as tenant_module
from hirondelle.tests.graph.conftest import run, sandbox_settings, sandbox_with_secret
from hirondelle.tests.sandbox.sandbox_helpers import add_contacts

from .conftest import json_of

SECRET_ENV = "HIRONDELLE_TEST_CALENDAR_SECRET"
Source = GraphCalendarSource | GraphContactsSource
Rounds = dict[Container, list[Page]]


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    spec = tenant_module.TenantSpec(
        seed=11, users=2, messages=2, large_messages=0, files_per_drive=1, large_file_bytes=0
    )
    with sandbox_with_secret(monkeypatch, spec, SECRET_ENV) as sandbox:
        yield sandbox


def client_for(sb: Any) -> GraphClient:
    settings = sandbox_settings(sb, client_secret_env=SECRET_ENV)
    return GraphClient(settings, MailboxBudget(), mailboxes=2)


async def read_all(source: Source, cursors: dict[Container, str | None] | None = None) -> Rounds:
    """One full round of `changes` for every container of every owner; closes the source."""
    rounds: Rounds = {}
    try:
        for owner in await source.owners():
            for container in await source.containers(owner):
                cursor = (cursors or {}).get(container)
                rounds[container] = [page async for page in source.changes(container, cursor)]
    finally:
        await source.aclose()
    return rounds


async def closing(source: Source, action: str, *args: Any) -> Any:
    try:
        return await getattr(source, action)(*args)
    finally:
        await source.aclose()


def items_of(rounds: Rounds) -> dict[str, Item]:
    return {item.source_id: item for pages in rounds.values() for p in pages for item in p.items}


def removed_of(rounds: Rounds) -> set[str]:
    return {i for pages in rounds.values() for page in pages for i in page.removed}


def cursors_of(rounds: Rounds) -> dict[Container, str | None]:
    return {container: pages[-1].delta_link for container, pages in rounds.items()}


def seeded_events(sb: Any) -> dict[str, Any]:
    data = sb.tenant.calendar_data
    return {
        event.id: event
        for user in sb.tenant.users
        for calendar in data.calendars(user.id)
        for event in data.events(user.id, calendar.id)
    }


def test_calendars_and_every_series_once(sb: Any) -> None:
    calendar = GraphCalendarSource(client_for(sb))
    calendar.page_size = 7  # several delta pages per calendar
    rounds = run(read_all(calendar))

    data = sb.tenant.calendar_data
    for user in sb.tenant.users:
        mine = [c for c in rounds if c.owner == user.upn]
        expected = {
            (c.id, (c.name,), "default" if c.is_default else None) for c in data.calendars(user.id)
        }
        assert {(c.source_id, c.path, c.role) for c in mine} == expected
    listed = [item for pages in rounds.values() for p in pages for item in p.items]
    assert len(listed) == len({item.source_id for item in listed})  # once each
    seeded = seeded_events(sb)
    assert set(items_of(rounds)) == set(seeded)
    series = [e for e in seeded.values() if e.is_series]
    assert len(series) >= 5
    for item in listed:
        event_json = data.event_json(seeded[item.source_id])
        assert item.meta == {"type": event_json["type"], "iCalUId": event_json["iCalUId"]}
    assert all(not pages[-1].removed and pages[-1].delta_link for pages in rounds.values())


def test_fetch_gives_master_and_its_instances(sb: Any) -> None:
    calendar = GraphCalendarSource(client_for(sb))
    data = sb.tenant.calendar_data
    seeded = seeded_events(sb)
    series = sorted((e for e in seeded.values() if e.is_series), key=lambda e: e.id)
    with_exceptions = next(e for e in series if e.exceptions or e.cancelled)
    user = next(u for u in sb.tenant.users if u.id == with_exceptions.user_id)
    container = Container("calendar", user.upn, with_exceptions.calendar_id, ("x",))
    item = Item(with_exceptions.id, "v", {"type": "seriesMaster"})
    document = json_of(run(closing(calendar, "fetch", container, item)))

    assert document["event"]["id"] == with_exceptions.id
    assert document["event"]["body"] == data.event_json(with_exceptions)["body"]
    window = document["window"]
    start = datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    expected = [i["id"] for i in data.instances(with_exceptions, start, end)]
    assert sorted(i["id"] for i in document["instances"]) == sorted(expected)
    assert len(document["instances"]) == len(expected)


def test_listing_matches_the_delta_round(sb: Any) -> None:
    rounds = run(read_all(GraphCalendarSource(client_for(sb))))
    source = GraphCalendarSource(client_for(sb))

    async def listings() -> set[str]:
        try:
            found: set[str] = set()
            for container in rounds:
                found |= {item.source_id for item in await source.listing(container)}
            return found
        finally:
            await source.aclose()

    assert run(listings()) == set(items_of(rounds))


def test_incremental_sync_yields_exactly_what_changed(sb: Any) -> None:
    first = run(read_all(GraphCalendarSource(client_for(sb))))
    first_contacts = run(read_all(GraphContactsSource(client_for(sb))))
    before = items_of(first)
    before_contacts = items_of(first_contacts)

    result = sb.mutate(
        tenant_module.Mutation(
            event_changes=2,
            event_cancellations=1,
            event_deletions=1,
            new_events=1,
            contact_changes=1,
            contact_deletions=1,
            new_contacts=1,
        )
    )
    seeded = seeded_events(sb)
    deleted = {i for i in result.events if i not in seeded}
    assert len(deleted) == 1 and len(set(result.events)) == 5

    second = run(read_all(GraphCalendarSource(client_for(sb)), cursors_of(first)))
    changed = items_of(second)
    assert set(changed) == set(result.events) - deleted
    for event_id, item in changed.items():
        assert event_id not in before or item.version != before[event_id].version
    assert removed_of(second) & set(before) == deleted
    assert not removed_of(second) & set(changed)

    contacts = sb.tenant.calendar_data.all_contacts([u.id for u in sb.tenant.users])
    alive = {contact.id for contact in contacts}
    gone = {i for i in result.contacts if i not in alive}
    second_contacts = run(read_all(GraphContactsSource(client_for(sb)), cursors_of(first_contacts)))
    assert set(items_of(second_contacts)) == set(result.contacts) - gone
    assert removed_of(second_contacts) == gone and len(gone) == 1
    assert set(before_contacts) - gone | set(items_of(second_contacts)) == alive


def test_contacts_folders_changes_and_photos(sb: Any) -> None:
    contacts = GraphContactsSource(client_for(sb))
    contacts.page_size = 4
    rounds = run(read_all(contacts))
    data = sb.tenant.calendar_data
    for user in sb.tenant.users:
        mine = {c.path: c for c in rounds if c.owner == user.upn}
        assert set(mine) == {(f.name,) for f in data.contact_folders(user.id)}
        default = next(f for f in data.contact_folders(user.id) if f.is_default)
        assert mine[(default.name,)].role == "default"
        assert mine[(default.name,)].source_id == default.id
        for folder in data.contact_folders(user.id):
            pages = rounds[mine[(folder.name,)]]
            expected = {c.id: c.change_key for c in data.contacts(user.id, folder.id)}
            assert {i.source_id: i.version for p in pages for i in p.items} == expected
            assert mine[(folder.name,)].total_items == len(expected)

    everyone = data.all_contacts([u.id for u in sb.tenant.users])
    with_photo = next(c for c in everyone if c.photo)
    without = next(c for c in everyone if not c.photo)
    owner = {u.id: u.upn for u in sb.tenant.users}
    for contact in (with_photo, without):
        container = next(
            c
            for c in rounds
            if c.owner == owner[contact.user_id] and c.source_id == contact.folder_id
        )
        source = GraphContactsSource(client_for(sb))
        item = Item(contact.id, contact.change_key)
        document = json_of(run(closing(source, "fetch", container, item)))
        assert document["contact"]["id"] == contact.id
        assert document["contact"]["displayName"] == contact.fields["displayName"]
        if contact.photo:
            assert base64.b64decode(document["photo"]) == contact.photo
            assert document["photoType"] == contact.photo_type
        else:
            assert document["photo"] is None and document["photoType"] is None


def test_contacts_beyond_one_capped_page_are_all_read(sb: Any) -> None:
    """Graph answers contacts/delta 200 a page whatever the source asks (1,000): every
    contact still comes, over several pages."""
    user = sb.tenant.users[0]
    added = set(add_contacts(sb, user.id, 450))
    rounds = run(read_all(GraphContactsSource(client_for(sb))))
    default = next(c for c in rounds if c.owner == user.upn and c.role == "default")
    read = {item.source_id for page in rounds[default] for item in page.items}
    folder = sb.tenant.calendar_data.contact_folder(user.id, None)
    assert added <= read == {c.id for c in sb.tenant.calendar_data.contacts(user.id, folder.id)}
