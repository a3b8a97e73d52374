"""The Matrix room of a Teams chat (one-to-one, group or meeting chat): pure.

A one-to-one chat becomes a direct room: `is_direct` on createRoom, so the invites it
sends carry `is_direct: true`, and an `m.direct` entry in the account data of each side
(https://spec.matrix.org/latest/client-server-api/#direct-messaging). Group and meeting
chats become private rooms named by the chat's topic, else by its members' names.

Found again, never made twice: the room's alias is derived from the chat id alone (a
topic can be renamed), and createRoom with `room_alias_name` is atomic on the homeserver,
so a crash right after it leaves a room that the next run finds by alias. The room also
holds a `fi.hirondelle.chat` state event naming the chat, for whoever reads it later.

Power levels, from Teams' roles (https://learn.microsoft.com/en-us/graph/api/resources/conversationmember):
members whose roles hold "owner" manage the chat in Teams (rename, add and remove people)
and get 100; other members and guests 0. Everyone may send messages. Inviting takes 0 in
a group chat (any member adds people in Teams), 50 in one-to-one and meeting chats
(adding someone to a one-to-one chat makes a new group chat in Teams; a meeting's
organizer decides who is invited). The room's creator (the application service's bot or
the bot account) keeps the creator's power the room version gives it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..migrator.model import Container
from .chat import ChatContext, matrix_user
from .chat_members import ChatInfo, ChatMember
from .chat_rooms import private_room_state

CHAT_STATE = "fi.hirondelle.chat"  # state event (key "") naming the Teams chat of the room
KIND_TOPICS = {
    "oneOnOne": "Microsoft Teams one-to-one chat",
    "group": "Microsoft Teams group chat",
    "meeting": "Microsoft Teams meeting chat",
}


@dataclass(frozen=True)
class ChatRoom:
    """What the target makes of one chat.

    `create` is the `POST /createRoom` body (alias included); `members` maps each current
    member's Matrix id to its display name (everyone is invited, puppets joined);
    `owners` get power 100 once the room exists; `direct` maps each member of a one-to-one
    chat to the other side, the entry its `m.direct` account data gets.
    """

    alias: str
    create: dict[str, Any]
    members: dict[str, str]
    owners: tuple[str, ...]
    direct: dict[str, str]

    @property
    def is_direct(self) -> bool:
        return bool(self.create.get("is_direct"))


def chat_info(chats: Mapping[str, ChatInfo], container: Container) -> ChatInfo:
    """What the source listed about the container's chat; without it (never listed in this
    run), a memberless chat of the container's kind and label: its members are then
    invited when they speak, and by the next run that lists the chat."""
    info = chats.get(container.source_id)
    if info is not None:
        return info
    label = container.path[-1] if container.path else None
    return ChatInfo(container.source_id, container.role or "group", label, ())


def chat_alias(prefix: str, chat_id: str) -> str:
    """The room alias localpart of a chat: from its id only, so a new topic keeps it."""
    return f"{prefix}chat-{hashlib.sha256(chat_id.encode('utf-8')).hexdigest()[:20]}"


def member_id(member: ChatMember, context: ChatContext) -> str | None:
    """The member's Matrix id, as the mapper names the authors of its messages (mapped
    real user by Teams id, else puppet); None for someone Graph does not name, and in bot
    mode for someone without a mapped real account (a bot has no puppets)."""
    if not member.user_id:
        return None
    if context.mode == "bot":
        return context.users.get(member.user_id) or context.users.get(member.user_id.lower())
    return matrix_user(member.user_id, context)


def chat_room(info: ChatInfo, context: ChatContext, alias_prefix: str, creator: str) -> ChatRoom:
    """The room of `info` created by `creator` (see the module docstring)."""
    members: dict[str, str] = {}
    owners: list[str] = []
    for member in info.members:
        user = member_id(member, context)
        if user is None or member.left:
            continue
        members[user] = member.name
        if "owner" in (role.lower() for role in member.roles):
            owners.append(user)
    direct = info.kind == "oneOnOne"
    others = sorted(user for user in members if user != creator)
    levels = {
        "users_default": 0,
        "events_default": 0,
        "state_default": 50,
        "invite": 0 if info.kind == "group" else 50,
        **dict.fromkeys(("kick", "ban", "redact"), 50),
    }
    chat_state = {"chat_id": info.chat_id, "kind": info.kind}
    initial = [*private_room_state(), {"type": CHAT_STATE, "state_key": "", "content": chat_state}]
    alias = chat_alias(alias_prefix, info.chat_id)
    create: dict[str, Any] = {
        "room_alias_name": alias,
        "preset": "private_chat",
        "visibility": "private",
        "is_direct": direct,
        "invite": others,
        "topic": KIND_TOPICS.get(info.kind, KIND_TOPICS["group"]),
        "power_level_content_override": levels,
        "initial_state": initial,
    }
    if not direct:  # a direct room is named by its other side in each client
        create["name"] = info.label
    pairs: dict[str, str] = {}
    if direct and len(members) == 2:
        first, second = sorted(members)
        pairs = {first: second, second: first}
    return ChatRoom(alias, create, members, tuple(sorted(set(owners))), pairs)


def with_direct_room(current: Mapping[str, Any], other: str, room: str) -> dict[str, Any] | None:
    """`m.direct` account data with `room` listed under `other`; None when it already is."""
    rooms = current.get(other)
    listed = [r for r in rooms if isinstance(r, str)] if isinstance(rooms, list) else []
    if room in listed:
        return None
    return {**current, other: [*listed, room]}


class MemberAccounts(Mapping[str, str]):
    """Real Matrix accounts by Teams user id, for chats' members.

    users.csv names people by UPN (`Config.users`, lower-case UPN -> login), while chat
    messages and member lists name them by Teams (Entra) user id; the tenant's `/users`
    listing, which the source reads anyway, joins the two (`upns`: user id -> UPN, filled
    live). A member's `email` is not the join: it is often another address than the UPN
    (https://learn.microsoft.com/en-us/graph/api/resources/aadusermessagemember). Give it as
    `ChatContext.users` and as the Matrix target's `users`, so that the mapper and the room
    agree on who is a real user. A UPN key answers as in `users`.
    """

    def __init__(self, users: Mapping[str, str], upns: Mapping[str, str]) -> None:
        self._users = users
        self._upns = upns  # Teams user id -> UPN

    def __getitem__(self, key: str) -> str:
        if key in self._users:
            return self._users[key]
        upn = self._upns.get(key)
        if upn is None or upn.lower() not in self._users:
            raise KeyError(key)
        return self._users[upn.lower()]

    def __iter__(self) -> Iterator[str]:
        mapped = (i for i, upn in self._upns.items() if upn.lower() in self._users)
        return iter([*self._users, *mapped])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class MemberNames(Mapping[str, str]):
    """Display names by Teams user id, from the chats' member lists: give it as
    `ChatContext.names`, so that system events ("Alice added Bob to the chat") name people
    whom Graph names by id only (their `displayName` is often null there)."""

    def __init__(self, chats: Mapping[str, ChatInfo]) -> None:
        self._chats = chats
        self._names: dict[str, str] = {}
        self._indexed = 0  # how many chats `_names` has read

    def __getitem__(self, key: str) -> str:
        if key not in self._names and self._indexed != len(self._chats):
            for info in list(self._chats.values()):
                self._names.update((m.user_id, m.name) for m in info.members if m.name)
            self._indexed = len(self._chats)
        return self._names[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
