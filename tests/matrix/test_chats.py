"""Teams chats into Matrix rooms (application service) against a real Synapse: direct rooms
marked for both sides, named group rooms, members and power levels, a room found again
after a crash, messages in order with their times, quoted replies, edits and deletions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hirondelle.connectors.matrix import MatrixTarget
from hirondelle.mappings.chat_direct import CHAT_STATE, chat_room
from hirondelle.mappings.chat_members import ChatInfo
from hirondelle.tests.matrix.chats import (
    BASE,
    alice_and_bob,
    chat_container,
    chat_document,
    chat_owner,
    chat_payload,
    member,
)
from hirondelle.tests.matrix.payloads import TEAMS_KEY, puppet
from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, MatrixAccount, SynapseServer

MakeTarget = Callable[..., MatrixTarget]
CLIENT = "/_matrix/client/v3"


def _state(synapse: SynapseServer, room: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in synapse.room_state(room) if e["type"] == kind]


def _membership(synapse: SynapseServer, room: str) -> dict[str, str]:
    return {
        e["state_key"]: e["content"]["membership"] for e in _state(synapse, room, "m.room.member")
    }


def _invites(synapse: SynapseServer, room: str) -> dict[str, dict[str, Any]]:
    """The content of each user's invite in the room's timeline."""
    events: list[dict[str, Any]] = synapse.room_events(room)
    return {
        e["state_key"]: e["content"]
        for e in events
        if e["type"] == "m.room.member" and e["content"]["membership"] == "invite"
    }


def _direct(synapse: SynapseServer, user: str, token: str = SYNAPSE_AS_TOKEN) -> dict[str, Any]:
    path = f"{CLIENT}/user/{user}/account_data/m.direct"
    if token == SYNAPSE_AS_TOKEN:
        path += f"?user_id={user}"
    try:
        return dict(synapse.request("GET", path, token))
    except RuntimeError as error:
        assert "M_NOT_FOUND" in str(error)
        return {}


def _messages(synapse: SynapseServer, room: str) -> list[dict[str, Any]]:
    return [e for e in synapse.room_events(room) if e["type"] == "m.room.message"]


def test_one_to_one_chat_is_a_direct_room_for_both_sides_with_replies(
    synapse: SynapseServer, appservice_target: MakeTarget
) -> None:
    carol = synapse.new_user()  # a real account the application service may act for
    alice, carol_member = member("Alice", "owner"), member("Carol")
    info = ChatInfo("19:dm-alice-carol@unq.gbl.spaces", "oneOnOne", None, (alice, carol_member))
    users = {carol_member.user_id: carol.user_id}
    target = appservice_target(chats={info.chat_id: info}, users=users, masquerade_real_users=True)
    other_dm = f"@{'someone'}:{synapse.server_name}"
    path = f"{CLIENT}/user/{carol.user_id}/account_data/m.direct"
    synapse.request("PUT", path, carol.access_token, {other_dm: ["!older:localhost"]})

    session = target.open(chat_owner())
    room = session.ensure_container(chat_container(info))
    assert session.ensure_container(chat_container(info)) == room
    again = target.open(chat_owner("carol@example.test"))  # another member's run
    assert again.ensure_container(chat_container(info, "carol@example.test")) == room

    alice_id = puppet(alice.user_id)
    assert _direct(synapse, alice_id) == {carol.user_id: [room]}
    assert _direct(synapse, carol.user_id, carol.access_token) == {
        other_dm: ["!older:localhost"],  # what the user had is kept
        alice_id: [room],
    }
    invites = _invites(synapse, room)
    assert invites[alice_id]["is_direct"] is True and invites[carol.user_id]["is_direct"] is True
    assert _membership(synapse, room)[alice_id] == "join"
    assert not _state(synapse, room, "m.room.name")  # each side's client names it
    (chat_state,) = _state(synapse, room, CHAT_STATE)
    assert chat_state["content"] == {"chat_id": info.chat_id, "kind": "oneOnOne"}
    (levels,) = _state(synapse, room, "m.room.power_levels")
    assert levels["content"]["users"].get(alice_id) == 100  # a Teams owner of the chat
    assert carol.user_id not in levels["content"]["users"]

    context = target.chat_context
    first = chat_document(info, "1001", "Bonjour Carol", alice, 1)
    answer = chat_document(
        info, "1002", "Bonjour !", carol_member, 2, quote=("1001", alice, "Bonjour Carol")
    )
    orphan = chat_document(
        info, "1003", "Et ceci ?", alice, 3, quote=("0999", carol_member, "vieux message")
    )
    refs = [session.put(room, chat_payload(d, context)) for d in (first, answer, orphan)]

    messages = _messages(synapse, room)
    assert [e["event_id"] for e in messages] == [ref.ref for ref in refs]
    assert [e["sender"] for e in messages] == [alice_id, carol.user_id, alice_id]
    start = int(BASE.timestamp() * 1000)
    assert [e["origin_server_ts"] for e in messages] == [start + m * 60_000 for m in (1, 2, 3)]
    assert messages[1]["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": refs[0].ref}}
    assert messages[1]["content"]["body"] == "Bonjour !"  # no fallback quote in a reply
    assert "m.relates_to" not in messages[2]["content"]  # the quoted message is not here
    assert messages[2]["content"]["body"].startswith("Carol\nvieux message")
    assert "<blockquote>" in messages[2]["content"]["formatted_body"]


def test_group_chat_is_a_private_room_named_by_topic_with_members_and_levels(
    synapse: SynapseServer, appservice_target: MakeTarget
) -> None:
    alice, bob = member("Alice", "owner"), member("Bob")
    guest, gone = member("Dave", "guest"), member("Erin", left=True)
    info = ChatInfo(
        "19:group-1@thread.v2", "group", "Projet Hirondelle ☀", (alice, bob, guest, gone)
    )
    target = appservice_target(chats={info.chat_id: info})
    session = target.open(chat_owner())
    room = session.ensure_container(chat_container(info))

    (name,) = _state(synapse, room, "m.room.name")
    assert name["content"]["name"] == "Projet Hirondelle ☀"
    members = _membership(synapse, room)
    ids = {m.name: puppet(m.user_id) for m in (alice, bob, guest, gone)}
    assert {members.get(ids[n]) for n in ("Alice", "Bob", "Dave")} == {"join"}
    assert ids["Erin"] not in members  # left the chat in Teams: not invited
    assert all("is_direct" not in invite for invite in _invites(synapse, room).values())
    (levels,) = _state(synapse, room, "m.room.power_levels")
    assert levels["content"]["users"].get(ids["Alice"]) == 100
    assert (
        ids["Bob"] not in levels["content"]["users"]
        and ids["Dave"] not in levels["content"]["users"]
    )
    assert levels["content"]["invite"] == 0 and levels["content"]["events_default"] == 0
    (rule,) = _state(synapse, room, "m.room.join_rules")
    assert rule["content"]["join_rule"] == "invite"
    assert _direct(synapse, ids["Alice"]) == {}  # a group chat is no direct room
    profile = synapse.request("GET", f"{CLIENT}/profile/{ids['Bob']}")
    assert profile["displayname"] == "Bob"
    # what Erin said before she left is hers: she joins to say it, and leaves at the end
    said = chat_document(info, "1001", "Je quitte le projet", gone, 1, mentions=(gone,))
    session.put(room, chat_payload(said, target.chat_context))
    assert _membership(synapse, room)[ids["Erin"]] == "join"
    session.close()
    assert _membership(synapse, room)[ids["Erin"]] == "leave"

    renamed = ChatInfo(info.chat_id, "group", "Hirondelle, phase 2", info.members)
    target.chats = {info.chat_id: renamed}  # renamed in Teams before the next run
    assert target.open(chat_owner()).ensure_container(chat_container(renamed)) == room
    (name,) = _state(synapse, room, "m.room.name")
    assert name["content"]["name"] == "Hirondelle, phase 2"


def test_a_crash_after_creating_the_room_finds_it_and_completes_it(
    synapse: SynapseServer, appservice_target: MakeTarget
) -> None:
    info = alice_and_bob("19:dm-alice-bob@unq.gbl.spaces", "oneOnOne")
    alice, bob = info.members
    target = appservice_target(chats={info.chat_id: info})
    # what the run that died left: the room with its alias, no one invited yet
    me = synapse.request("GET", f"{CLIENT}/account/whoami", SYNAPSE_AS_TOKEN)["user_id"]
    plan = chat_room(info, target.chat_context, target.settings.room_alias_prefix, me)
    body = {**plan.create, "invite": []}
    left = synapse.request("POST", f"{CLIENT}/createRoom", SYNAPSE_AS_TOKEN, body)["room_id"]

    session = target.open(chat_owner())
    room = session.ensure_container(chat_container(info))
    assert room == left  # found by its alias, not made twice
    ids = [puppet(alice.user_id), puppet(bob.user_id)]
    invites = _invites(synapse, room)
    assert all(invites[user]["is_direct"] is True for user in ids)
    assert all(_membership(synapse, room)[user] == "join" for user in ids)
    assert _direct(synapse, ids[0]) == {ids[1]: [room]}
    assert _direct(synapse, ids[1]) == {ids[0]: [room]}
    (levels,) = _state(synapse, room, "m.room.power_levels")
    assert all(levels["content"]["users"].get(user) == 100 for user in ids)


def test_edits_and_deletions_in_a_chat(
    synapse: SynapseServer, appservice_target: MakeTarget
) -> None:
    info = alice_and_bob("19:group-edits@thread.v2", "group")
    alice, bob = info.members
    target = appservice_target(chats={info.chat_id: info})
    session = target.open(chat_owner())
    room = session.ensure_container(chat_container(info))
    context = target.chat_context
    ref = session.put(room, chat_payload(chat_document(info, "2001", "brouillon", bob, 5), context))
    edited = chat_document(info, "2001", "version finale", bob, 5, edited=True)
    assert session.update(ref, chat_payload(edited, context)) == ref
    session.remove(ref)

    messages = _messages(synapse, room)
    edit = next(e for e in messages if "m.new_content" in e["content"])
    assert edit["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": ref.ref}
    assert "version finale" in edit["content"]["m.new_content"]["body"]
    assert edit["sender"] == puppet(bob.user_id)
    (original,) = [e for e in messages if e["event_id"] == ref.ref]
    assert TEAMS_KEY not in original["content"]  # redacted
    assert session.listing(room) == []


def test_bot_mode_direct_room_invites_the_real_accounts_once_with_is_direct(
    synapse: SynapseServer, bot_target: MakeTarget, bot_account: MatrixAccount
) -> None:
    dave, erin = synapse.new_user(), synapse.new_user()
    dave_member, erin_member = member("Dave", "owner"), member("Erin", "owner")
    info = ChatInfo("19:dm-dave-erin@unq.gbl.spaces", "oneOnOne", None, (dave_member, erin_member))
    users = {dave_member.user_id: dave.user_id, erin_member.user_id: erin.user_id}
    target = bot_target(chats={info.chat_id: info}, users=users)
    session = target.open(chat_owner("dave@example.test"))
    room = session.ensure_container(chat_container(info, "dave@example.test"))
    document = chat_document(info, "3001", "Bonjour", dave_member, 7, mentions=(erin_member,))
    session.put(room, chat_payload(document, target.chat_context))

    token = bot_account.access_token
    state: list[dict[str, Any]] = synapse.room_state(room, token)
    current = {e["state_key"]: e["content"] for e in state if e["type"] == "m.room.member"}
    for user in (dave.user_id, erin.user_id):  # still the invite that says direct
        assert (current[user]["membership"], current[user]["is_direct"]) == ("invite", True)
    events: list[dict[str, Any]] = synapse.room_events(room, token)
    (message,) = [e for e in events if e["type"] == "m.room.message"]
    assert message["content"]["m.mentions"] == {"user_ids": [erin.user_id]}
    assert message["sender"] == bot_account.user_id
    assert message["content"]["body"].startswith("Dave (2021-03-02 09:37 UTC):")


def test_parallel_sessions_marking_one_puppets_direct_rooms_lose_none(
    synapse: SynapseServer, appservice_target: MakeTarget
) -> None:
    """Six one-to-one chats of one person, each held by its other member's session, made at
    once: that person's `m.direct` lists all six (a read-merge-write each would lose some)."""
    import threading

    shared = member("Xavier")  # ids of their own: the homeserver outlives the test
    chats = [
        ChatInfo(f"19:dm-{shared.user_id}-{n}@unq", "oneOnOne", None, (shared, member(f"P{n}")))
        for n in range(6)
    ]
    target = appservice_target(chats={c.chat_id: c for c in chats})
    start = threading.Barrier(len(chats))
    rooms: dict[str, str] = {}

    def make(info: ChatInfo) -> None:
        owner = f"{info.members[1].name.lower()}@example.test"
        session = target.open(chat_owner(owner))
        start.wait()
        rooms[info.chat_id] = session.ensure_container(chat_container(info, owner))

    threads = [threading.Thread(target=make, args=(info,)) for info in chats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(rooms) == len(chats)
    x = puppet(shared.user_id, server=synapse.server_name)
    listed = {room for entries in _direct(synapse, x).values() for room in entries}
    assert listed == set(rooms.values())
