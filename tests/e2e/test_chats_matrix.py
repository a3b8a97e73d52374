"""Teams chats end to end into a real Synapse: sandbox Graph -> engine -> direct and
private rooms; a sync of new, edited and deleted messages; kill -9 during a chat."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chats_harness import (
    TEAMS_ID,
    Chats,
    assert_each_message_once_in_order,
    chat_rooms,
    chats_setup,
    messages,
    relation,
    room_events,
    room_state,
)
from harness import audit_reaches, final_run, kill_nine_at

from hirondelle.mappings.chat import DELETED_TEXT
from hirondelle.mappings.chat_direct import chat_alias
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.tenant import Mutation
from hirondelle.tests.servers import SynapseServer


@pytest.fixture
def chats(
    tmp_path: Path, synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Chats]:
    monkeypatch.chdir(tmp_path)
    for setup in chats_setup(tmp_path, synapse, real_user=True):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        yield setup


MEMBER = "m.room.member"


def direct_rooms(chats: Chats, user: str) -> dict[str, Any]:
    """The user's `m.direct` account data, read as the service acting for the user."""
    path = f"/_matrix/client/v3/user/{user}/account_data/m.direct?user_id={user}"
    return dict(chats.synapse.request("GET", path, chats.token))


def test_chats_into_synapse_then_a_sync(chats: Chats) -> None:
    config = load_config(chats.config_path)
    first = asyncio.run(operations.migrate(config, "run"))
    assert first.ok, first.as_dict()
    written = assert_each_message_once_in_order(chats)
    assert written == first.tallies["chats"].copied == 76
    rooms, data = chat_rooms(chats), chats.tenant.chats
    assert any(chat.left for chat in data.chats)
    for chat in data.chats:
        state = {
            (e["type"], e["state_key"]): e["content"] for e in room_state(chats, rooms[chat.id])
        }
        members = {chats.member(m.user_id) for m in chat.members}
        membership = {key: c["membership"] for (kind, key), c in state.items() if kind == MEMBER}
        assert all(membership.get(m) in ("join", "invite") for m in members), chat.id
        # who left in Teams joined to say their messages, then left: what is said after
        # is not theirs to read
        gone = [chats.member(m.user_id) for m in chat.left]
        assert all(membership.get(user) == "leave" for user in gone), chat.id
        said = messages(chats, rooms[chat.id])[0]["content"]["body"]  # Teams says who came
        assert said.endswith(" to the chat") and "Someone" not in said and "a member" not in said
        levels = state[("m.room.power_levels", "")]["users"]
        owners = {chats.member(m.user_id) for m in chat.members if "owner" in m.roles}
        assert owners and all(levels.get(owner) == 100 for owner in owners), chat.id
        if chat.chat_type == "oneOnOne":
            assert ("m.room.name", "") not in state  # each side sees the other's name
            first_user, second_user = sorted(members)
            for user, other in ((first_user, second_user), (second_user, first_user)):
                assert rooms[chat.id] in direct_rooms(chats, user).get(other, []), user
        else:
            assert state[("m.room.name", "")]["name"] == (chat.topic or _names(chat)), chat.id
    # the one-to-one chat's showcase: inline images uploaded, a file named, a quoted reply
    one = next(chat for chat in data.chats if chat.chat_type == "oneOnOne")
    events = {e["content"][TEAMS_ID]: e for e in messages(chats, rooms[one.id])}
    for message in data.roots(one.id):
        content = events[message.id]["content"]
        if message.hosted:
            html = content["formatted_body"]
            assert html.count("mxc://localhost/") == 2 and "mxc://hirondelle/" not in html
        kinds = {a["contentType"]: a for a in message.attachments}
        if "reference" in kinds:
            assert kinds["reference"]["name"] in content["body"]
        if "messageReference" in kinds:
            quoted = events[kinds["messageReference"]["id"]]["event_id"]
            assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == quoted
    # the real user mapped to the first member reads the room as theirs
    assert chats.real is not None
    path, token = "/_matrix/client/v3/joined_rooms", chats.real.access_token
    assert rooms[one.id] in chats.synapse.request("GET", path, token)["joined_rooms"]
    report = asyncio.run(operations.check(config))["chats"]
    assert report.verified, report.differences[:5]

    changed = chats.sandbox.mutate(
        Mutation(seed=4, chats_messages=2, chats_edits=1, chats_deletions=1)
    )
    edited, deleted = changed.chat_messages[2:]
    second = asyncio.run(operations.migrate(config, "sync"))
    assert second.ok, second.as_dict()
    tally = second.tallies["chats"]
    assert (tally.copied, tally.updated, tally.failed) == (2, 2, 0)
    assert assert_each_message_once_in_order(chats) == 78  # the new ones at the end, in order
    replaced = _replacements(chats, rooms)
    new = {teams_id: event["content"]["m.new_content"] for teams_id, event in replaced.items()}
    assert "Modifié" in new[edited]["body"] and new[edited]["msgtype"] == "m.text"
    assert new[deleted] == {**new[deleted], "body": DELETED_TEXT, "msgtype": "m.notice"}
    changed_at = {m.id: m.deleted or m.edited for chat in data.chats for m in data.roots(chat.id)}
    for teams_id in (edited, deleted):  # at Teams' time of the change, as the messages
        when = changed_at[teams_id]
        assert when and replaced[teams_id]["origin_server_ts"] == int(when.timestamp() * 1000)
    report = asyncio.run(operations.check(config))["chats"]
    assert report.verified, report.differences[:5]
    again = asyncio.run(operations.migrate(config, "sync")).tallies["chats"]
    assert (again.copied, again.updated, again.removed) == (0, 0, 0)


