"""The mutations applied to the sandbox's chats: new messages, edits and deletions.

`ChatMutator` applies a `Mutation`'s chats fields to `chats_data.ChatsData` with the
channel model's writer and composer, after "now", one minute per change. Edits and
deletions move `lastModifiedDateTime`, as the service does
(https://learn.microsoft.com/en-us/graph/api/resources/chatmessage), which is what an
incremental read filters on.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .teams_mutations import changeable, delete_now, edit_now, say_now
from .teams_seed import POSTS, Composer

if TYPE_CHECKING:
    from .chats_data import ChatsData
    from .tenant import Mutation


class ChatMutator:
    def __init__(self, data: ChatsData, rng: random.Random) -> None:
        self.data, self.rng = data, rng

    def apply(self, mutation: Mutation) -> list[str]:
        chats = [c for c in self.data.chats if mutation.chat_id in (None, c.id)]
        if not chats:
            return []
        touched: list[str] = []
        for _ in range(mutation.chats_messages):
            chat = self.rng.choice(chats)
            composer = Composer(self.data, self.rng, chat.as_channel)
            composer.authors = composer.authors[: len(chat.members)]  # those still there
            text = self.rng.choice(POSTS)
            touched.append(say_now(self.data, chat.as_channel, composer.author(), text).id)
        live = [
            m
            for chat in chats
            for m in self.data.roots(chat.id)
            if changeable(m) and m.id not in touched
        ]
        wanted = mutation.chats_edits + mutation.chats_deletions
        picks = self.rng.sample(live, min(wanted, len(live)))
        for message in picks[: mutation.chats_edits]:
            touched.append(edit_now(self.data, message, "<p><em>Modifié ✏️</em></p>").id)
        for message in picks[mutation.chats_edits :]:
            touched.append(delete_now(self.data, message).id)
        return touched
