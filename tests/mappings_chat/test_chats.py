"""The chat mapper and the room plan on Teams chats (one-to-one, group, meeting): no
threads, quoted messages as Matrix replies with their quote kept aside, file links
through the links table, direct rooms for one-to-one chats."""

from __future__ import annotations

import json
from typing import Any

from hirondelle.mappings.chat import (
    MAX_CONTENT_BYTES,
    ChatContext,
    puppet_id,
    without_reply,
)
from hirondelle.mappings.chat_direct import (
    MemberAccounts,
    MemberNames,
    chat_alias,
    chat_room,
    with_direct_room,
)
from hirondelle.mappings.chat_members import ChatInfo
from hirondelle.tests.matrix.chats import chat_document, chat_payload, member

CONTEXT = ChatContext("localhost")
ALICE, BOB = member("Alice", "owner"), member("Bob")
DM = ChatInfo("19:dm@unq.gbl.spaces", "oneOnOne", None, (ALICE, BOB))
FILE_URL = "https://contoso-my.sharepoint.com/personal/alice/Documents/Plan.docx"


def _events(document: dict[str, Any], context: ChatContext = CONTEXT) -> list[dict[str, Any]]:
    return list(json.loads(chat_payload(document, context).content)["events"])


def test_a_chat_message_has_no_thread() -> None:
    payload = chat_payload(chat_document(DM, "5", "salut", ALICE, 1), CONTEXT)
    (event,) = json.loads(payload.content)["events"]
    assert "m.relates_to" not in event["content"]
    assert payload.attrs["root"] is None and payload.attrs["reply_to"] is None
    assert payload.attrs["sender"] == puppet_id(ALICE.user_id, CONTEXT)


def test_a_quoted_message_is_a_reply_with_its_quote_kept_aside() -> None:
    document = chat_document(DM, "6", "oui", BOB, 2, quote=("5", ALICE, "on se voit ?"))
    payload = chat_payload(document, CONTEXT)
    (event,) = json.loads(payload.content)["events"]
    content = event["content"]
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$REPLY"}}
    assert content["body"] == "oui" and "blockquote" not in content["formatted_body"]
    assert payload.attrs["reply_to"] == "5"
    fallback = payload.attrs["reply_fallback"]
    assert fallback["formatted_body"].startswith("<blockquote>")
    assert "on se voit ?" in fallback["body"] and "Alice" in fallback["body"]

    alone = without_reply(dict(content), fallback)  # the quoted message is not in the room
    assert "m.relates_to" not in alone
    assert alone["body"] == f"{fallback['body']}\n\noui"
    assert alone["formatted_body"] == fallback["formatted_body"] + content["formatted_body"]
    assert without_reply({"body": "x"}, fallback) == {"body": "x"}  # no reply: unchanged


def test_only_the_first_part_of_a_long_reply_is_the_reply() -> None:
    text = "mot " * (MAX_CONTENT_BYTES // 3)
    document = chat_document(DM, "7", text, BOB, 3, quote=("5", ALICE, "question"))
    events = _events(document)
    assert len(events) > 1
    assert events[0]["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": "$REPLY"}}
    assert all("m.relates_to" not in e["content"] for e in events[1:])


def test_a_quote_in_a_channel_post_stays_a_quote() -> None:
    document = chat_document(DM, "8", "vu", BOB, 4, quote=("5", ALICE, "annonce"))
    del document["chat"]
    document["team"], document["channel"] = {"id": "t"}, {"id": "c"}
    (event,) = _events(document)
    assert "m.relates_to" not in event["content"]
    assert "<blockquote>" in event["content"]["formatted_body"]


def test_file_links_go_to_the_migrated_copy_or_keep_the_original() -> None:
    attachment = {
        "id": "f1", "contentType": "reference", "contentUrl": FILE_URL,
        "content": None, "name": "Plan.docx",
    }  # fmt: skip
    document = chat_document(DM, "9", "le plan", ALICE, 5, attachments=[attachment])
    migrated = ChatContext("localhost", links={FILE_URL: "https://cloud.example.org/f/Plan.docx"})
    (event,) = _events(document, migrated)
    assert 'href="https://cloud.example.org/f/Plan.docx"' in event["content"]["formatted_body"]
    (kept,) = _events(document)
    assert f'href="{FILE_URL}"' in kept["content"]["formatted_body"]
    assert "(file not migrated)" in kept["content"]["formatted_body"]


def test_bot_mode_prefixes_the_author_of_a_chat_message() -> None:
    bot = ChatContext("localhost", mode="bot")
    (event,) = _events(chat_document(DM, "10", "salut", ALICE, 6), bot)
    assert event["content"]["body"].startswith("Alice (2021-03-02 09:36 UTC):")