def _names(chat: Any) -> str:
    return ", ".join(sorted({m.display_name for m in chat.members}))


def _replacements(chats: Chats, rooms: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Teams id -> the last `m.replace` edit of its message."""
    found: dict[str, dict[str, Any]] = {}
    for room in rooms.values():
        for event in room_events(chats, room):
            if event["type"] == "m.room.message" and relation(event) == "m.replace":
                found[str(event["content"][TEAMS_ID])] = event
    return found


def test_kill_nine_during_a_chat(tmp_path: Path, synapse: SynapseServer) -> None:
    # two worker processes: each chat claimed once across processes, both killed with the run
    for setup in chats_setup(tmp_path, synapse, faults=Faults(slow_seconds=0.02), workers=2):
        env = {**os.environ, **setup.env}
        config = str(setup.config_path)
        command = [sys.executable, "-m", "hirondelle.cli", "-c", config, "run"]
        audit = tmp_path / "audit"
        one = next(chat for chat in setup.tenant.chats.chats if chat.chat_type == "oneOnOne")
        alias = f"#{chat_alias(setup.prefix, one.id)}:{synapse.server_name}"

        moments = [
            # the 1st kill while the one-to-one chat's messages go out, before they are settled
            lambda setup=setup, alias=alias: _said_in(setup, alias) >= 6,
            audit_reaches(audit, 25),
            audit_reaches(audit, 45),
        ]
        kills = kill_nine_at(command, env, moments, cwd=tmp_path, poll=0.02)
        assert kills >= 2
        setup.sandbox.set_faults(Faults())
        final_run(command, env, cwd=tmp_path)
        assert assert_each_message_once_in_order(setup) == 76  # no duplicate, no gap
        room = chat_rooms(setup)[one.id]  # marked direct for both puppets, once each
        first, second = (setup.member(m.user_id) for m in one.members)
        assert direct_rooms(setup, first)[second] == [room]
        assert direct_rooms(setup, second)[first] == [room]


def _said_in(chats: Chats, alias: str) -> int:
    """Messages this tool sent so far into the room of `alias` (0 before it exists)."""
    try:
        room = chats.synapse.request("GET", f"/_matrix/client/v3/directory/room/{alias}")
        return len(messages(chats, str(room["room_id"])))
    except RuntimeError:  # not created yet; or created, the alias set, not yet joined
        return 0


def test_bot_mode_names_authors_invites_real_accounts_and_redacts_what_teams_deleted(
    tmp_path: Path, synapse: SynapseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for setup in chats_setup(tmp_path, synapse, mode="bot", real_user=True, deleted="skip"):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        config = load_config(setup.config_path)
        result = asyncio.run(operations.migrate(config, "run"))
        assert result.ok and result.tallies["chats"].skipped == 1, result.as_dict()
        # all sent by the bot, but the one deleted before the run (`deleted = "skip"`)
        assert assert_each_message_once_in_order(setup) == 75
        rooms, data = chat_rooms(setup), setup.tenant.chats
        for chat in data.chats:
            said = [m for m in data.roots(chat.id) if m.deleted is None]
            for message, event in zip(said, messages(setup, rooms[chat.id]), strict=True):
                author = message.sender.display_name if message.sender else "Microsoft Teams"
                assert event["content"]["body"].startswith(f"{author} ("), event["content"]
        assert setup.real is not None  # the first user is in every chat: invited to each room
        sync = setup.synapse.request("GET", "/_matrix/client/v3/sync", setup.real.access_token)
        invites = sync["rooms"]["invite"]
        assert set(invites) == set(rooms.values())
        one = next(chat for chat in data.chats if chat.chat_type == "oneOnOne")
        for room, invite in invites.items():  # the one-to-one chat's invite says direct
            (mine,) = [e for e in invite["invite_state"]["events"]
                       if e["type"] == MEMBER and e["state_key"] == setup.real.user_id]  # fmt: skip
            assert mine["content"].get("is_direct", False) == (room == rooms[one.id]), room
        assert asyncio.run(operations.check(config))["chats"].verified
        # deleted in Teams after it was copied: its copy is redacted
        (deleted,) = setup.sandbox.mutate(Mutation(seed=4, chats_deletions=1)).chat_messages
        again = asyncio.run(operations.migrate(config, "sync"))
        assert again.ok and again.tallies["chats"].skipped == 1, again.as_dict()
        assert assert_each_message_once_in_order(setup) == 74
        report = asyncio.run(operations.check(config))["chats"]
        assert report.verified, report.differences[:5]
