"""The Teams channel source against a scripted Graph: listing, order, paging, delta, content."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from hirondelle.connectors.graph.teams import GraphTeamsSource, teams_tenant_budget
from hirondelle.connectors.graph.teams_cursor import ChannelCursor
from hirondelle.connectors.graph.teams_items import message_version
from hirondelle.migrator.errors import CursorExpired
from hirondelle.migrator.model import Container, Item, Owner, Page
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import run
from hirondelle.tests.graph_calendar.conftest import ScriptedGraph, query

from .conftest import (
    CHANNEL,
    CONTAINER,
    DELTA,
    MESSAGES,
    TEAM,
    by_query,
    content_of,
    items_of,
    make_source,
    message,
    page,
    url,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


async def read(source: GraphTeamsSource, cursor: str | None = None) -> list[Page]:
    return [p async for p in source.changes(CONTAINER, cursor)]


def collect(source: GraphTeamsSource, cursor: str | None = None) -> list[Page]:
    """Every page of the test channel's `changes`; closes the source."""

    async def pages() -> list[Page]:
        try:
            return await read(source, cursor)
        finally:
            await source.aclose()

    return run(pages())


async def closing(source: GraphTeamsSource, action: str, *args: object) -> object:
    try:
        return await getattr(source, action)(*args)
    finally:
        await source.aclose()


def script_channel(graph: ScriptedGraph, first_delta: str = "d1") -> None:
    """Two pages of roots, newest first, one with two replies; a one-page delta round."""
    newer = message("300", 30, replies=[message("320", 32, reply_to="300")])
    older = message(
        "100",
        10,
        replies=[message("150", 15, reply_to="100"), message("120", 12, reply_to="100")],
    )
    graph.answers[MESSAGES] = by_query(
        {
            "": page(
                [newer, message("200", 20, replies=[])], next=url(MESSAGES, **{"$skiptoken": "p2"})
            ),
            "p2": page([older]),
        }
    )
    graph.answers[DELTA] = page([], delta=url(DELTA, **{"$deltatoken": first_delta}))


