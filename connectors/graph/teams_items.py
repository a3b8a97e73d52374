"""The engine's items for Teams channel messages: threads, their order, ids and versions.

Pure functions over chatMessage JSON as Graph returns it
(https://learn.microsoft.com/en-us/graph/api/resources/chatmessage); the Teams source
(`teams.py`) reads the messages, this module names and orders them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from ...migrator.model import Item

_FRACTION = re.compile(r"(\.\d{6})\d+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ChatMeta(TypedDict):
    """A channel message's `Item.meta`: ids, author and kind, never the body."""

    rootId: str  # the thread's root message (itself for a root)
    createdDateTime: str
    fromId: str | None
    fromName: str
    messageType: str  # "message", or a system event
    deleted: bool


@dataclass
class Thread:
    """A root post (None when only its replies were read again) and its replies."""

    root_id: str
    root: dict[str, Any] | None
    replies: list[dict[str, Any]]
    created: str  # the root's createdDateTime, for the order of threads

    @property
    def activity(self) -> str:
        """The latest time anything in the thread was written or changed."""
        messages = ([self.root] if self.root else []) + self.replies
        return max((_touched(m) for m in messages), key=instant, default=self.created)


def chronological(threads: Iterable[Thread]) -> Iterable[tuple[Item, dict[str, Any]]]:
    """Roots oldest first, each followed by its replies oldest first."""
    for thread in sorted(threads, key=lambda t: (instant(t.created), _numeric(t.root_id))):
        if thread.root is not None:
            yield message_item(thread.root, None), thread.root
        for reply in sorted(thread.replies, key=lambda r: (instant(created_at(r)), _numeric(r))):
            yield message_item(reply, thread.root_id), reply


def message_item(message: Mapping[str, Any], root_id: str | None) -> Item:
    """The engine's item for a message: ids, version and metadata, never the body."""
    message_id = str(message["id"])
    source_id = f"{root_id}/{message_id}" if root_id else message_id
    author = message.get("from") or {}
    who = author.get("user") or author.get("application") or author.get("device") or {}
    meta: ChatMeta = {
        "rootId": root_id or message_id,
        "createdDateTime": created_at(message),
        "fromId": who.get("id"),
        "fromName": str(who.get("displayName") or ""),
        "messageType": str(message.get("messageType") or "message"),
        "deleted": bool(message.get("deletedDateTime")),
    }
    return Item(source_id, message_version(message), meta)


def message_version(message: Mapping[str, Any]) -> str:
    """What changes when the message itself does: an edit, a deletion, a reaction.

    Not `lastModifiedDateTime` alone, which Teams also moves when a thread changes
    around a root; an edit shown for a mere new reply would be wrong on the target.
    """
    body = message.get("body") or {}
    reactions = sorted(
        f"{r.get('reactionType')}|{((r.get('user') or {}).get('user') or {}).get('id')}"
        for r in message.get("reactions") or []
    )
    parts = [
        str(message.get("lastEditedDateTime") or ""),
        str(message.get("deletedDateTime") or ""),
        str(message.get("subject") or ""),
        str(body.get("contentType") or ""),
        str(body.get("content") or ""),
        json.dumps(message.get("attachments") or [], sort_keys=True),
        *reactions,
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]
    return f"{message.get('lastEditedDateTime') or created_at(message)}#{digest}"


def source_ids(item: Item) -> tuple[str, str | None]:
    """(root id, reply id or None) of an item's source id."""
    root_id, _, reply_id = item.source_id.partition("/")
    return root_id, reply_id or None


def created_at(message: Mapping[str, Any]) -> str:
    return str(message.get("createdDateTime") or "")


def _touched(message: Mapping[str, Any]) -> str:
    return str(message.get("lastModifiedDateTime") or created_at(message))


def first_created(replies: list[dict[str, Any]]) -> str:
    return min((created_at(r) for r in replies), key=instant, default="")


def instant(text: str) -> datetime:
    """An ISO time as Graph writes it (Z, up to 7 fraction digits); the epoch if unreadable."""
    try:
        value = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        return _EPOCH
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _numeric(message: Mapping[str, Any] | str) -> tuple[int, str]:
    """A tie-breaker: Teams message ids are the creation time in milliseconds."""
    text = message if isinstance(message, str) else str(message.get("id"))
    return (int(text), text) if text.isdigit() else (0, text)
