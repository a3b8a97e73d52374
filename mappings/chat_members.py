"""Who is in a Teams chat (one-to-one, group or meeting chat), as the chats source lists it.

The chats source fills a `ChatInfo` per chat as it lists an owner's chats; the targets
read it to name the room and invite its members. Pure data: no I/O.
Graph's `chat` and `conversationMember` resources:
https://learn.microsoft.com/en-us/graph/api/resources/chat
https://learn.microsoft.com/en-us/graph/api/resources/aadusermessagemember
"""

from __future__ import annotations

from dataclasses import dataclass

CHAT_KINDS = ("oneOnOne", "group", "meeting")  # Graph's chatType values we carry


@dataclass(frozen=True, slots=True)
class ChatMember:
    """One member of a chat."""

    user_id: str  # the member's Entra user id ("" for someone Graph does not name)
    name: str  # display name as Graph gives it
    email: str = ""
    roles: tuple[str, ...] = ()  # conversationMember roles: "owner", "guest"
    left: bool = False  # no longer a member (seen only in the chat's history)


@dataclass(frozen=True, slots=True)
class ChatInfo:
    """One chat: its id, kind, topic and members."""

    chat_id: str
    kind: str  # one of CHAT_KINDS
    topic: str | None
    members: tuple[ChatMember, ...]
    created: str = ""  # createdDateTime (ISO 8601)

    @property
    def label(self) -> str:
        """How people recognise the chat: its topic, else its members' names."""
        if self.topic and self.topic.strip():
            return self.topic.strip()
        names = sorted({m.name for m in self.members if m.name and not m.left})
        return ", ".join(names) or "Chat"
