"""The chats `Source`: Teams one-to-one, group and meeting chats, their messages in order.

Owners are the tenant's users; each chat is one container, migrated under one member only
although every member lists it. Items are the chat's messages (chats have no threads: each
message is its own root), handed over oldest first because the target fills rooms in order.

How the service shapes this module:

- `/users/{id}/chats` lists the chats a user is a member of, 50 a page at most, with
  `$expand=members` (which expands at most 25 members: past that, `/chats/{id}/members`):
  https://learn.microsoft.com/en-us/graph/api/chat-list. `chatType` is `oneOnOne`,
  `group`, `meeting` or a value added later; a chat of another kind is left out and said so.
- `/chats/{id}/messages` lists a chat's messages, 50 a page at most, newest first by
  `lastModifiedDateTime`; `$orderby=lastModifiedDateTime desc` with `$filter=
  lastModifiedDateTime gt <time>` lists only what changed since:
  https://learn.microsoft.com/en-us/graph/api/chat-list-messages. An edit, a deletion (the
  message stays, with `deletedDateTime`) or a reaction moves `lastModifiedDateTime`
  (https://learn.microsoft.com/en-us/graph/api/resources/chatmessage).
- The only delta Graph documents for chat messages is across every chat of a user
  (`/users/{id}/chats/getAllMessages/delta`), for the last eight months only, and
  getAllMessages is one of the metered export APIs
  (https://learn.microsoft.com/en-us/graph/api/chatmessage-delta,
  https://learn.microsoft.com/en-us/graph/teams-licenses): not used. The per-chat listing
  read here is not metered.
- System messages carry their real `eventDetail` type only with `Prefer:
  include-unknown-enum-members` (as for channels, `teams_channel.UNKNOWN_ENUMS`).
- Listing a chat's messages with application permissions is a protected API: Microsoft
  must approve the app first (https://learn.microsoft.com/en-us/graph/teams-protected-apis);
  the error table says so (`errors.ProtectedApiRefused`).
- Teams allows 20 reads of 1:1 and group chat messages per second per app and tenant
  (https://learn.microsoft.com/en-us/graph/throttling-limits#microsoft-teams-service-limits).
  Every read (messages, images, and the chat and member listings, which count among the
  "other" Teams reads of 30 a second) takes a slot of this source's tenant budget (lane
  `chats-tenant`, divided among the processes that read chats), then the chat's lane (the
  user's for the listings) of its client
  (`chats_budget`: 4 at once, 20 a second; the page names no per-chat rate, unlike its 4
  a second for a team or channel).

A sync (`changes` with a stored cursor) reads the messages whose `lastModifiedDateTime`
is after the newest one the last pass read (less `chats_reads.OVERLAP`): new messages,
edits, deletions and reactions. The cursor is stored with the last page only, when every
item before it is settled: a pass killed half way starts again from the last stored one,
and the engine skips what it already wrote. Where the service refuses the `$filter`, each
sync reads the chat whole and the engine skips what did not change.

De-duplication: a chat belongs to one member, recorded as a claim through `ChatClaims` (the
state's claims table in a run: one unique row per chat, so two members' jobs that list a
chat at once get the same answer). The member who claims it is, among its members, the
owner of lowest id that this run selects (`_preferred`; every tenant user without a users
file), whichever job lists it first, so plans and runs agree; the other members only read
the claim. A claim moves when its holder can no longer carry the chat: no longer an owner
this run selects, no longer a user of the tenant (deleted, or renamed: claims name the
holder by UPN, as containers do), or no longer a member. The preferred member's listing then
takes it over with a conditional update (`ChatClaims.move`: only if the old holder still
holds it, so two listers agree); its unit starts without a cursor and the target finds what
the old unit wrote (the room by its alias, the archive folder by the chat id's digest), so
only what is new is written. The lister is a member of every chat it lists, so each chat
has a selected member to carry it; a listing that does not name its owner among the chat's
members is carried all the same (by that owner if they name no selected owner), with a
warning (`unexpected`, a plan finding too).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import quote

from kiota_abstractions.api_error import APIError

from ...mappings.chat_members import CHAT_KINDS, ChatInfo, ChatMember
from ...migrator.model import Container, Item, Owner, Page
from ...migrator.selection import selected
from .budget import MailboxBudget
from .chats_reads import PERMISSION, TENANT_LANE, ChatCursor, ChatReader
from .client import GraphClient
from .directory import tenant_users
from .errors import Call
from .teams_hosted import hosted_contents, hosted_ids
from .teams_items import Thread, chronological, created_at, instant

ITEMS_PER_PAGE = 100  # items handed to the engine per Page (one transaction each)
log = logging.getLogger(__name__)


def chats_budget() -> MailboxBudget:
    """The chats client's budget: a lane per chat (and per user for the listings)."""
    return MailboxBudget(concurrency=4, requests_per_window=20, window_seconds=1.0)


