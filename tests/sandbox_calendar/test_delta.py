"""calendarView/delta and contacts/delta: initial rounds, then one round after each mutation."""

from __future__ import annotations

from typing import Any

import httpx
from sandbox_helpers import add_contacts, raw_client

from hirondelle.sandbox.calendar import OCCURRENCE_DELTA_KEYS
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec

WINDOW = {"startDateTime": "2023-06-01T00:00:00Z", "endDateTime": "2026-01-01T00:00:00Z"}
PAGE = {"Prefer": "odata.maxpagesize=7"}


def round_of(client: httpx.Client, url: str, **params: str) -> tuple[list[list[Any]], str]:
    """Every page of one delta round, and the round's deltaLink."""
    pages = []
    response = client.get(url, params=params or None, headers=PAGE)
    while True:
        response.raise_for_status()
        body = response.json()
        pages.append(body["value"])
        if "@odata.deltaLink" in body:
            return pages, body["@odata.deltaLink"]
        response = client.get(body["@odata.nextLink"], headers=PAGE)


def view_url(user_id: str) -> str:
    """calendarView/delta of the user's primary calendar, the one form v1.0 documents
    (https://learn.microsoft.com/en-us/graph/api/event-delta, "HTTP request")."""
    return f"users/{user_id}/calendarView/delta"


