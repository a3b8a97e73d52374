"""messages/delta: the eight-month horizon, incremental rounds after each kind of change."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sandbox_helpers import raw_client
from teams_helpers import every_page

from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Mutation


def channel_paths(sb: SandboxServer) -> dict[str, str]:
    """Every hosted channel's path, by channel id."""
    data = sb.tenant.teams
    return {c.id: f"teams/{t.id}/channels/{c.id}" for t in data.teams for c in data.channels(t.id)}


def delta_links(sb: SandboxServer, client: httpx.Client) -> dict[str, str]:
    """An initial round (with replies expanded) per channel: its deltaLink."""
    links = {}
    for channel_id, path in channel_paths(sb).items():
        params = {"$top": 10, "$expand": "replies"}
        _, last = every_page(client, f"{path}/messages/delta", params)
        links[channel_id] = last["@odata.deltaLink"]
    return links


def next_round(client: httpx.Client, links: dict[str, str]) -> dict[str, list[dict]]:
    """Each channel's reported roots; the links move on to the new deltaLinks."""
    reported = {}
    for channel_id, link in links.items():
        found, last = every_page(client, link)
        reported[channel_id], links[channel_id] = found, last["@odata.deltaLink"]
    return reported


def test_the_first_round_holds_the_roots_of_the_last_eight_months(fresh: SandboxServer) -> None:
    data = fresh.tenant.teams
    months = (data.now.year - data.horizon.year) * 12 + data.now.month - data.horizon.month
    assert months == 8 and data.horizon.day == data.now.day
    channel = data.channels(data.teams[0].id)[0]
    path = f"teams/{data.teams[0].id}/channels/{channel.id}"
    with raw_client(fresh) as client:
        found, last = every_page(client, f"{path}/messages/delta", {"$top": 4})
    expected = {r.id for r in data.roots(channel.id) if r.created >= data.horizon}
    older = {r.id for r in data.roots(channel.id)} - expected
    assert {m["id"] for m in found} == expected and older  # some posts are too old for delta
    assert len(found) == len(expected)
    assert all(m["replyToId"] is None for m in found)
    assert all(m["@odata.type"] == "#microsoft.graph.chatMessage" for m in found)
    assert "@odata.nextLink" not in last and "$deltatoken=" in last["@odata.deltaLink"]
    span = data.now - min(r.created for r in data.roots(channel.id))
    assert 400 <= span.days <= 430  # about 14 months of history


@pytest.mark.parametrize(
    "mutation",
    [
        Mutation(seed=1, chat_posts=2),
        Mutation(seed=2, chat_replies=3),
        Mutation(seed=3, chat_edits=3),
        Mutation(seed=4, chat_deletions=3),
        Mutation(seed=5, chat_posts=2, chat_replies=3, chat_edits=1, chat_deletions=1),
    ],
    ids=["posts", "replies", "edits", "deletions", "all"],
)
def test_a_round_reports_exactly_the_roots_that_changed_themselves(
    fresh: SandboxServer, mutation: Mutation
) -> None:
    # Delta lists "messages (without the replies)" and sends to list replies for those:
    # https://learn.microsoft.com/en-us/graph/api/chatmessage-delta. A reply posted, edited
    # or deleted does not bring its root back; the thread's replies listing has it:
    # https://learn.microsoft.com/en-us/graph/api/chatmessage-list-replies
    paths = channel_paths(fresh)
    with raw_client(fresh) as client:
        links = delta_links(fresh, client)
        assert not any(next_round(client, links).values())  # nothing changed yet
        touched = fresh.mutate(mutation).messages
        reported = next_round(client, links)
        assert not any(next_round(client, links).values())  # and nothing since
        data = fresh.tenant.teams
        listed = {}
        for source in touched:
            root_id, _, reply_id = source.partition("/")
            stored = next(m for m in data.all_messages() if m.source_id == source)
            if reply_id:
                url = f"{paths[stored.channel_id]}/messages/{root_id}/replies"
                replies, _ = every_page(client, url, {"$top": 50})
                listed[source] = next(r for r in replies if r["id"] == reply_id)
    found = {m["id"]: m for entries in reported.values() for m in entries}
    assert set(found) == {source for source in touched if "/" not in source}
    wanted = (
        mutation.chat_posts + mutation.chat_replies + mutation.chat_edits + mutation.chat_deletions
    )
    assert len(touched) == len(set(touched)) == wanted
    for source in touched:
        message = listed.get(source) or found[source]
        stored = next(m for m in data.all_messages() if m.source_id == source)
        assert message["etag"] == stored.etag
        if stored.deleted:
            assert message["deletedDateTime"] and message["body"]["content"] == ""
        if stored.edited and not stored.deleted:
            assert message["lastEditedDateTime"] == message["lastModifiedDateTime"]


