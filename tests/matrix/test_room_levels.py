"""A room the target creates: the owners' power in its first power levels event, on every
room version, and no history read for it (there is none of ours yet)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hirondelle.connectors.matrix import MatrixSettings, MatrixTarget
from hirondelle.connectors.matrix_wire import MatrixConnection, path_part
from hirondelle.mappings.chat_members import ChatInfo
from hirondelle.tests.matrix.chats import chat_container, chat_owner, member
from hirondelle.tests.matrix.payloads import BASE_TS, channel, chat_payload, puppet, team
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, SynapseServer, synapse_server

APPSERVICE_BOT = "@hirondelle:localhost"


def _levels(synapse: SynapseServer, room: str) -> dict[str, Any]:
    (levels,) = [e for e in synapse.room_state(room) if e["type"] == "m.room.power_levels"]
    return levels


def _version(synapse: SynapseServer, room: str) -> str:
    path = f"/_matrix/client/v3/rooms/{room}/state/m.room.create/"
    return str(synapse.request("GET", path, SYNAPSE_AS_TOKEN).get("room_version") or "1")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every (method, path) the Matrix target sends, in order."""
    seen: list[tuple[str, str]] = []
    original = MatrixConnection.call

    def call(self: MatrixConnection, method: str, path: str, **options: Any) -> Any:
        seen.append((method, path))
        return original(self, method, path, **options)

    monkeypatch.setattr(MatrixConnection, "call", call)
    yield seen


def _owned_room(target: MatrixTarget, owner: str, team_id: str) -> str:
    target.team_owners = {team_id: [owner]}
    session = target.open(team("Ventes", team_id))
    try:
        return session.ensure_container(channel("Ventes", "Général", f"ch-{team_id}"))
    finally:
        session.close()


def test_owners_have_their_power_in_the_room_s_first_power_levels(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    owner = puppet("user-owner")
    room = _owned_room(appservice_target(), owner, "team-levels")
    levels = _levels(synapse, room)
    assert levels["content"]["users"][owner] == 100
    assert "replaces_state" not in levels.get("unsigned", {})  # no second event
    if _version(synapse, room) == "12":  # the creator holds its power outside the map
        assert APPSERVICE_BOT not in levels["content"]["users"]


def test_before_room_version_12_the_creator_keeps_its_power(
    appservice_target: Callable[..., MatrixTarget],
) -> None:
    with synapse_server(options={"default_room_version": "10"}) as older:
        settings = appservice_target().settings
        target = MatrixTarget(
            MatrixSettings(
                older.url,
                older.server_name,
                as_token_env=settings.as_token_env,
                room_alias_prefix=settings.room_alias_prefix,
            )
        )
        owner = puppet("user-owner")
        room = _owned_room(target, owner, "team-v10")
        assert _version(older, room) == "10"
        levels = _levels(older, room)
        assert levels["content"]["users"] == {APPSERVICE_BOT: 100, owner: 100}
        assert "replaces_state" not in levels.get("unsigned", {})
        state = older.request(
            "GET", f"/_matrix/client/v3/rooms/{room}/state/m.room.name/", SYNAPSE_AS_TOKEN
        )
        assert state["name"] == "Général"  # the creator could still set the room's state


def test_a_room_made_now_is_not_read_back_and_a_rerun_reads_it(
    synapse: SynapseServer,
    appservice_target: Callable[..., MatrixTarget],
    calls: list[tuple[str, str]],
) -> None:
    target = appservice_target()
    session = target.open(team("Eng", "team-fresh"))
    room = session.ensure_container(channel("Eng", "General", "ch-fresh"))
    session.put(room, chat_payload("m1", "first", sender=puppet("user-bob"), sender_name="Bob"))
    session.close()
    in_room = [path for method, path in calls if method == "GET" and path_part(room) in path]
    assert not [path for path in in_room if path.endswith(("/messages", "/joined_members"))]

    calls.clear()
    again = target.open(team("Eng", "team-fresh"))
    assert again.ensure_container(channel("Eng", "General", "ch-fresh")) == room
    payload = chat_payload("m1", "first", sender=puppet("user-bob"), sender_name="Bob")
    found = again.find(room, payload, set())
    again.close()
    assert found is not None  # the rerun read the room's history and knows m1
    assert any(path.endswith("/messages") for _, path in calls)
    events = [e for e in synapse.room_events(room) if e["type"] == "m.room.message"]
    assert len(events) == 1 and events[0]["origin_server_ts"] == BASE_TS


def test_the_room_s_own_admins_keep_their_power_beside_the_owners(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    """The mapping's override names admins of its own (a chat's creator, a team's
    owners as puppets): the owners' power is added to them, not put in their place."""
    owner, admin = puppet("user-owner"), puppet("user-admin")
    session = appservice_target().open(team("Achats", "team-admins"))
    try:
        override = {"users": {admin: 100}, "events_default": 0}
        alias = f"{session._rooms._prefix}admins-kept"
        create = {"power_level_content_override": override}
        room = session._rooms.ensure_room(alias, create, (owner,))
    finally:
        session.close()
    users = _levels(synapse, room)["content"]["users"]
    assert users[admin] == 100 and users[owner] == 100


def test_on_a_room_version_this_tool_does_not_know_a_chat_s_owners_get_their_power(
    synapse: SynapseServer,
    appservice_target: Callable[..., MatrixTarget],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server whose default room version is newer than any this tool knows (as the
    session's Synapse's is made to look): the chat's own power levels go in createRoom
    unchanged and its owners are raised after creation, not left at the default power."""
    monkeypatch.setattr("hirondelle.connectors.matrix_wire.LISTED_CREATOR_VERSIONS", frozenset())
    monkeypatch.setattr("hirondelle.connectors.matrix_wire.CREATOR_POWER_VERSIONS", frozenset())
    alice, bob = member("Alice", "owner"), member("Bob")
    info = ChatInfo("19:group-unknown-version@thread.v2", "group", "Versions", (alice, bob))
    target = appservice_target(chats={info.chat_id: info})
    session = target.open(chat_owner())
    try:
        room = session.ensure_container(chat_container(info))
    finally:
        session.close()
    levels = _levels(synapse, room)["content"]
    assert levels["users"].get(puppet(alice.user_id)) == 100
    assert puppet(bob.user_id) not in levels["users"]
    assert levels["invite"] == 0  # the chat's own levels were kept
