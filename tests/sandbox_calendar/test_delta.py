"""calendarView/delta and contacts/delta: initial rounds, then one round after each mutation."""

from __future__ import annotations

from typing import Any

import httpx
from sandbox_helpers import raw_client

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


def view_url(sb: SandboxServer, user_id: str, calendar_id: str) -> str:
    return f"users/{user_id}/calendars/{calendar_id}/calendarView/delta"


def test_initial_round_lists_masters_with_their_instances_unsplit(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    calendar = fresh_sb.tenant.calendar_data.calendar(user.id, None)
    with raw_client(fresh_sb) as client:
        pages, delta_link = round_of(client, view_url(fresh_sb, user.id, calendar.id), **WINDOW)
    assert len(pages) > 1 and "$deltatoken=" in delta_link
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


def test_incremental_rounds_after_each_kind_of_change(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    data = fresh_sb.tenant.calendar_data
    calendars = [c.id for c in data.calendars(user.id)]
    with raw_client(fresh_sb) as client:
        links = {
            c: round_of(client, view_url(fresh_sb, user.id, c), **WINDOW)[1] for c in calendars
        }
        for mutation in (
            Mutation(seed=1, event_changes=3, user=user.upn),
            Mutation(seed=2, event_cancellations=2, user=user.upn),
            Mutation(seed=3, event_deletions=2, user=user.upn),
            Mutation(seed=4, new_events=2, user=user.upn),
        ):
            before = {i.id: i.change_key for i in data.all_events([user.id])}
            result = fresh_sb.mutate(mutation)
            entries: list[dict[str, Any]] = []
            for calendar_id in calendars:
                pages, links[calendar_id] = round_of(client, links[calendar_id])
                entries += [entry for page in pages for entry in page]
            assert_round(entries, result.events, before, data, user.id)
        quiet = [round_of(client, links[c])[0] for c in calendars]
    assert quiet == [[[]], [[]]]


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
        links = {c.id: round_of(client, view_url(fresh_sb, user.id, c.id), **WINDOW)[1]
                 for c in data.calendars(user.id)}  # fmt: skip
        (master_id,) = fresh_sb.mutate(Mutation(event_cancellations=1, user=user.upn)).events
        master = data.event(user.id, master_id)
        pages, _ = round_of(client, links[master.calendar_id])
    entries = [entry for page in pages for entry in page]
    gone = [e["id"] for e in entries if "@removed" in e]
    assert len(gone) == 1 and gone[0].startswith("AAMkAGI2TG9j")
    assert entries[1]["id"] == master_id and entries[1]["changeKey"] == master.change_key
    assert gone[0] not in {e["id"] for e in entries[2:]}


def test_expired_tokens_answer_410(fresh_sb: SandboxServer) -> None:
    user = fresh_sb.tenant.users[0]
    calendar = fresh_sb.tenant.calendar_data.calendar(user.id, None)
    with raw_client(fresh_sb) as client:
        _, link = round_of(client, view_url(fresh_sb, user.id, calendar.id), **WINDOW)
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