def test_a_reply_to_an_old_thread_leaves_delta_and_the_root_unchanged(
    fresh: SandboxServer,
) -> None:
    data = fresh.tenant.teams
    team = data.teams[0]
    channel = data.channels(team.id)[1]
    oldest = next(r for r in data.roots(channel.id) if r.deleted is None and r.sender)
    path = f"teams/{team.id}/channels/{channel.id}/messages"
    with raw_client(fresh) as client:
        _, last = every_page(client, f"{path}/delta", {"$expand": "replies"})
        before = client.get(f"{path}/{oldest.id}").json()
        touched = fresh.mutate(Mutation(seed=9, chat_replies=1, chat_thread=oldest.id)).messages
        later, _ = every_page(client, last["@odata.deltaLink"])
        after = client.get(f"{path}/{oldest.id}").json()
        replies, _ = every_page(client, f"{path}/{oldest.id}/replies")
        refused = client.get(f"{path}/{oldest.id}/replies/delta")
    assert touched and touched[0].startswith(f"{oldest.id}/") and later == []
    assert after["lastModifiedDateTime"] == before["lastModifiedDateTime"]
    assert replies[0]["id"] == touched[0].split("/")[1]  # newest first
    assert refused.status_code == 400  # replies/delta: documented for no channel


def test_a_change_during_a_round_is_reported_by_the_next(fresh: SandboxServer) -> None:
    data = fresh.tenant.teams
    channel = data.channels(data.teams[1].id)[0]
    path = f"teams/{data.teams[1].id}/channels/{channel.id}"
    expected = {r.id for r in data.roots(channel.id) if r.created >= data.horizon}
    with raw_client(fresh) as client:
        first = client.get(f"{path}/messages/delta", params={"$top": 2}).json()
        emitted = data.root(channel.id, first["value"][0]["id"])
        moment = data.clock()
        data.store(
            dataclasses.replace(emitted, body="<p>modifié</p>", edited=moment, modified=moment)
        )
        rest, last = every_page(client, first["@odata.nextLink"])
        later, _ = every_page(client, last["@odata.deltaLink"])
    assert {m["id"] for m in first["value"] + rest} == expected  # nothing skipped or repeated
    assert len(first["value"] + rest) == len(expected)
    assert [m["id"] for m in later] == [emitted.id]
    assert later[0]["body"]["content"] == "<p>modifié</p>"


def test_filter_is_refused_and_expired_tokens_are_gone(fresh: SandboxServer) -> None:
    data = fresh.tenant.teams
    path = next(iter(channel_paths(fresh).values()))
    with raw_client(fresh) as client:
        refused = client.get(
            f"{path}/messages/delta",
            params={"$filter": "lastModifiedDateTime gt 2023-01-01T00:00:00Z"},
        )
        _, last = every_page(client, f"{path}/messages/delta")
        fresh.tenant.expire_delta_tokens()
        gone = client.get(last["@odata.deltaLink"])
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert message == "Parameter 'Filter' not supported for this request."
    assert gone.status_code == 410 and data.delta_epoch == 1