def test_initial_round_lists_masters_with_their_instances_unsplit(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    calendar = fresh_sb.tenant.calendar_data.calendar(user.id, None)
    with raw_client(fresh_sb) as client:
        pages, delta_link = round_of(client, view_url(user.id), **WINDOW)
    assert len(pages) > 1 and "$deltatoken=" in delta_link
    assert f"/users/{user.id}/calendarView/delta?" in delta_link
    entries = [entry for page in pages for entry in page]
    masters = {e["id"] for e in entries if e["type"] in ("singleInstance", "seriesMaster")}
    expected = {e.id for e in fresh_sb.tenant.calendar_data.events(user.id, calendar.id)}
    assert masters == expected
    for page in pages:  # every instance follows its master on the same page
        seen = {e["id"] for e in page if e["type"] == "seriesMaster"}
        assert all(e["seriesMasterId"] in seen for e in page if e.get("seriesMasterId"))
    occurrence = next(e for e in entries if e["type"] == "occurrence")
    assert set(occurrence) == set(OCCURRENCE_DELTA_KEYS)
    exception = next(e for e in entries if e["type"] == "exception")
    assert exception["subject"] and exception["attendees"]


def test_delta_is_refused_on_any_view_but_the_primary_calendars(fresh_sb: SandboxServer) -> None:
    # v1.0 documents calendarView/delta only as /users/{id}/calendarView/delta (event-delta,
    # "HTTP request"); the per-calendar forms are beta's. Graph refuses a delta it does not
    # support on events with 400 "Unsupported request: Change tracking is not supported
    # against 'microsoft.graph.event'" (github.com/microsoftgraph/msgraph-metadata/issues/608).
    user = fresh_sb.tenant.users[0]
    data = fresh_sb.tenant.calendar_data
    primary = data.calendar(user.id, None)
    other = next(c for c in data.calendars(user.id) if not c.is_default)
    undocumented = [
        f"users/{user.id}/calendars/{other.id}/calendarView/delta",
        f"users/{user.id}/calendars/{primary.id}/calendarView/delta",
        f"users/{user.id}/calendar/calendarView/delta",
    ]
    with raw_client(fresh_sb) as client:
        assert client.get(view_url(user.id), params=WINDOW).status_code == 200
        for url in undocumented:
            refused = client.get(url, params=WINDOW)
            assert refused.status_code == 400, url
            error = refused.json()["error"]
            assert error["code"] == "BadRequest"
            assert (
                "Change tracking is not supported against 'microsoft.graph.event'"
                in (error["message"])
            )
        # The plain view of any calendar stays served
        # (https://learn.microsoft.com/en-us/graph/api/calendar-list-calendarview).
        view = client.get(f"users/{user.id}/calendars/{other.id}/calendarView", params=WINDOW)
    assert view.status_code == 200 and view.json()["value"]


def test_incremental_rounds_after_each_kind_of_change(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    data = fresh_sb.tenant.calendar_data
    primary = data.calendar(user.id, None).id
    with raw_client(fresh_sb) as client:
        link = round_of(client, view_url(user.id), **WINDOW)[1]
        for mutation in (
            Mutation(seed=1, event_changes=3, user=user.upn),
            Mutation(seed=2, event_cancellations=2, user=user.upn),
            Mutation(seed=3, event_deletions=2, user=user.upn),
            Mutation(seed=4, new_events=2, user=user.upn),
        ):
            before = {e.id: e for e in data.all_events([user.id])}
            result = fresh_sb.mutate(mutation)
            pages, link = round_of(client, link)
            entries = [entry for page in pages for entry in page]
            calendar_of = {e.id: e.calendar_id for e in data.all_events([user.id])}
            calendar_of |= {key: event.calendar_id for key, event in before.items()}
            touched = [t for t in result.events if calendar_of[t] == primary]
            stamps = {key: event.change_key for key, event in before.items()}
            assert_round(entries, touched, stamps, data, user.id)
        quiet = round_of(client, link)[0]
    assert quiet == [[]]


def assert_round(
    entries: list[dict[str, Any]], touched: list[str], before: dict[str, str], data: Any, user: str
) -> None:
    """The round names exactly the touched singles and masters, as changes or removals."""
    assert touched
    alive = {e.id: e for e in data.all_events([user])}
    removed = {e["id"] for e in entries if "@removed" in e}
    changed = {e["id"]: e for e in entries if e.get("type") in ("singleInstance", "seriesMaster")}
    assert set(changed) == {t for t in touched if t in alive}
    assert {t for t in touched if t not in alive} <= removed
    for event_id, entry in changed.items():
        assert entry["changeKey"] == alive[event_id].change_key != before.get(event_id)
    assert all(e["@removed"] == {"reason": "deleted"} for e in entries if "@removed" in e)


def test_a_cancelled_occurrence_is_removed_and_its_master_comes_again(
    fresh_sb: SandboxServer,
) -> None:
    user = fresh_sb.tenant.users[0]
    data = fresh_sb.tenant.calendar_data
    with raw_client(fresh_sb) as client:
        _, link = round_of(client, view_url(user.id), **WINDOW)
        (master_id,) = fresh_sb.mutate(Mutation(event_cancellations=1, user=user.upn)).events
        master = data.event(user.id, master_id)
        assert master.calendar_id == data.calendar(user.id, None).id
        pages, _ = round_of(client, link)
    entries = [entry for page in pages for entry in page]
    gone = [e["id"] for e in entries if "@removed" in e]
    assert len(gone) == 1 and gone[0].startswith("AAMkAGI2TG9j")
    assert entries[1]["id"] == master_id and entries[1]["changeKey"] == master.change_key
    assert gone[0] not in {e["id"] for e in entries[2:]}


def test_expired_tokens_answer_410(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    with raw_client(fresh_sb) as client:
        _, link = round_of(client, view_url(user.id), **WINDOW)
        fresh_sb.tenant.expire_delta_tokens()
        expired = client.get(link)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "syncStateNotFound"


def test_contacts_delta_rounds(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    data = fresh_sb.tenant.calendar_data
    folders = data.contact_folders(user.id)
    urls = [f"users/{user.id}/contacts/delta"]
    urls += [f"users/{user.upn}/contactFolders/{f.id}/contacts/delta" for f in folders[1:]]
    with raw_client(fresh_sb) as client:
        initial = [round_of(client, url) for url in urls]
        listed = {e["id"] for pages, _ in initial for page in pages for e in page}
        assert listed == {c.id for f in folders for c in data.contacts(user.id, f.id)}
        mutation = Mutation(contact_changes=2, contact_deletions=1, new_contacts=1, user=user.upn)
        touched = fresh_sb.mutate(mutation).contacts
        entries = [e for _, link in initial for page in round_of(client, link)[0] for e in page]
    alive = {c.id for c in data.all_contacts([user.id])}
    assert {e["id"] for e in entries if "@removed" not in e} == {t for t in touched if t in alive}
    assert {e["id"] for e in entries if "@removed" in e} == {t for t in touched if t not in alive}
    assert len(touched) == 4


def test_contacts_delta_pages_hold_200_at_most(fresh_sb: SandboxServer) -> None:
    # contact-delta documents Prefer: odata.maxpagesize with no maximum; Graph caps contacts
    # pages at 200 whatever is asked (https://learn.microsoft.com/en-us/answers/a/2052165).
    user = fresh_sb.tenant.users[0]
    add_contacts(fresh_sb, user.id, 230)
    url = f"users/{user.id}/contacts/delta"
    with raw_client(fresh_sb) as client:
        asked_more = client.get(url, headers={"Prefer": "odata.maxpagesize=1000"})
        asked_less = client.get(url, headers={"Prefer": "odata.maxpagesize=50"})
    assert len(asked_more.json()["value"]) == 200 and "@odata.nextLink" in asked_more.json()
    assert asked_more.headers["Preference-Applied"] == "odata.maxpagesize=200"
    assert len(asked_less.json()["value"]) == 50


def test_generation_is_deterministic() -> None:
    spec = TenantSpec(seed=11, users=2, messages=2, large_messages=0, events_per_user=24)

    def snapshot(tenant: Tenant) -> list[Any]:
        data = tenant.calendar_data
        users = [u.id for u in tenant.users]
        events = [data.event_json(e) for e in data.all_events(users)]
        contacts = [(c.fields, c.photo) for c in data.all_contacts(users)]
        return [events, contacts]

    first, second = Tenant.generate(spec), Tenant.generate(spec)
    assert snapshot(first) == snapshot(second)
    assert len(first.calendar_data.all_events([first.users[0].id])) == 24
    other = Tenant.generate(TenantSpec(seed=12, users=2, messages=2, large_messages=0))
    assert snapshot(other)[0][0]["id"] != snapshot(first)[0][0]["id"]
    mutation = Mutation(seed=3, event_changes=2, event_cancellations=1, new_contacts=1)
    assert first.mutate(mutation).events == second.mutate(mutation).events


def test_contacts_and_calendar_links_older_than_three_generations_are_410(
    fresh_sb: SandboxServer,
) -> None:
    # As for mail (sandbox/sync_states.py): each page of an Outlook delta walk is a new
    # generation of its sync state and only the newest few live; an older link answers
    # 410 SyncStateNotFound (github.com/microsoftgraph/microsoft-graph-docs/issues/2350
    # shows it on calendarView/delta, #2877 on messages, events and contacts).
    user = fresh_sb.tenant.users[0]
    small = {"Prefer": "odata.maxpagesize=1"}
    starts = [
        (view_url(user.id), WINDOW),
        (f"users/{user.id}/contacts/delta", {}),
    ]
    with raw_client(fresh_sb) as client:
        for url, params in starts:
            links = [client.get(url, params=params or None, headers=small).json()]
            while len(links) < 5:
                links.append(client.get(links[-1]["@odata.nextLink"], headers=small).json())
            stale = client.get(links[0]["@odata.nextLink"], headers=small)
            assert stale.status_code == 410, url
            assert stale.json()["error"]["code"] == "SyncStateNotFound"
            fresh = client.get(links[-1]["@odata.nextLink"], headers=small)
            assert fresh.status_code == 200, url
