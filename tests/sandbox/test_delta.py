"""messages/delta: initial rounds, incremental rounds after mutations, expired tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_helpers import make_tenant, prefer, raw_client

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation


@pytest.fixture()
def mutable() -> Iterator[SandboxServer]:
    """A sandbox of its own: these tests mutate the tenant."""
    with SandboxServer(make_tenant(), tls=True, limits=Limits(enabled=False)) as server:
        yield server


def run_round(client: httpx.Client, url: str, page_size: int = 3) -> tuple[list[Any], str, int]:
    """Follow nextLinks to the deltaLink; return entries, the deltaLink, the page count."""
    entries: list[Any] = []
    pages = 0
    while True:
        response = client.get(url, headers=prefer(f"odata.maxpagesize={page_size}"))
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["value"]) <= page_size
        entries += body["value"]
        if "@odata.deltaLink" in body:
            return entries, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def test_initial_round_lists_the_folder_then_incremental_round_lists_changes(
    mutable: SandboxServer,
) -> None:
    tenant = mutable.tenant
    user = tenant.users[0]
    inbox = tenant.folder(user.id, "inbox")
    before = {m.id for m in tenant.messages(user.id, inbox.id)}
    start = f"users/{user.id}/mailFolders/inbox/messages/delta?$select=subject,isRead"
    with raw_client(mutable) as client:
        entries, delta_link, pages = run_round(client, start)
        assert sorted(e["id"] for e in entries) == sorted(before)
        assert pages > 1
        assert all(e["@odata.type"] == "#microsoft.graph.message" for e in entries)
        assert set(entries[0]) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}

        mutation = Mutation(seed=3, new=2, flag_changes=8, moves=12, deletions=8, user=user.id)
        result = mutable.mutate(mutation)
        entries, second_link, _ = run_round(client, delta_link)
        again, _, _ = run_round(client, second_link)

    now = {m.id for m in tenant.messages(user.id, inbox.id)}
    removed = {e["id"] for e in entries if "@removed" in e}
    changed = {e["id"] for e in entries if "@removed" not in e}
    assert before - now, "the mutation should take messages out of the inbox"
    assert removed >= before - now and not removed & now
    assert changed >= (now - before) | (set(result.changed) & now)
    assert set(result.new) <= changed <= now
    for entry in entries:
        if "@removed" in entry:
            assert entry == {
                "@odata.type": "#microsoft.graph.message",
                "id": entry["id"],
                "@removed": {"reason": "deleted"},
            }
        else:
            assert entry["isRead"] == tenant.message(user.id, entry["id"]).is_read
    assert again == []  # nothing changed since the second round


def test_skiptoken_stays_valid_while_the_tenant_mutates(mutable: SandboxServer) -> None:
    tenant = mutable.tenant
    user = tenant.users[1]
    inbox = tenant.folder(user.id, "inbox")
    before = {m.id for m in tenant.messages(user.id, inbox.id)}
    with raw_client(mutable) as client:
        first = client.get(
            f"users/{user.id}/mailFolders/inbox/messages/delta",
            headers=prefer("odata.maxpagesize=2"),
        ).json()
        mutable.mutate(Mutation(seed=5, new=3, flag_changes=3, user=user.id))
        rest, delta_link, _ = run_round(client, first["@odata.nextLink"], page_size=2)
        seen = {e["id"] for e in first["value"] + rest}
        assert before <= seen  # no message that was there at the start is skipped
        later, _, _ = run_round(client, delta_link)
    now = {m.id for m in tenant.messages(user.id, inbox.id)}
    assert now <= seen | {e["id"] for e in later}


def test_expired_delta_token_is_410_with_a_restart_location(mutable: SandboxServer) -> None:
    user = mutable.tenant.users[0]
    with raw_client(mutable) as client:
        _, delta_link, _ = run_round(
            client, f"users/{user.id}/mailFolders/inbox/messages/delta", 50
        )
        mutable.expire_delta_tokens()
        response = client.get(delta_link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "syncStateNotFound"
    assert response.headers["Location"].endswith("/messages/delta")


def test_delta_honours_expand_and_page_size_preference(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    expand = "singleValueExtendedProperties($filter=id eq 'Integer 0x0E08')"
    with raw_client(sb) as client:
        response = client.get(
            f"users/{user.upn}/mailFolders/inbox/messages/delta",
            params={"$expand": expand},
            headers=prefer("odata.maxpagesize=4"),
        )
        body = response.json()
        following = client.get(body["@odata.nextLink"]).json()
    assert response.headers["Preference-Applied"] == 'odata.maxpagesize=4, IdType="ImmutableId"'
    assert len(body["value"]) == 4
    for entry in body["value"] + following["value"]:
        size = sb.tenant.message(user.id, entry["id"]).size
        assert entry["singleValueExtendedProperties"] == [
            {"id": "Integer 0x0E08", "value": str(size)}
        ]


def test_delta_without_preference_sends_ten_a_page(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    with raw_client(sb) as client:
        body = client.get(f"users/{user.id}/mailFolders/inbox/messages/delta").json()
    total = len(sb.tenant.messages(user.id, sb.tenant.folder(user.id, "inbox").id))
    assert len(body["value"]) == min(10, total)


def test_links_older_than_three_generations_are_410_sync_state_not_found(
    mutable: SandboxServer,
) -> None:
    # Exchange keeps the newest few generations of a folder's sync state; an older link
    # answers 410 "The sync state generation is not found; generation=518;[highest=523]
    # [523][521][522]." (github.com/microsoftgraph/microsoft-graph-docs/issues/2877, #2162).
    user = mutable.tenant.users[0]
    links = [f"users/{user.id}/mailFolders/inbox/messages/delta"]
    with raw_client(mutable) as client:
        while len(links) < 6:
            body = client.get(links[-1], headers=prefer("odata.maxpagesize=2")).json()
            links.append(body["@odata.nextLink"])
        stale = client.get(links[1], headers=prefer("odata.maxpagesize=2"))
        assert stale.status_code == 410
        error = stale.json()["error"]
        assert error["code"] == "SyncStateNotFound"
        assert error["message"].startswith("The sync state generation is not found; generation=1;")
        assert "[highest=5][5][4][3]" in error["message"]
        assert stale.headers["Location"].endswith("/messages/delta")
        # the newest three still answer (a retried page is not lost)
        for link in links[-3:]:
            assert client.get(link, headers=prefer("odata.maxpagesize=2")).status_code == 200


def test_top_bounds_the_initial_round_not_the_page(mutable: SandboxServer) -> None:
    # message-delta, "OData query parameters": delta supports $top for messages. As OData's
    # $top it bounds the round: $top=2 gives two messages and the round ends
    # (github.com/microsoftgraph/microsoft-graph-docs/issues/2232), and a sync that keeps
    # $top never reads the other messages (github.com/bkaankose/Wino-Mail/pull/716).
    user = mutable.tenant.users[0]
    inbox = mutable.tenant.folder(user.id, "inbox")
    total = len(mutable.tenant.messages(user.id, inbox.id))
    url = f"users/{user.id}/mailFolders/inbox/messages/delta"
    with raw_client(mutable) as client:
        capped, capped_link, pages = run_round(client, f"{url}?$top=7", page_size=3)
        mutable.mutate(Mutation(new=2, user=user.upn))
        later, _, _ = run_round(client, capped_link, page_size=3)
        whole, _, _ = run_round(client, url, page_size=3)  # after: it ages capped_link
        refused = client.get(url, params={"$top": "0"})
    assert total > 7 and len(capped) == 7 and pages == 3 and len(whole) == total + 2
    assert {e["id"] for e in capped} < {e["id"] for e in whole}
    assert len([e for e in later if "@removed" not in e]) == 2  # later rounds: every change
    assert refused.status_code == 400
