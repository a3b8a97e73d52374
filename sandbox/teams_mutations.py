"""The mutations applied to the sandbox's Teams: new posts and replies, edits, deletions
(how a message is edited or deleted serves the chats' mutations too).

`Mutator` applies a `Mutation`'s chat fields to `teams_data.TeamsData` with the
messages' own writer and composer (`teams_seed`), after "now", one minute per change.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING

from .teams_data import ChannelMessage, SandboxChannel, Sender, TeamsData
from .teams_seed import POSTS, REPLIES, Composer, deleted_fields, write

if TYPE_CHECKING:
    from .tenant import Mutation
    from .tenant_records import SandboxUser


class Mutator:
    """Applies a `Mutation`'s chat fields: new posts and replies, edits, deletions."""

    def __init__(self, data: TeamsData, rng: random.Random, users: list[SandboxUser]) -> None:
        self.data, self.rng, self.users = data, rng, users

    def apply(self, mutation: Mutation) -> list[str]:
        channels = [c for t in self.data.teams for c in self.data.channels(t.id)]
        if not channels:
            return []
        live = [m for m in self.data.all_messages() if _changeable(m)]
        live.sort(key=lambda m: (m.channel_id, int(m.root_id), int(m.id)))
        roots = [m for m in live if m.is_root and mutation.chat_thread in (None, m.id)]
        touched = [self._post(self.rng.choice(channels)) for _ in range(mutation.chat_posts)]
        for _ in range(mutation.chat_replies if roots else 0):
            touched.append(self._reply(self.rng.choice(roots)))
        wanted = mutation.chat_edits + mutation.chat_deletions
        picks = self.rng.sample(live, min(wanted, len(live)))
        for message in picks[: mutation.chat_edits]:
            touched.append(self._edit(message))
        for message in picks[mutation.chat_edits :]:
            touched.append(self._delete(message))
        return touched

    def _composer(self, channel_id: str, team_id: str) -> Composer:
        return Composer(self.data, self.rng, self.data.channel(team_id, channel_id))

    def _post(self, channel: SandboxChannel) -> str:
        composer = self._composer(channel.id, channel.team_id)
        text = self.rng.choice(POSTS)
        return say_now(self.data, channel, composer.author(), text).source_id

    def _reply(self, root: ChannelMessage) -> str:
        composer = self._composer(root.channel_id, root.team_id)
        text = self.rng.choice(REPLIES)
        return say_now(self.data, composer.channel, composer.author(), text, root.id).source_id

    def _edit(self, message: ChannelMessage) -> str:
        note = "<p><em>Modifié : précision ajoutée ✏️</em></p>"
        return edit_now(self.data, message, note).source_id

    def _delete(self, message: ChannelMessage) -> str:
        return delete_now(self.data, message).source_id


def say_now(
    data: TeamsData,
    channel: SandboxChannel,
    author: Sender | None,
    text: str,
    root_id: str | None = None,
) -> ChannelMessage:
    """Write a one-paragraph message (a reply under `root_id`) at the data's next change."""
    return write(data, channel, data.clock(), author, lambda d: {"body": f"<p>{text}</p>"}, root_id)


def edit_now(data: TeamsData, message: ChannelMessage, note: str) -> ChannelMessage:
    """Store `message` edited at the data's next change: `note` added to its body."""
    moment = data.clock()
    changed = dataclasses.replace(message, body=message.body + note, edited=moment, modified=moment)
    return data.store(changed)


def delete_now(data: TeamsData, message: ChannelMessage) -> ChannelMessage:
    """Store `message` deleted at the data's next change: in its place, its content gone."""
    moment = data.clock()
    changed = dataclasses.replace(message, modified=moment, hosted=(), **deleted_fields(moment))
    return data.store(changed)


def changeable(message: ChannelMessage) -> bool:
    """A message a mutation may edit or delete: a live, unpinned message with an author."""
    return (
        not message.pinned
        and message.deleted is None
        and message.message_type == "message"
        and message.sender is not None
    )


def _changeable(message: ChannelMessage) -> bool:
    """In a channel, only a user's message (not a bot's)."""
    return changeable(message) and message.sender is not None and message.sender.kind == "user"