# Chat message reads per second, per app and tenant:
# https://learn.microsoft.com/en-us/graph/throttling-limits#microsoft-teams-service-limits
READS_PER_SECOND = 20


def chats_tenant_budget() -> MailboxBudget:
    """The tenant-wide cap on chat message reads (one lane, `TENANT_LANE`)."""
    rate = READS_PER_SECOND
    return MailboxBudget(concurrency=rate, requests_per_window=rate, window_seconds=1.0)


class ChatClaims(Protocol):
    """Who holds each chat: `claim` gives the listed chats to `owner` where nobody holds
    them yet, atomically, and answers chat id -> holder for every one."""

    def claim(self, container_ids: Sequence[str], owner: str) -> dict[str, str]: ...

    def held(self, container_ids: Sequence[str]) -> dict[str, str]:
        """Who holds those of the chats that someone holds (nothing is claimed)."""
        ...

    def move(self, container_id: str, old: str, new: str) -> str | None:
        """Give the chat to `new` if `old` still holds it; who holds it afterwards."""
        ...


class MemoryClaims:
    """Claims held by this process only (a plan, a test): the first lister holds a chat."""

    def __init__(self) -> None:
        self.taken: dict[str, str] = {}

    def claim(self, container_ids: Sequence[str], owner: str) -> dict[str, str]:
        for chat_id in container_ids:
            self.taken.setdefault(chat_id, owner)
        return self.holders(container_ids)

    def held(self, container_ids: Sequence[str]) -> dict[str, str]:
        return self.holders(container_ids)

    def move(self, container_id: str, old: str, new: str) -> str | None:
        if self.taken.get(container_id) == old:
            self.taken[container_id] = new
        return self.taken.get(container_id)

    def holders(self, container_ids: Sequence[str]) -> dict[str, str]:
        return {c: self.taken[c] for c in container_ids if c in self.taken}


