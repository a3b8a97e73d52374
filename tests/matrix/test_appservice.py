"""The Matrix target in application-service mode against a real Synapse."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from hirondelle.connectors.matrix import MatrixTarget
from hirondelle.tests.matrix.payloads import (
    BASE_TS,
    TEAMS_KEY,
    channel,
    chat_payload,
    puppet,
    team,
)
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, SynapseServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _messages(synapse: SynapseServer, room: str) -> list[dict[str, Any]]:
    return [e for e in synapse.room_events(room) if e["type"] in ("m.room.message", "m.reaction")]


def _state(synapse: SynapseServer, room: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in synapse.room_state(room) if e["type"] == kind]


def test_space_and_room_are_created_once_and_linked(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    owner = puppet("user-owner")
    target = appservice_target()
    target.team_owners = {"team-1": [owner]}
    general = channel("Ventes Équipe", "Général", "ch-1")
    session = target.open(team("Ventes Équipe", "team-1"))
    room = session.ensure_container(general)
    assert session.ensure_container(general) == room
    session.close()

    again = target.open(team("Ventes Équipe", "team-1"))  # a new run finds both by alias
    assert again.ensure_container(general) == room
    other = again.ensure_container(channel("Ventes Équipe", "Random", "ch-2"))
    assert other != room

    (parent,) = _state(synapse, room, "m.space.parent")
    space = parent["state_key"]
    children = {e["state_key"] for e in _state(synapse, space, "m.space.child")}
    assert children == {room, other}
    (create,) = _state(synapse, space, "m.room.create")
    assert create["content"]["type"] == "m.space"
    (name,) = _state(synapse, room, "m.room.name")
    assert name["content"]["name"] == "Général"
    (levels,) = _state(synapse, room, "m.room.power_levels")
    assert levels["content"]["users"][owner] == 100
    assert not _state(synapse, room, "m.room.encryption")
    joined = synapse.request("GET", "/_matrix/client/v3/joined_rooms", SYNAPSE_AS_TOKEN)
    assert sum(1 for r in joined["joined_rooms"] if r in (room, other, space)) == 3


def test_messages_keep_order_time_threads_and_reactions(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    session = appservice_target().open(team("Eng", "team-eng"))
    room = session.ensure_container(channel("Eng", "General", "ch-eng"))
    bob = puppet("user-bob")
    root = session.put(room, chat_payload("r1", "first", reactions=[("👍", bob), ("❤️", bob)]))
    reply = session.put(
        room,
        chat_payload("r1/a", "answer", root="r1", sender=bob, sender_name="Bob", ts=BASE_TS + 1),
    )
    second = session.put(room, chat_payload("r2", "second", ts=BASE_TS + 2))

    events = _messages(synapse, room)
    assert [e["content"][TEAMS_KEY] for e in events] == ["r1", "r1", "r1", "r1/a", "r2"]
    messages = [e for e in events if e["type"] == "m.room.message"]
    assert [e["event_id"] for e in messages] == [root.ref, reply.ref, second.ref]
    assert [e["origin_server_ts"] for e in messages] == [BASE_TS, BASE_TS + 1, BASE_TS + 2]
    assert messages[0]["sender"] == puppet("user-alice")
    assert messages[1]["sender"] == bob
    relation = messages[1]["content"]["m.relates_to"]
    assert relation["rel_type"] == "m.thread" and relation["event_id"] == root.ref
    assert relation["m.in_reply_to"] == {"event_id": root.ref}
    reactions = [e for e in events if e["type"] == "m.reaction"]
    assert {e["content"]["m.relates_to"]["key"] for e in reactions} == {"👍", "❤️"}
    assert all(e["content"]["m.relates_to"]["event_id"] == root.ref for e in reactions)
    assert {e["sender"] for e in reactions} == {bob}
    profile = synapse.request("GET", f"/_matrix/client/v3/profile/{bob}")
    assert profile["displayname"] == "Bob"


def test_inline_image_is_uploaded_and_referenced(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    session = appservice_target().open(team("Eng", "team-eng"))
    room = session.ensure_container(channel("Eng", "Pictures", "ch-pic"))
    placeholder = "mxc://hirondelle/hosted-1"
    media = [
        {"placeholder": placeholder, "content_type": "image/png", "data": PNG, "name": "a.png"}
    ]
    html = f'<p>look</p><img src="{placeholder}" alt="a">'
    session.put(room, chat_payload("img1", "look", formatted=html, media=media))

    (event,) = _messages(synapse, room)
    formatted = event["content"]["formatted_body"]
    assert placeholder not in formatted
    mxc = formatted.split('src="')[1].split('"')[0]
    assert mxc.startswith("mxc://localhost/")
    server, media_id = mxc.removeprefix("mxc://").split("/")
    token = synapse.new_user().access_token
    download = f"/_matrix/client/v1/media/download/{server}/{media_id}"
    import http.client

    conn = http.client.HTTPConnection(synapse.host, synapse.port, timeout=10)
    conn.request("GET", download, headers={"Authorization": f"Bearer {token}"})
    assert conn.getresponse().read() == PNG
    conn.close()


def test_find_after_a_new_session_and_resume_without_duplicates(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    target = appservice_target()
    session = target.open(team("Ops", "team-ops"))
    room = session.ensure_container(channel("Ops", "General", "ch-ops"))
    full = chat_payload("m1", "hello", reactions=["👍"])
    ref = session.put(room, full)
    half = chat_payload("m2", "cut short")  # as if the crash came before its reaction
    session.put(room, half)
    session.close()

    fresh = target.open(team("Ops", "team-ops"))  # nothing in memory: the history scan answers
    assert fresh.find(room, full, frozenset()) == ref
    assert fresh.find(room, full, frozenset({ref.ref})) is None
    assert fresh.find(room, chat_payload("unknown", "x"), frozenset()) is None
    whole = chat_payload("m2", "cut short", reactions=["😆"])
    assert fresh.find(room, whole, frozenset()) is None  # its reaction is missing
    second = fresh.put(room, whole)  # sends only what is missing
    assert fresh.put(room, whole) == second
    ids = [e["content"][TEAMS_KEY] for e in _messages(synapse, room)]
    assert ids == ["m1", "m1", "m2", "m2"]
    listing = {entry.fingerprint: entry.ref for entry in fresh.listing(room)}
    assert listing == {"teams:m1": ref, "teams:m2": second}


def test_reply_to_a_root_of_an_earlier_run_and_a_missing_root(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    target = appservice_target()
    first = target.open(team("Ops", "team-ops"))
    room = first.ensure_container(channel("Ops", "Threads", "ch-threads"))
    root = first.put(room, chat_payload("t1", "root"))
    first.close()
    later = target.open(team("Ops", "team-ops"))
    later.put(room, chat_payload("t1/x", "late reply", root="t1", ts=BASE_TS + 5))
    later.put(room, chat_payload("gone/y", "orphan", root="gone", ts=BASE_TS + 6))
    events = _messages(synapse, room)
    assert events[1]["content"]["m.relates_to"]["event_id"] == root.ref
    assert "m.relates_to" not in events[2]["content"]


def test_update_edits_and_syncs_reactions_remove_redacts(
    synapse: SynapseServer, appservice_target: Callable[..., MatrixTarget]
) -> None:
    session = appservice_target().open(team("Ops", "team-ops"))
    room = session.ensure_container(channel("Ops", "Edits", "ch-edits"))
    ref = session.put(room, chat_payload("e1", "draft", reactions=["👍"]))
    session.update(ref, chat_payload("e1", "final (edited)", reactions=["❤️"]))

    events = _messages(synapse, room)
    edit = next(e for e in events if "m.new_content" in e["content"])
    assert edit["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": ref.ref}
    assert edit["content"]["m.new_content"]["body"] == "final (edited)"
    assert edit["sender"] == puppet("user-alice")  # edits come from the original sender
    live = [e for e in events if e["type"] == "m.reaction" and e["content"]]
    assert [e["content"]["m.relates_to"]["key"] for e in live] == ["❤️"]

    session.remove(ref)
    session.remove(ref)  # already gone: fine
    (redacted,) = [e for e in _messages(synapse, room) if e["event_id"] == ref.ref]
    assert TEAMS_KEY not in redacted["content"]
    assert session.listing(room) == []
