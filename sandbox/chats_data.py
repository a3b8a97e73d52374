"""The sandbox's Teams chats: one-to-one, group and meeting chats, their members and messages.

Deterministic from the tenant's seed. A chat is stored as the channel model stores a
channel (`teams_data.TeamsData`: messages are frozen snapshots with a change sequence), with
the chat's id in place of the channel's and no team; chats have no threads, so every
message is a root. With at least two users the tenant holds:

- a one-to-one chat (users 1 and 2) with inline images, a shared file, a quoted reply,
  reactions, a mention, an edited and a deleted message;
- a group chat with a topic (users 1 to 3) and a group chat without one that user 2 left
  (their messages stay, a system event says they left);
- a meeting chat with its topic and a call-ended system event;
- with `TenantSpec.big_chat`, a one-to-one chat of `BIG_CHAT_MESSAGES` messages, written
  only when first read, so that a tenant that never reads it stays fast.

Message times end before "now" (`teams_data.END`); mutations come after it, one minute per
change, from `chats_mutations`.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .drive_data import guid
from .teams_data import (
    END,
    ChannelMessage,
    HostedContent,
    Member,
    SandboxChannel,
    Sender,
    TeamsData,
    by_id,
    hosted_content_id,
    iso_ms,
    tiny_png,
)
from .teams_seed import (
    GRAPH,
    POSTS,
    REPLIES,
    Composer,
    Draft,
    deleted_fields,
    initiator,
    reference_attachment,
    site_files,
    system_event_fields,
    user_identity,
    write,
)

if TYPE_CHECKING:
    from .drive_data import SandboxDrives
    from .tenant import Mutation, TenantSpec
    from .tenant_records import SandboxUser

JSON = dict[str, Any]
BIG_CHAT_MESSAGES = 10_000
CHAT_SPAN = timedelta(days=120)  # the seeded chats' messages lie in the 4 months before END


@dataclass(frozen=True)
class SandboxChat:
    id: str
    chat_type: str  # "oneOnOne" | "group" | "meeting"
    topic: str | None
    created: datetime
    members: tuple[Member, ...]  # the members now
    left: tuple[Member, ...] = ()  # who left: seen in the history only

    @property
    def as_channel(self) -> SandboxChannel:
        """The chat as the channel model's writer and composer take it."""
        everyone = self.members + self.left
        return SandboxChannel(
            self.id, "", self.topic or "", None, self.chat_type, self.created, everyone
        )


class ChatsData(TeamsData):
    """Chats and their messages, on the channel model's storage; safe to share between threads."""

    def __init__(self, seed: int, tenant_id: str) -> None:
        super().__init__(seed, tenant_id)
        self.chats: list[SandboxChat] = []
        self._lazy: dict[str, Callable[[], None]] = {}  # chat id -> writes its messages

    @classmethod
    def generate_chats(
        cls,
        spec: TenantSpec,
        users: Sequence[SandboxUser],
        drives: Callable[[], SandboxDrives],
        tenant_id: str,
    ) -> ChatsData:
        data = cls(spec.seed, tenant_id)
        people = list(users)
        if len(people) >= 2:
            _Seeder(data, spec, people, drives).seed()
        return data

    # --- storage ----------------------------------------------------------------------------

    def add_chat(self, chat: SandboxChat, lazy: Callable[[], None] | None = None) -> None:
        with self._lock:
            self.chats.append(chat)
            self._roots[chat.id] = {}
            self._taken[chat.id] = set()
            if lazy is not None:
                self._lazy[chat.id] = lazy

    def store_quietly(self, message: ChannelMessage) -> None:
        """Store a lazily written message without taking a change number: when it is
        written must not change the numbers (and times) of later mutations."""
        with self._lock:
            self._roots[message.channel_id][message.id] = message

    def _written(self, chat_id: str) -> None:
        with self._lock:
            lazy = self._lazy.pop(chat_id, None)
            if lazy is not None:
                lazy()

    # --- reads ------------------------------------------------------------------------------

    def chat(self, chat_id: str) -> SandboxChat:
        return by_id(self.chats, chat_id)

    def chats_of(self, user_id: str) -> list[SandboxChat]:
        """The chats the user is a member of now, oldest first."""
        return [c for c in self.chats if any(m.user_id == user_id for m in c.members)]

    def roots(self, channel_id: str) -> list[ChannelMessage]:
        self._written(channel_id)
        return super().roots(channel_id)

    def root(self, channel_id: str, message_id: str) -> ChannelMessage:
        self._written(channel_id)
        return super().root(channel_id, message_id)

    def all_messages(self) -> list[ChannelMessage]:
        for chat_id in list(self._lazy):
            self._written(chat_id)
        return super().all_messages()

    def mutate(self, mutation: Mutation, users: Sequence[SandboxUser]) -> list[str]:
        """New messages, edits and deletions in the chats; the message ids touched."""
        from .chats_mutations import ChatMutator

        with self._lock:
            rng = random.Random(f"{self.seed}|chats-mutation|{mutation.seed}|{self._seq}")
            return ChatMutator(self, rng).apply(mutation)