class GraphChatsSource(ChatReader):
    """Reads Teams chats out of Graph; implements `migrator.protocols.Source`."""

    workload = "chats"

    def __init__(
        self,
        client: GraphClient,
        claims: ChatClaims | None = None,
        *,
        tenant: MailboxBudget | None = None,
        wanted: Collection[str] | None = None,
    ) -> None:
        super().__init__(client, tenant or chats_tenant_budget())
        self.claims = claims or MemoryClaims()
        self.wanted = wanted  # the users file's selection (`RunOptions.users`); None: all
        self.chats: dict[str, ChatInfo] = {}  # chat id -> who is in it (the targets read it)
        self.left_out: dict[str, list[str]] = {}  # owner -> chats of kinds not carried
        self.unexpected: dict[str, list[str]] = {}  # owner -> chats not naming it a member
        self._bodies: dict[str, dict[str, dict[str, Any]]] = {}  # chat -> message id -> JSON
        self.images: dict[str, int] = {}  # chat -> inline images its last `listing` saw
        self._selected: frozenset[str] | None = None  # ids of the owners this run selects
        self.upns: dict[str, str] = {}  # user id -> UPN of every tenant user, filled live
        self._ids: dict[str, str] = {}  # lower-case UPN -> id, of every tenant user

    # -- owners and containers -----------------------------------------------------

    async def owners(self) -> list[Owner]:
        found = await tenant_users(self.client)
        self._ids = {o.upn.lower(): o.source_id for o in found}
        self.upns.update((o.source_id, o.upn) for o in found)  # the same dict: others hold it
        chosen = (o.source_id for o in found if selected(o, self.wanted))
        self._selected = frozenset(chosen)
        return found

    async def _selected_owners(self) -> frozenset[str]:
        """The ids of the owners this run selects (the tenant read once per source: a
        worker never calls `owners`)."""
        if self._selected is None:
            await self.owners()
        assert self._selected is not None
        return self._selected

    async def containers(self, owner: Owner) -> list[Container]:
        """The owner's chats that this owner's listing holds (claimed here or before)."""
        listed: dict[str, ChatInfo] = {}
        left_out: list[str] = []
        for chat in await self._user_chats(owner):
            chat_id, kind = str(chat["id"]), str(chat.get("chatType") or "")
            if kind not in CHAT_KINDS:
                left_out.append(f"{chat_id} ({kind or 'no chatType'})")
                continue
            members = await self._members(chat, owner)
            topic = chat.get("topic")
            created = str(chat.get("createdDateTime") or "")
            listed[chat_id] = ChatInfo(chat_id, kind, topic, members, created)
        self.left_out[owner.upn] = left_out
        for what in left_out:
            log.warning("%s: chat %s is of a kind not carried: left out", owner.upn, what)
        chosen = await self._selected_owners() | {owner.source_id}
        self.unexpected[owner.upn] = strangers = [
            f"{chat_id} ({info.label})"
            for chat_id, info in listed.items()
            if owner.source_id not in {m.user_id for m in info.members}
        ]
        for what in strangers:
            log.warning(
                "%s: chat %s is listed for this user but does not name them among its "
                "members: carried all the same, by this user if it names no selected user",
                owner.upn,
                what,
            )
        preferred = {chat_id: _preferred(info, chosen) for chat_id, info in listed.items()}
        mine = [c for c, who in preferred.items() if who in (owner.source_id, None)]
        # the state's short transactions, off the event loop (a writer may wait its turn)
        holders = await asyncio.to_thread(self.claims.claim, mine, owner.upn)
        for chat_id in mine:  # a holder who can no longer carry it hands it over
            old = holders.get(chat_id)
            if old is not None and not self._may_hold(old, listed[chat_id], chosen):
                now = await self._take_over(chat_id, old, owner.upn)
                if now is not None:
                    holders[chat_id] = now
        others = [c for c in listed if c not in holders]
        holders.update(await asyncio.to_thread(self.claims.held, others))
        containers: list[Container] = []
        for chat_id, info in listed.items():
            if holders.get(chat_id) != owner.upn:
                continue  # another member's listing carries it
            self.chats[chat_id] = self._with_left(info, self.chats.get(chat_id))
            containers.append(
                Container(
                    workload=self.workload,
                    owner=owner.upn,
                    source_id=chat_id,
                    path=(info.label,),
                    role=info.kind,
                )
            )
        return containers

    def _may_hold(self, holder: str, info: ChatInfo, chosen: frozenset[str]) -> bool:
        """Whether `holder` (a UPN) still carries the chat: a tenant user this run selects
        who is a member now."""
        user_id = self._ids.get(holder.lower())
        current = {m.user_id for m in info.members if not m.left}
        return user_id is not None and user_id in chosen and user_id in current

    async def _take_over(self, chat_id: str, old: str, new: str) -> str | None:
        holder = await asyncio.to_thread(self.claims.move, chat_id, old, new)
        if holder == new:
            log.info(
                "%s: takes over chat %s from %s (no longer a selected user who is a member)",
                new,
                chat_id,
                old,
            )
        return holder

    # -- changes ---------------------------------------------------------------------

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """The whole chat (cursor None), or what changed since the stored cursor."""
        chat_id = container.source_id
        state = ChatCursor.loads(cursor) if cursor else ChatCursor(None)
        since = state.modified if state.filtered else None
        self._bodies[chat_id] = {}
        try:
            what = f"messages of chat {container.display_path}"
            try:
                messages = [m async for m in self._messages(chat_id, what, since)]
                filtered = True
            except APIError as exc:
                if since is None or exc.response_status_code not in (400, 501):
                    raise
                log.warning("%s: $filter refused: syncs read the chat whole", what)
                messages = [m async for m in self._messages(chat_id, what, None)]
                filtered = False
            self._note_senders(chat_id, messages)
            newest = max(
                (str(m.get("lastModifiedDateTime") or created_at(m)) for m in messages),
                key=instant,
                default=state.modified,
            )
            ended = ChatCursor(newest, filtered and state.filtered)
            threads = [Thread(str(m["id"]), m, [], created_at(m)) for m in messages]
            entries = list(chronological(threads))
            async for page in self._pages(chat_id, entries, ended):
                yield page
        finally:
            self._bodies.pop(chat_id, None)

    async def _pages(
        self, chat_id: str, entries: list[tuple[Item, dict[str, Any]]], cursor: ChatCursor
    ) -> AsyncIterator[Page]:
        """Cut the items into pages, keeping each body until `fetch` takes it; the cursor
        goes with the last page only."""
        bodies = self._bodies.setdefault(chat_id, {})
        chunks = [entries[i : i + ITEMS_PER_PAGE] for i in range(0, len(entries), ITEMS_PER_PAGE)]
        for index, chunk in enumerate(chunks or [[]]):
            bodies.update((item.source_id, message) for item, message in chunk)
            items = tuple(item for item, _ in chunk)
            last = index == len(chunks or [[]]) - 1
            yield Page(items, (), None, cursor.dumps()) if last else Page(items)

    def _note_senders(self, chat_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        """Who wrote in the chat and is no longer a member: kept as a member who left."""
        info = self.chats.get(chat_id)
        if info is None:
            return
        known = {m.user_id for m in info.members}
        gone: dict[str, ChatMember] = {}
        for message in messages:
            user = (message.get("from") or {}).get("user") or {}
            user_id = str(user.get("id") or "")
            if user_id and user_id not in known and user_id not in gone:
                name = str(user.get("displayName") or "")
                gone[user_id] = ChatMember(user_id, name, left=True)
        if gone:
            members = info.members + tuple(gone.values())
            self.chats[chat_id] = replace(info, members=members)

    @staticmethod
    def _with_left(info: ChatInfo, before: ChatInfo | None) -> ChatInfo:
        """The listed chat, keeping the members who left that an earlier read found."""
        if before is None:
            return info
        current = {m.user_id for m in info.members}
        left = tuple(m for m in before.members if m.left and m.user_id not in current)
        if not left:
            return info
        return replace(info, members=info.members + left)

    # -- content ---------------------------------------------------------------------

    async def fetch(self, container: Container, item: Item) -> bytes:
        """The message JSON, its inline images and its chat (the chats workload's contract)."""
        chat_id = container.source_id
        message = self._bodies.get(chat_id, {}).pop(item.source_id, None)
        if message is None:
            message = await self._message(chat_id, item.source_id)
        call = Call(f"inline image of {item.source_id}", PERMISSION, item=True)
        hosted = await hosted_contents(
            self.client,
            (self.tenant, TENANT_LANE),
            chat_id,
            message,
            _hosted_url(self.client.graph_url, chat_id, item.source_id),
            call,
        )
        info = self.chats.get(chat_id)
        chat = {
            "id": chat_id,
            "chatType": info.kind if info else container.role,
            "topic": info.topic if info else None,
        }
        content = {"message": message, "hostedContents": hosted, "chat": chat}
        return json.dumps(content, ensure_ascii=False).encode("utf-8")

    async def listing(self, container: Container) -> list[Item]:
        """Every message of the chat as it is now, oldest first, for plan and verify."""
        what = f"messages of chat {container.display_path}"
        messages = [m async for m in self._messages(container.source_id, what, None)]
        self.images[container.source_id] = sum(len(hosted_ids(m)) for m in messages)
        threads = [Thread(str(m["id"]), m, [], created_at(m)) for m in messages]
        return [item for item, _ in chronological(threads)]

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()


def _preferred(info: ChatInfo, chosen: frozenset[str]) -> str | None:
    """The member whose listing claims the chat: of its members now, the owner of lowest
    id among those the run selects (`chosen`), so that the choice does not depend on which
    member's job lists it first (None: no member is selected, which a chat listed for a
    selected owner cannot be unless Graph's member list leaves the owner out; then the
    first to list it claims it)."""
    return min((m.user_id for m in info.members if m.user_id in chosen), default=None)


def _hosted_url(graph_url: str, chat_id: str, message_id: str) -> Callable[[str], str]:
    def url(hosted_id: str) -> str:
        parts = ("chats", chat_id, "messages", message_id, "hostedContents", hosted_id)
        return f"{graph_url}/" + "/".join(quote(p, safe="") for p in parts) + "/$value"

    return url