# -- the room plan ----------------------------------------------------------------------------


def test_one_to_one_chat_plans_a_direct_room_marked_for_both_sides() -> None:
    room = chat_room(DM, CONTEXT, "m365_", "@hirondelle:localhost")
    alice, bob = puppet_id(ALICE.user_id, CONTEXT), puppet_id(BOB.user_id, CONTEXT)
    assert room.is_direct and room.create["is_direct"] is True
    assert sorted(room.create["invite"]) == sorted([alice, bob])
    assert room.direct == {alice: bob, bob: alice}
    assert "name" not in room.create
    assert room.owners == (alice,)
    assert room.create["power_level_content_override"]["invite"] == 50
    assert room.alias == room.create["room_alias_name"] == chat_alias("m365_", DM.chat_id)


def test_a_new_topic_keeps_the_alias() -> None:
    before = ChatInfo("19:g@thread.v2", "group", "Ancien nom", (ALICE, BOB))
    after = ChatInfo("19:g@thread.v2", "group", "Nouveau nom", (ALICE, BOB))
    assert (
        chat_room(before, CONTEXT, "p_", "@me:x").alias
        == chat_room(after, CONTEXT, "p_", "@me:x").alias
    )


def test_a_meeting_chat_without_topic_is_named_by_its_members() -> None:
    gone = member("Zoé", left=True)
    info = ChatInfo("19:meeting_x@thread.v2", "meeting", None, (BOB, ALICE, gone))
    room = chat_room(info, CONTEXT, "m365_", "@hirondelle:localhost")
    assert room.create["name"] == "Alice, Bob"
    assert not room.is_direct and room.direct == {}
    assert puppet_id(gone.user_id, CONTEXT) not in room.members


def test_bot_mode_invites_only_members_with_a_real_account() -> None:
    bot = ChatContext("localhost", mode="bot", users={BOB.user_id: "@bob:localhost"})
    room = chat_room(DM, bot, "m365_", "@bot:localhost")
    assert room.members == {"@bob:localhost": "Bob"}
    assert room.direct == {}  # one side only: no pair to mark


def test_m_direct_keeps_what_is_there_and_adds_once() -> None:
    current = {"@x:localhost": ["!a"], "@bob:localhost": ["!old"]}
    updated = with_direct_room(current, "@bob:localhost", "!new")
    assert updated == {"@x:localhost": ["!a"], "@bob:localhost": ["!old", "!new"]}
    assert with_direct_room(updated, "@bob:localhost", "!new") is None


def test_member_accounts_name_real_users_by_teams_id_through_the_directory() -> None:
    upns: dict[str, str] = {}
    accounts = MemberAccounts({"bob.martin@contoso.test": "@bob:localhost"}, upns)
    assert accounts.get(BOB.user_id) is None  # the directory is not read yet
    # the source reads /users: Bob's UPN is not his chat member address (bob@example.test)
    upns.update({BOB.user_id: "Bob.Martin@contoso.test", ALICE.user_id: "alice@contoso.test"})
    assert BOB.email.lower() != "bob.martin@contoso.test"
    assert accounts[BOB.user_id] == "@bob:localhost"
    assert accounts["bob.martin@contoso.test"] == "@bob:localhost"
    assert accounts.get(ALICE.user_id) is None  # not in users.csv: a puppet
    context = ChatContext("localhost", users=accounts)
    room = chat_room(DM, context, "m365_", "@hirondelle:localhost")
    assert room.direct == {
        "@bob:localhost": puppet_id(ALICE.user_id, CONTEXT),
        puppet_id(ALICE.user_id, CONTEXT): "@bob:localhost",
    }
    payload = chat_payload(chat_document(DM, "11", "coucou", BOB, 7), context)
    assert payload.attrs["sender"] == "@bob:localhost"  # the mapper agrees


def test_a_chat_says_who_joined_it_by_the_members_names() -> None:
    # Graph leaves displayName null in system events' details; the chat's members name them
    document = chat_document(DM, "12", "", ALICE, 8)
    document["message"].update(
        messageType="systemEventMessage",
        body={"contentType": "html", "content": "<systemEventMessage/>"},
        eventDetail={
            "@odata.type": "#microsoft.graph.membersAddedEventMessageDetail",
            "members": [{"id": BOB.user_id, "displayName": None}],
            "initiator": {"user": {"id": ALICE.user_id, "displayName": None}},
        },
        **{"from": None},
    )
    chats: dict[str, ChatInfo] = {}
    context = ChatContext("localhost", names=MemberNames(chats))
    chats[DM.chat_id] = DM  # listed after the context was made, as the source does
    (event,) = _events(document, context)
    assert event["content"]["body"] == "Alice added Bob to the chat"
    assert event["content"]["msgtype"] == "m.notice"