def test_owners_are_teams_and_containers_their_channels(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    source = make_source(fake_time)

    async def scenario() -> tuple[list[Owner], list[Container]]:
        owners = await source.owners()
        containers = await closing(source, "containers", owners[0])
        assert isinstance(containers, list)
        return owners, containers

    owners, containers = run(scenario())
    assert owners == [Owner("team:Projet", TEAM, "Projet")]
    assert [(c.source_id, c.path, c.role, c.owner) for c in containers] == [
        (CHANNEL, ("Projet", "Général"), "standard", "team:Projet"),
        ("19:secret@thread.tacv2", ("Projet", "Direction"), "private", "team:Projet"),
    ]
    assert (
        "membershipType" in query(teams_graph.asked(f"/v1.0/teams/{TEAM}/channels")[0])["$select"]
    )


def test_owners_fall_back_to_team_groups(graph: ScriptedGraph, fake_time: FakeTime) -> None:
    graph.answers["/v1.0/teams"] = httpx.Response(400, json={"error": {"code": "BadRequest"}})
    graph.answers["/v1.0/groups"] = page([{"id": TEAM, "displayName": "Projet"}])
    owners = run(closing(make_source(fake_time), "owners"))
    assert owners == [Owner("team:Projet", TEAM, "Projet")]
    asked = query(graph.asked("/v1.0/groups")[0])
    assert asked["$filter"] == "resourceProvisioningOptions/Any(x:x eq 'Team')"


def test_a_channel_comes_oldest_first_each_root_followed_by_its_replies(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    pages = collect(make_source(fake_time))
    assert items_of(pages) == ["100", "100/120", "100/150", "200", "300", "300/320"]
    cursor = json.loads(pages[-1].delta_link or "")
    assert cursor["delta"] == url(DELTA, **{"$deltatoken": "d1"})
    assert all(p.delta_link is None for p in pages[:-1])
    reply = pages[0].items[1]
    assert reply.meta == {
        "rootId": "100",
        "createdDateTime": "2024-03-01T08:12:00.012Z",
        "fromId": "user-120",
        "fromName": "Élodie Martin",
        "messageType": "message",
        "deleted": False,
    }


def test_the_delta_round_precedes_the_enumeration_and_every_read_asks_real_enums(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    collect(make_source(fake_time))
    reads = [r for r in teams_graph.requests if "/messages" in r.url.path]
    assert "delta" in reads[0].url.path
    first = query(reads[1])
    assert (first["$top"], first["$expand"]) == ("50", "replies")
    assert query(reads[0])["$top"] == "50"
    for request in reads:
        assert "include-unknown-enum-members" in request.headers["Prefer"]


def test_replies_past_the_first_thousand_are_paged(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    replies_path = f"{MESSAGES}/1/replies"
    expanded = [message(str(1000 + n), n, reply_to="1") for n in range(1000)]
    root = message("1", 0, replies=expanded)
    root["replies@odata.nextLink"] = url(replies_path, **{"$skiptoken": "r2"})
    root["replies@odata.count"] = 1200
    rest = [message(str(2000 + n), 1000 + n, reply_to="1") for n in range(200)]
    teams_graph.answers[replies_path] = by_query(
        {
            "r2": page(rest[:100], next=url(replies_path, **{"$skiptoken": "r3"})),
            "r3": page(rest[100:]),
        }
    )
    teams_graph.answers[MESSAGES] = page([root])
    teams_graph.answers[DELTA] = page([], delta=url(DELTA, **{"$deltatoken": "d1"}))
    ids = items_of(collect(make_source(fake_time)))
    assert len(ids) == 1201 and len(set(ids)) == 1201
    assert ids[:2] == ["1", "1/1000"] and ids[-1] == "1/2199"


def test_a_root_whose_replies_were_not_all_expanded_lists_them(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    root = message("1", 0, replies=[message("2", 1, reply_to="1")])
    root["replies@odata.count"] = 2
    teams_graph.answers[f"{MESSAGES}/1/replies"] = page(
        [message("3", 2, reply_to="1"), message("2", 1, reply_to="1")]
    )
    teams_graph.answers[MESSAGES] = page([root])
    teams_graph.answers[DELTA] = page([], delta=url(DELTA, **{"$deltatoken": "d1"}))
    assert items_of(collect(make_source(fake_time))) == ["1", "1/2", "1/3"]


def test_throttling_waits_for_retry_after(teams_graph: ScriptedGraph, fake_time: FakeTime) -> None:
    script_channel(teams_graph)
    listing = teams_graph.answers[MESSAGES]
    throttled = httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": "x"}})
    teams_graph.answers[MESSAGES] = [throttled, listing, listing]  # type: ignore[list-item]  # a scripted error among pages
    pages = collect(make_source(fake_time))
    assert len(items_of(pages)) == 6
    assert 7.0 in fake_time.sleeps


def test_reads_stay_within_four_per_second_on_a_channel(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    roots = [message(str(n), n, replies=[]) for n in range(1, 10)]
    pages = {
        str(n): page([roots[n]], next=url(MESSAGES, **{"$skiptoken": str(n + 1)})) for n in range(8)
    }
    pages["8"] = page([roots[8]])
    teams_graph.answers[MESSAGES] = by_query({"": pages["0"], **pages})
    teams_graph.answers[DELTA] = page([], delta=url(DELTA, **{"$deltatoken": "d1"}))
    collect(make_source(fake_time))
    assert fake_time.now >= 2.0  # 10 reads at 4 per second


def test_every_message_read_takes_a_slot_of_the_tenant_cap(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    source = make_source(fake_time)
    collect(source)
    reads = [r for r in teams_graph.requests if "/messages" in r.url.path]
    assert source.tenant.stats()["teams-tenant"]["requests"] == len(reads) == 3
    budget = teams_tenant_budget()
    assert (budget.requests_per_window, budget.window_seconds) == (20, 1.0)


def test_where_delta_is_refused_each_sync_reads_the_channel_whole(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    refused = {"error": {"code": "BadRequest", "message": "Delta query is not supported"}}
    teams_graph.answers[DELTA] = httpx.Response(400, json=refused)
    first = collect(make_source(fake_time))
    assert json.loads(first[-1].delta_link or "")["delta"] is None
    again = collect(make_source(fake_time), first[-1].delta_link)
    assert items_of(again) == items_of(first)


def test_a_sync_reads_the_delta_link_and_the_reported_threads(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    first = collect(make_source(fake_time))
    before = {i.source_id: i.version for p in first for i in p.items}
    edited = message(
        "300",
        30,
        body="Bonjour, corrigé",
        lastEditedDateTime="2024-03-02T09:00:00Z",
        lastModifiedDateTime="2024-03-02T09:00:00Z",
        replies=[message("320", 32, reply_to="300"), message("330", 33, reply_to="300")],
    )
    removed = {"id": "200", "@removed": {"reason": "deleted"}}
    teams_graph.answers[DELTA] = by_query(
        {"d1": page([edited, removed], delta=url(DELTA, **{"$deltatoken": "d2"}))}
    )
    teams_graph.answers[MESSAGES] = by_query(  # the listing as it is now
        {"": page([edited], next=url(MESSAGES, **{"$skiptoken": "p2"})), "p2": page([])}
    )
    source = make_source(fake_time, reply_window_days=0, reread_pages=1)
    pages = collect(source, first[-1].delta_link)
    changed = {i.source_id for p in pages for i in p.items if before.get(i.source_id) != i.version}
    assert changed == {"300", "300/330"}
    assert items_of(pages) == ["300", "300/320", "300/330"]
    assert pages[-1].removed == ("200",)
    cursor = json.loads(pages[-1].delta_link or "")
    assert cursor["delta"].endswith("$deltatoken=d2")
    assert cursor["round"]["next"].endswith("$skiptoken=p2") and pages[-1].unchecked


def test_recently_active_threads_the_round_did_not_reach_have_their_replies_read(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    first = collect(make_source(fake_time))
    assert set(json.loads(first[-1].delta_link or "")["recent"]) == {"100", "200", "300"}
    teams_graph.answers[DELTA] = page([], delta=url(DELTA, **{"$deltatoken": "d2"}))
    teams_graph.answers[f"{MESSAGES}/100/replies"] = page(
        [message("170", 17, reply_to="100"), message("150", 15, reply_to="100")]
    )
    pages = collect(make_source(fake_time, reread_pages=1), first[-1].delta_link)
    assert "100/170" in items_of(pages)  # thread 100 is on the round's next page
    assert "100" not in items_of(pages)  # the root itself was not read again
    assert not teams_graph.asked(f"{MESSAGES}/300/replies")  # the round read thread 300


def test_an_expired_delta_link_asks_for_a_new_enumeration(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    gone = httpx.Response(410, json={"error": {"code": "syncStateNotFound"}})
    teams_graph.answers[DELTA] = gone
    cursor = ChannelCursor(url(DELTA, **{"$deltatoken": "old"})).dumps()
    with pytest.raises(CursorExpired, match="expired"):  # gone
        collect(make_source(fake_time), cursor)
    earlier = json.dumps({"v": 1, "delta": url(DELTA, **{"$deltatoken": "d1"}), "recent": {}})
    with pytest.raises(CursorExpired):  # an earlier version's: read the channel whole once
        collect(make_source(fake_time), earlier)
    with pytest.raises(CursorExpired):
        collect(make_source(fake_time), "not json")


def test_fetch_uses_the_listed_body_and_downloads_inline_images(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    image = f"{url(MESSAGES)}/100/replies/120/hostedContents/aWQ9eF8w/$value"
    reply = message("120", 12, reply_to="100", body=f'<img src="{image}">')
    teams_graph.answers[MESSAGES] = page([message("100", 10, replies=[reply])])
    teams_graph.answers[DELTA] = page([], delta=url(DELTA, **{"$deltatoken": "d1"}))
    teams_graph.answers[f"{MESSAGES}/100/replies/120/hostedContents/aWQ9eF8w/$value"] = (
        httpx.Response(200, content=PNG)
    )
    source = make_source(fake_time)

    async def scenario() -> bytes:
        try:
            async for p in source.changes(CONTAINER, None):
                return await source.fetch(CONTAINER, p.items[1])
        finally:
            await source.aclose()
        raise AssertionError("no page")

    content = content_of(run(scenario()))
    assert content["message"]["id"] == "120" and "replies" not in content["message"]
    assert content["hostedContents"] == {
        "aWQ9eF8w": {"contentType": "image/png", "base64": base64.b64encode(PNG).decode()}
    }
    assert content["team"] == {"id": TEAM, "displayName": "Projet"}
    assert content["channel"] == {"id": CHANNEL, "displayName": "Général", "description": ""}
    assert not teams_graph.asked(f"{MESSAGES}/100/replies/120")  # the body came from the listing


def test_fetch_reads_a_message_again_once_its_body_was_dropped(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    teams_graph.answers[f"{MESSAGES}/100/replies/120"] = message("120", 12, reply_to="100")
    item = Item("100/120", "v", {"rootId": "100"})
    fetched = run(closing(make_source(fake_time), "fetch", CONTAINER, item))
    assert isinstance(fetched, bytes)
    content = content_of(fetched)
    assert content["message"]["id"] == "120" and content["hostedContents"] == {}


def test_listing_names_every_root_and_reply(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    script_channel(teams_graph)
    items = run(closing(make_source(fake_time), "listing", CONTAINER))
    assert isinstance(items, list)
    assert [i.source_id for i in items] == ["100", "100/120", "100/150", "200", "300", "300/320"]


def test_the_version_follows_edits_deletions_and_reactions_not_thread_activity() -> None:
    base = message("1", 0)
    touched = {**base, "lastModifiedDateTime": "2025-01-01T00:00:00Z"}
    assert message_version(base) == message_version(touched)
    reaction = {"reactionType": "like", "user": {"user": {"id": "u1"}}}
    for changed in (
        {"lastEditedDateTime": "2024-03-02T00:00:00Z"},
        {"deletedDateTime": "2024-03-02T00:00:00Z"},
        {"reactions": [reaction]},
    ):
        assert message_version({**base, **changed}) != message_version(base)


def test_the_team_members_display_names_are_kept_for_the_mapper(
    teams_graph: ScriptedGraph, fake_time: FakeTime
) -> None:
    """A reaction names its user by id only: the members' listing names them."""
    teams_graph.answers[f"/v1.0/teams/{TEAM}/members"] = page(
        [
            {"userId": "u-alice", "displayName": "Alice Martin", "roles": ["owner"]},
            {"userId": "u-bob", "displayName": "Bob Durand", "roles": []},
            {"userId": "u-ghost", "displayName": None, "roles": []},
        ]
    )
    source = make_source(fake_time)
    run(closing(source, "containers", Owner("team:Projet", TEAM, "Projet")))
    assert source.member_names == {"u-alice": "Alice Martin", "u-bob": "Bob Durand"}
    assert source.team_owner_ids == {TEAM: ["u-alice"]}