def image_url(chat_id: str, message_id: str, hosted_id: str) -> str:
    """Where a chat message's body points at its inline image."""
    return f"{GRAPH}/chats/{chat_id}/messages/{message_id}/hostedContents/{hosted_id}/$value"


def quote_of(quoted: ChannelMessage, tenant_id: str) -> JSON:
    """A `messageReference` attachment: a reply that quotes an earlier message."""
    sender = quoted.sender
    content = {
        "messageId": quoted.id,
        "messagePreview": quoted.body.replace("<p>", "").replace("</p>", " ").strip()[:80],
        "messageSender": {
            "application": None,
            "device": None,
            "user": {
                "userIdentityType": "aadUser",
                "tenantId": tenant_id,
                "id": sender.id if sender else None,
                "displayName": sender.display_name if sender else None,
            },
        },
    }
    return {
        "id": quoted.id,
        "contentType": "messageReference",
        "contentUrl": None,
        "content": json.dumps(content, ensure_ascii=False),
        "name": None,
        "thumbnailUrl": None,
        "teamsAppId": None,
    }


class _Seeder:
    def __init__(
        self,
        data: ChatsData,
        spec: TenantSpec,
        users: list[SandboxUser],
        drives: Callable[[], SandboxDrives],
    ) -> None:
        self.data, self.spec, self.users, self.drives = data, spec, users, drives
        self.rng = random.Random(f"{spec.seed}|chats")

    def member(self, user: SandboxUser) -> Member:
        return Member(user.id, user.display_name, user.mail, ("owner",))

    def seed(self) -> None:
        a, b = self.users[0], self.users[1]
        c = self.users[2] if len(self.users) > 2 else None
        trio = [a, b] + ([c] if c else [])
        start = END - CHAT_SPAN
        one = self._chat("oneOnOne", None, [a, b], start, f"19:{a.id}_{b.id}@unq.gbl.spaces")
        self._regular(one, 24, showcase=True)
        group = self._chat("group", "Pot de départ de Karim 🎉", trio, start + timedelta(days=3))
        self._regular(group, 18)
        encoded = base64.b64encode(guid(self.spec.seed, "meeting").encode()).decode()
        meeting_id = f"19:meeting_{encoded.rstrip('=')}@thread.v2"
        topic = "Réunion de chantier hebdomadaire"
        meeting = self._chat("meeting", topic, trio, start + timedelta(days=7), meeting_id)
        self._regular(meeting, 10, call=True)
        rest = [a] + ([c] if c else [])
        left = self._chat("group", None, rest, start + timedelta(days=12), left=[b])
        self._regular(left, 12, leaver=b)
        if self.spec.big_chat and c is not None:
            big = SandboxChat(
                f"19:{b.id}_{c.id}@unq.gbl.spaces",
                "oneOnOne",
                None,
                start,
                (self.member(b), self.member(c)),
            )
            self.data.add_chat(big, lambda: self._big(big))

    def _chat(
        self,
        kind: str,
        topic: str | None,
        members: list[SandboxUser],
        created: datetime,
        chat_id: str | None = None,
        left: Sequence[SandboxUser] = (),
    ) -> SandboxChat:
        identifier = (
            chat_id
            or (
                "19:" + guid(self.spec.seed, "chat", kind, topic or "", created.isoformat())
            ).replace("-", "")
            + "@thread.v2"
        )
        chat = SandboxChat(
            identifier,
            kind,
            topic,
            created,
            tuple(self.member(u) for u in members),
            tuple(self.member(u) for u in left),
        )
        self.data.add_chat(chat)
        return chat

    def _regular(
        self,
        chat: SandboxChat,
        count: int,
        *,
        showcase: bool = False,
        call: bool = False,
        leaver: SandboxUser | None = None,
    ) -> None:
        data, channel = self.data, chat.as_channel
        composer = Composer(data, self.rng, channel)
        moment = chat.created
        joined = self._event("membersAdded", chat, chat.members + chat.left)
        write(data, channel, moment, None, fixed(joined))
        written: list[ChannelMessage] = []
        for index in range(count):
            moment += timedelta(minutes=self.rng.randint(3, 600))
            author = composer.author()
            if leaver is not None and index >= count // 2:
                author = next(a for a in composer.authors if a.id != leaver.id)
            texts = POSTS if index % 3 == 0 else REPLIES
            written.append(write(data, channel, moment, author, _regular(composer, texts)))
            if leaver is not None and index == count // 2 - 1:
                moment += timedelta(minutes=5)
                gone = self._event("membersDeleted", chat, chat.left)
                write(data, channel, moment, None, fixed(gone))
        if showcase:
            self._showcase(chat, composer, moment, written)
        if call:
            moment += timedelta(minutes=45)
            ended = self._call_ended(chat)
            write(data, channel, moment, None, fixed(ended))

    def _showcase(
        self, chat: SandboxChat, composer: Composer, moment: datetime, earlier: list[ChannelMessage]
    ) -> None:
        data, channel = self.data, chat.as_channel
        first, second = composer.authors[0], composer.authors[1]

        def images(draft: Draft) -> JSON:
            hosted = []
            html = []
            for number in range(2):
                seed = f"{draft.message_id}|image|{number}"
                content = HostedContent(hosted_content_id(seed), "image/png", tiny_png(seed))
                hosted.append(content)
                url = image_url(chat.id, draft.message_id, content.id)
                html.append(f'<span><img height="16" src="{url}" width="24"></span>')
            body = "<div><p>Voici les photos du chantier 📸</p>" + "".join(html) + "</div>"
            return {"body": body, "hosted": tuple(hosted), "pinned": True}

        files, library = site_files(self.drives, self.spec.seed)
        name = "Compte rendu du chantier.docx"
        files.append((guid(self.spec.seed, "chat-file"), f"{library}/General/{quote(name)}", name))

        def shared(draft: Draft) -> JSON:
            attachment_id, url, name = files[0]
            reference = reference_attachment(attachment_id, url, name)
            body = f'<p>Le compte rendu 📄</p><attachment id="{attachment_id}"></attachment>'
            return {"body": body, "attachments": (reference,), "pinned": True}

        quoted = earlier[len(earlier) // 2]

        def quoting(draft: Draft) -> JSON:
            body = f'<attachment id="{quoted.id}"></attachment><p>Oui, bien d\'accord !</p>'
            return {
                "body": body,
                "attachments": (quote_of(quoted, data.tenant_id),),
                "pinned": True,
            }

        def mention(draft: Draft) -> JSON:
            html, found = composer.mention(0, second)
            reactions = (composer.reaction("like", second, draft.created + timedelta(minutes=2)),)
            return {
                "body": f"<p>{html}, tu passes au bureau ? 🙂</p>",
                "mentions": (found,),
                "reactions": reactions,
                "pinned": True,
            }

        def edited(draft: Draft) -> JSON:
            return {
                "body": "<p>Réunion à 10 h (et non 9 h)</p>",
                "pinned": True,
                "edited": draft.created + timedelta(minutes=4),
            }

        def deleted(draft: Draft) -> JSON:
            return {**deleted_fields(draft.created + timedelta(minutes=1)), "pinned": True}

        for number, compose in enumerate((images, shared, quoting, mention, edited, deleted)):
            moment += timedelta(minutes=7)
            who = first if number % 2 == 0 else second
            write(data, channel, moment, who, compose)

    def _event(self, kind: str, chat: SandboxChat, members: Sequence[Member]) -> JSON:
        tenant = self.data.tenant_id
        detail = {
            "@odata.type": f"#microsoft.graph.{kind}EventMessageDetail",
            "members": [user_identity(m.user_id, None, tenant, typed=False) for m in members],
            "initiator": self._initiator(chat),
        }
        if kind == "membersAdded":
            detail["visibleHistoryStartDateTime"] = "0001-01-01T00:00:00Z"
        return {**system_event_fields(detail), "pinned": True}

    def _call_ended(self, chat: SandboxChat) -> JSON:
        detail = {
            "@odata.type": "#microsoft.graph.callEndedEventMessageDetail",
            "callId": guid(self.spec.seed, "call", chat.id),
            "callDuration": "PT44M12S",
            "callEventType": "meeting",
            "callParticipants": [],
            "initiator": self._initiator(chat),
        }
        return {**system_event_fields(detail), "pinned": True}

    def _initiator(self, chat: SandboxChat) -> JSON:
        """A chat's system events are the first member's doing."""
        return initiator(user_identity(chat.members[0].user_id, None, self.data.tenant_id, False))

    def _big(self, chat: SandboxChat) -> None:
        """The long chat's messages, one every few minutes: the same for a seed whenever
        they are written (their own generator, no change numbers)."""
        rng = random.Random(f"{self.spec.seed}|big-chat")
        people = [Sender("user", m.user_id, m.display_name) for m in chat.members]
        step = CHAT_SPAN / (BIG_CHAT_MESSAGES + 1)
        for index in range(BIG_CHAT_MESSAGES):
            moment = chat.created + step * (index + 1)
            message_id, created = self.data.new_id(chat.id, moment)
            text = rng.choice(REPLIES if index % 2 else POSTS)
            self.data.store_quietly(
                ChannelMessage(
                    id=message_id,
                    team_id="",
                    channel_id=chat.id,
                    root_id=message_id,
                    created=created,
                    modified=created,
                    seq=0,
                    sender=people[index % 2],
                    body=f"<p>{text}</p>",
                )
            )


def fixed(fields: JSON) -> Callable[[Draft], JSON]:
    """A message's fields known before its id and time."""
    return lambda draft: fields


def _regular(composer: Composer, texts: tuple[str, ...]) -> Callable[[Draft], JSON]:
    return lambda draft: composer.regular(draft, texts, None)


def chat_json(chat: SandboxChat, tenant_id: str) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/chat"""
    return {
        "id": chat.id,
        "topic": chat.topic,
        "createdDateTime": iso_ms(chat.created),
        "lastUpdatedDateTime": iso_ms(chat.created),
        "chatType": chat.chat_type,
        "webUrl": f"https://teams.microsoft.com/l/chat/{chat.id}/0?tenantId={tenant_id}",
        "tenantId": tenant_id,
        "isHiddenForAllMembers": False,
    }
