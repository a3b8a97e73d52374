"""The chat mapper against chatMessage JSON modelled on Microsoft's documented examples.

The fixtures (data/messages.json) follow the responses shown on the Microsoft Graph pages
named in its "_sources" key: list channel messages, system messages, list replies,
chatMessageAttachment and chatMessageReaction.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from hirondelle.mappings.chat import (
    MAX_CONTENT_BYTES,
    PART_KEY,
    TEAMS_ID_KEY,
    ChatContext,
    map_chat_message,
    puppet_id,
)
from hirondelle.mappings.chat_rooms import room_settings
from hirondelle.mappings.chat_system import system_sentence
from hirondelle.migrator.errors import ConfigError, SkipItem
from hirondelle.migrator.model import Item, Payload

FIXTURES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "messages.json").read_text(encoding="utf-8")
)
ROBIN = "8ea0e38b-efb3-4757-924a-5f94061cf8c2"
JANE = "ef1c916a-3135-4417-ba27-8eb7bd084193"
CONTEXT = ChatContext("localhost", users={JANE: "@jane:localhost"})


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(FIXTURES[name])


def item_for(document: dict[str, Any], **meta: Any) -> Item:
    message = document["message"]
    root = message.get("replyToId")
    source_id = f"{root}/{message['id']}" if root else message["id"]
    base = {"rootId": root or message["id"], "deleted": bool(message.get("deletedDateTime"))}
    return Item(source_id, message.get("etag") or "1", {**base, **meta})


def mapped(document: dict[str, Any], context: ChatContext = CONTEXT) -> Payload:
    return map_chat_message(item_for(document), json.dumps(document).encode(), context)


def events(payload: Payload) -> list[dict[str, Any]]:
    return json.loads(payload.content)["events"]


def main_content(payload: Payload) -> dict[str, Any]:
    return events(payload)[0]["content"]


def test_puppet_id_is_prefix_plus_digest_of_the_teams_id() -> None:
    digest = hashlib.sha256(ROBIN.encode()).hexdigest()[:16]
    assert puppet_id(ROBIN, CONTEXT) == f"@_m365_{digest}:localhost"


def test_context_names_the_setting_it_refuses() -> None:
    with pytest.raises(ConfigError, match="targets.chat.deleted"):
        ChatContext("localhost", deleted="drop")
    with pytest.raises(ConfigError, match="targets.chat.mode"):
        ChatContext("localhost", mode="irc")


def test_root_post_attributes_follow_the_contract() -> None:
    payload = mapped(fixture("mention"))
    assert payload.fingerprint == "teams:1616965872395"
    assert payload.attrs["sender"] == puppet_id(ROBIN, CONTEXT)
    assert payload.attrs["sender_name"] == "Robin Kline"
    assert payload.attrs["ts"] == 1616965872395  # 2021-03-28T21:11:12.395Z
    assert payload.attrs["root"] is None
    digest = hashlib.sha256(b"1616965872395").hexdigest()[:32]
    assert payload.attrs["txn_id"] == f"hirondelle-{digest}"
    assert payload.attrs["media"] == [] and payload.attrs["edited"] is False
    content = main_content(payload)
    assert content[TEAMS_ID_KEY] == "1616965872395"
    assert "m.relates_to" not in content


def test_mention_of_a_mapped_user_becomes_a_pill_and_m_mentions() -> None:
    content = main_content(mapped(fixture("mention")))
    assert content["formatted_body"] == (
        'Hello World <a href="https://matrix.to/#/@jane:localhost">Jane Smith</a>'
    )
    assert content["body"] == "Hello World Jane Smith"
    assert content["m.mentions"] == {"user_ids": ["@jane:localhost"]}


def test_mention_of_an_unmapped_user_pills_its_puppet() -> None:
    content = main_content(mapped(fixture("mention"), ChatContext("example.org")))
    puppet = puppet_id(JANE, ChatContext("example.org"))
    assert f'href="https://matrix.to/#/{puppet}"' in content["formatted_body"]
    assert content["m.mentions"] == {"user_ids": [puppet]}


def test_inline_images_become_placeholders_with_their_bytes() -> None:
    document = fixture("inline_images")
    payload = mapped(document)
    html = main_content(payload)["formatted_body"]
    hosted = document["hostedContents"]
    media = payload.attrs["media"]
    assert [entry["placeholder"] for entry in media] == [
        f"mxc://hirondelle/{hosted_id}" for hosted_id in hosted
    ]
    for entry, (hosted_id, hosted_content) in zip(media, hosted.items(), strict=True):
        assert entry["data"] == base64.b64decode(hosted_content["base64"])
        assert entry["content_type"] == "image/png" and entry["name"].endswith(".png")
        assert f'src="mxc://hirondelle/{hosted_id}"' in html
    assert "graph.microsoft.com" not in html and "style" not in html
    assert 'width="131"' in html and 'height="145"' in html


def test_image_whose_hosted_content_is_missing_is_not_linked_to_graph() -> None:
    document = fixture("inline_images")
    document["hostedContents"] = {}
    payload = mapped(document)
    assert payload.attrs["media"] == []
    html = main_content(payload)["formatted_body"]
    assert "<img" not in html and "graph.microsoft.com" not in html
    assert "not available" in html


def test_reply_joins_the_root_thread_with_a_reply_fallback() -> None:
    payload = mapped(fixture("reply_with_reactions"))
    assert payload.source_id == "1616965872395/1616989510408"
    assert payload.attrs["root"] == "1616965872395"
    assert main_content(payload)["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$ROOT",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$ROOT"},
    }
    assert main_content(payload)["body"] == "Bien reçu, merci ! 🎉"


def test_reactions_become_annotations_with_standard_emoji() -> None:
    payload = mapped(fixture("reply_with_reactions"))
    reactions = [e for e in events(payload) if e["type"] == "m.reaction"]
    keys = [(e["sender"], e["content"]["m.relates_to"]["key"]) for e in reactions]
    other = puppet_id("9ee3dc1b-6a70-4582-8bc5-5dd35336b6c3", CONTEXT)
    assert keys == [
        ("@jane:localhost", "👍"),
        ("@jane:localhost", "❤️"),
        (other, "👍"),
        ("@jane:localhost", "😆"),
        ("@jane:localhost", "💯"),
        ("@jane:localhost", ":hirondelle:"),
    ]
    for reaction in reactions:
        relates = reaction["content"]["m.relates_to"]
        assert relates["rel_type"] == "m.annotation" and relates["event_id"] == "$SELF"
        assert reaction["content"][TEAMS_ID_KEY] == payload.source_id
    assert reactions[0]["ts"] == 1616990400000  # 2021-03-29T04:00:00Z


def test_bot_mode_sends_each_emoji_once_and_prefixes_the_author() -> None:
    bot = ChatContext("localhost", mode="bot")
    payload = mapped(fixture("reply_with_reactions"), bot)
    keys = [e["content"]["m.relates_to"]["key"] for e in events(payload)[1:]]
    assert keys == ["👍", "❤️", "😆", "💯", ":hirondelle:"]
    assert all("sender" not in e for e in events(payload))
    content = main_content(payload)
    assert content["body"].startswith("Robin Kline (2021-03-29 03:45 UTC):")
    assert content["formatted_body"].startswith("<p><strong>Robin Kline</strong> (2021-03-29")


def test_reference_attachments_point_at_migrated_files_or_carry_a_note() -> None:
    document = fixture("reference_attachment")
    site = "https://contoso.sharepoint.com/sites/ProjetHirondelle/Shared Documents/General"
    links = {
        f"{site}/compte-rendu.docx": "https://cloud.example.org/f/101",
        f"{site}/budget.xlsx": "https://cloud.example.org/f/102",
    }
    content = main_content(mapped(document, ChatContext("localhost", links=links)))
    html = content["formatted_body"]
    assert '<a href="https://cloud.example.org/f/101">compte-rendu.docx</a>' in html
    assert '<a href="https://cloud.example.org/f/102">budget</a>' in html  # %20 and ?web=1
    assert f'<a href="{site}/planning.pptx">planning.pptx</a> (file not migrated)' in html
    assert html.index("compte-rendu") < html.index("budget") < html.index("planning")
    assert "https://cloud.example.org/f/101" in content["body"]


def test_a_file_only_archived_keeps_its_original_link() -> None:
    """Files into a local archive have a `file://` address no chat client opens."""
    document = fixture("reference_attachment")
    site = "https://contoso.sharepoint.com/sites/ProjetHirondelle/Shared Documents/General"
    links = {f"{site}/compte-rendu.docx": "file:///srv/archive/alice/compte-rendu.docx"}
    html = main_content(mapped(document, ChatContext("localhost", links=links)))["formatted_body"]
    assert f'<a href="{site}/compte-rendu.docx">compte-rendu.docx</a>' in html
    assert "file:///" not in html and "<a>" not in html


def test_code_snippet_and_code_block_become_pre_code() -> None:
    html = main_content(mapped(fixture("code_snippet")))["formatted_body"]
    assert '<pre><code class="language-python">def migrate(mailbox):\n' in html
    assert "m &lt; 3" in html
    assert '<pre><code class="language-javascript">const x = 1;<br>alert(x);</code></pre>' in html


def test_adaptive_card_from_a_bot_reads_as_text_and_links() -> None:
    payload = mapped(fixture("adaptive_card"))
    assert payload.attrs["sender_name"] == "Suivi des tickets"
    assert payload.attrs["sender"] == puppet_id("3a7e7c52-5d7b-4f8c-b0c2-5c1e0f4b5a6d", CONTEXT)
    content = main_content(payload)
    assert "Ticket #42 fermé" in content["body"]
    assert "Priorité Haute" in content["body"]
    assert (
        '<a href="https://tickets.example.org/42">Voir le ticket</a>' in content["formatted_body"]
    )
    assert "<img" not in content["formatted_body"]


def test_edited_message_keeps_its_final_text_marked_edited() -> None:
    payload = mapped(fixture("edited"))
    content = main_content(payload)
    assert payload.attrs["edited"] is True
    assert content["body"] == "Réunion déplacée à 15 h (edited)"
    assert "<strong>15 h</strong>" in content["formatted_body"]


def test_deleted_message_is_a_notice_or_skipped() -> None:
    document = fixture("deleted")
    content = main_content(mapped(document))
    assert content["msgtype"] == "m.notice" and content["body"] == "This message was deleted"
    with pytest.raises(SkipItem, match="deleted"):
        mapped(document, ChatContext("localhost", deleted="skip"))


@pytest.mark.parametrize(
    ("name", "names", "sentence"),
    [
        (
            "members_added",
            {
                "9ee3dc1b-6a70-4582-8bc5-5dd35336b6c3": "Alice",
                "06a5b888-ad96-455e-88ef-c059ec4e4cf0": "Bob",
                "1fb8890f-423e-4154-8fbf-db6809bc8756": "Carol",
            },
            "Alice added Bob and Carol to the team",
        ),
        ("members_added", {}, "Someone added a member and a member to the team"),
        (
            "team_description_updated",
            {"1fb8890f-423e-4154-8fbf-db6809bc8756": "Adele"},
            'Adele set the team description: "Team for Microsoft Teams members"',
        ),
        ("conversation_member_role_updated", {}, "Someone made a member an owner"),
        ("call_ended", {}, "The meeting ended after 1 h 2 min 59 s"),
    ],
)
def test_system_events_are_notices_with_a_sentence(
    name: str, names: dict[str, str], sentence: str
) -> None:
    payload = mapped(fixture(name), ChatContext("localhost", names=names))
    content = main_content(payload)
    assert content["msgtype"] == "m.notice"
    assert content["body"] == sentence
    assert payload.attrs["sender_name"] == "Microsoft Teams"
    assert len(events(payload)) == 1


def test_unknown_future_value_event_gets_a_generic_sentence() -> None:
    detail = {"@odata.type": "#microsoft.graph.unknownFutureValue"}
    assert system_sentence(detail, {}) == system_sentence(None, {})
    assert "Teams event" in system_sentence(detail, {})


def test_hostile_html_is_neutralised() -> None:
    html = main_content(mapped(fixture("hostile")))["formatted_body"]
    lowered = html.lower()
    for forbidden in ("<script", "<iframe", "<style", "<svg", "onclick", "onerror", "onload"):
        assert forbidden not in lowered
    assert "javascript" not in lowered and "evil.example/frame" not in lowered
    assert "<img" not in lowered
    assert '<a href="https://evil.example/x.png">pixel</a>' in html  # a foreign image: a link
    assert "Salut" in html and "clique" in html and "fin" in html


def test_large_message_is_split_under_the_event_size_limit() -> None:
    document = fixture("mention")
    paragraph = "<p>" + "Ça avance bien, l'hirondelle fait le printemps. " * 40 + "</p>"
    document["message"]["body"]["content"] = "<div>" + paragraph * 80 + "</div>"
    payload = mapped(document)
    messages = [e for e in events(payload) if e["type"] == "m.room.message"]
    assert len(messages) >= 3
    for index, event in enumerate(messages):
        size = len(json.dumps(event["content"], ensure_ascii=False).encode())
        assert size <= MAX_CONTENT_BYTES
        assert event["content"][TEAMS_ID_KEY] == "1616965872395"
        assert event["content"].get(PART_KEY) == (index + 1 if index else None)
        assert event["content"]["formatted_body"].startswith("<div>")
        assert event["content"]["formatted_body"].endswith("</div>")
    text = " ".join(" ".join(e["content"]["body"].split()) for e in messages)
    assert text.count("hirondelle fait le printemps") == 40 * 80


def test_split_reply_keeps_every_part_in_the_thread() -> None:
    document = fixture("reply_with_reactions")
    document["message"]["body"]["content"] = "<p>" + "x" * (3 * MAX_CONTENT_BYTES) + "</p>"
    messages = [e for e in events(mapped(document)) if e["type"] == "m.room.message"]
    assert len(messages) >= 3
    assert all(e["content"]["m.relates_to"]["event_id"] == "$ROOT" for e in messages)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"message": "text"}', b'{"message": {"createdDateTime": "soon"}}'],
)
def test_malformed_content_is_skipped(content: bytes) -> None:
    with pytest.raises(SkipItem):
        map_chat_message(Item("1", "1", {}), content, CONTEXT)


def test_room_settings_name_topic_owners_and_hierarchy() -> None:
    team = {"id": "t1", "displayName": "Projet Hirondelle", "description": "Tout le projet"}
    channel = {"id": "c1", "displayName": "Général", "description": "", "membershipType": "private"}
    settings = room_settings(team, channel, [JANE, ROBIN], CONTEXT, creator="@bridge:localhost")
    assert settings.space["name"] == "Projet Hirondelle"
    assert settings.space["topic"] == "Tout le projet"
    assert settings.space["creation_content"] == {"type": "m.space"}
    assert settings.room["name"] == "Général" and "topic" not in settings.room
    users = settings.room["power_level_content_override"]["users"]
    assert users == {
        "@jane:localhost": 100,
        puppet_id(ROBIN, CONTEXT): 100,
        "@bridge:localhost": 100,
    }
    assert settings.space_child == {"via": ["localhost"], "suggested": False}
    assert settings.space_parent == {"via": ["localhost"], "canonical": True}
    state = {event["type"]: event for event in settings.room_state("!space:localhost")}
    assert state["m.space.parent"]["state_key"] == "!space:localhost"
    assert state["m.room.join_rules"]["content"] == {"join_rule": "invite"}
    assert all(e["type"] != "m.room.encryption" for e in settings.room["initial_state"])


def test_standard_channel_is_joinable_by_space_members_and_bot_mode_has_no_puppets() -> None:
    bot = ChatContext("localhost", users={JANE: "@jane:localhost"}, mode="bot")
    channel = {"displayName": "General", "membershipType": "standard"}
    settings = room_settings({"displayName": "T"}, channel, [JANE, ROBIN], bot)
    assert settings.room["power_level_content_override"]["users"] == {"@jane:localhost": 100}
    rule = settings.room_state("!s:localhost")[1]["content"]
    assert rule == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": "!s:localhost"}],
    }


def test_links_inside_cards_point_at_migrated_files() -> None:
    context = ChatContext("localhost", links={"https://tickets.example.org/42": "https://new/42"})
    html = main_content(mapped(fixture("adaptive_card"), context))["formatted_body"]
    assert '<a href="https://new/42">Voir le ticket</a>' in html


def test_a_link_whose_file_went_to_a_local_archive_keeps_its_address() -> None:
    context = ChatContext("localhost", links={"https://tickets.example.org/42": "file:///a/42"})
    html = main_content(mapped(fixture("adaptive_card"), context))["formatted_body"]
    assert '<a href="https://tickets.example.org/42">Voir le ticket</a>' in html
