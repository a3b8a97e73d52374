"""Teams chats for the target tests: chats, their members and their messages as the chats
source fetches them (chatMessage JSON shaped as on Microsoft's "List messages in a chat"
and chatMessageAttachment pages), mapped by the real mapper."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hirondelle.mappings.chat import ChatContext, map_chat_message
from hirondelle.mappings.chat_members import ChatInfo, ChatMember
from hirondelle.migrator.model import Container, Item, Owner, Payload

BASE = datetime(2021, 3, 2, 9, 30, tzinfo=UTC)  # long ago, so kept times show


def member(name: str, *roles: str, left: bool = False) -> ChatMember:
    """A member with an id of its own: puppets (and their account data) outlive a test on
    the session's homeserver."""
    user_id = f"user-{name.lower()}-{uuid.uuid4().hex[:8]}"
    return ChatMember(user_id, name, f"{name.lower()}@example.test", roles, left)


def alice_and_bob(chat_id: str, kind: str) -> ChatInfo:
    """An untitled chat of two owners, Alice and Bob (in that order)."""
    return ChatInfo(chat_id, kind, None, (member("Alice", "owner"), member("Bob", "owner")))


def chat_container(info: ChatInfo, owner: str = "alice@example.test") -> Container:
    return Container("chats", owner, info.chat_id, (info.label,), role=info.kind)


def chat_owner(upn: str = "alice@example.test") -> Owner:
    return Owner(upn=upn, source_id=f"id-{upn}", display_name=upn.partition("@")[0].title())


def chat_document(
    info: ChatInfo,
    message_id: str,
    text: str,
    author: ChatMember,
    minute: int,
    *,
    quote: tuple[str, ChatMember, str] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    edited: bool = False,
    deleted: bool = False,
    mentions: tuple[ChatMember, ...] = (),
) -> dict[str, Any]:
    """A chat message; `quote` (message id, its author, its preview) makes it quote one;
    `mentions` follow the text."""
    created = (BASE + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    pills = "".join(f' <at id="{n}">{m.name}</at>' for n, m in enumerate(mentions))
    body = f"<p>{text}{pills}</p>"
    extra = list(attachments or [])
    if quote is not None:
        quoted_id, quoted_author, preview = quote
        sender = {"user": {"id": quoted_author.user_id, "displayName": quoted_author.name}}
        reference = {"messageId": quoted_id, "messagePreview": preview, "messageSender": sender}
        extra.insert(0, {
            "id": quoted_id, "contentType": "messageReference", "contentUrl": None,
            "content": json.dumps(reference), "name": None, "thumbnailUrl": None,
        })  # fmt: skip
        body = f'<attachment id="{quoted_id}"></attachment>{body}'
    message = {
        "id": message_id,
        "replyToId": None,
        "messageType": "message",
        "createdDateTime": created,
        "lastEditedDateTime": created if edited else None,
        "deletedDateTime": created if deleted else None,
        "chatId": info.chat_id,
        "from": {"user": {"id": author.user_id, "displayName": author.name}},
        "body": {"contentType": "html", "content": body},
        "attachments": extra,
        "mentions": [
            {
                "id": n,
                "mentionText": m.name,
                "mentioned": {"user": {"id": m.user_id, "displayName": m.name}},
            }
            for n, m in enumerate(mentions)
        ],  # fmt: skip
        "reactions": [],
    }
    chat = {"id": info.chat_id, "chatType": info.kind, "topic": info.topic}
    return {"message": message, "hostedContents": {}, "chat": chat}


def chat_payload(document: dict[str, Any], context: ChatContext) -> Payload:
    """The payload the engine hands the target: the mapper's, for a chats item."""
    message = document["message"]
    meta = {
        "rootId": message["id"],
        "createdDateTime": message["createdDateTime"],
        "deleted": bool(message.get("deletedDateTime")),
    }
    item = Item(str(message["id"]), "1", meta)
    return map_chat_message(item, json.dumps(document).encode("utf-8"), context)
