"""The chat `Source`: Teams channels, their posts and replies, in the order they were written.

Owners are teams, containers their channels, items every channel message (a root
post or a reply). A channel is read whole and handed over oldest first, each root
immediately followed by its replies, because the target fills rooms in order.

How the service shapes this module:

- Channel messages are read 50 roots a page with `$expand=replies`; a root expands at
  most 1,000 replies and gives `replies@odata.nextLink` for the rest:
  https://learn.microsoft.com/en-us/graph/api/channel-list-messages
- `messages/delta` lists root posts only ("without the replies"), only those of the last
  eight months, and sends to list replies for the replies:
  https://learn.microsoft.com/en-us/graph/api/chatmessage-delta. Only its `$filter` is
  said to return whole "reply chains", and `$filter` is refused with application
  permissions (microsoftgraph/microsoft-graph-docs issue 20728); a root's
  `lastModifiedDateTime` moves for an edit or a reaction, not for a reply
  (https://learn.microsoft.com/en-us/graph/api/resources/chatmessage). So delta cannot be
  trusted to bring back a thread that only got a new reply. The cursor is its deltaLink,
  taken by a delta round *before* the enumeration so that nothing posted meanwhile is lost;
  roots it reports come with their replies expanded (`$expand=replies` is encoded into the
  delta token).
- Replies are listed per root, newest first, at most 50 a page, with no other query
  option: https://learn.microsoft.com/en-us/graph/api/chatmessage-list-replies. The
  metadata names a `replies/delta`, but no page documents it for channels: unused.
- System messages carry their real `eventDetail` type only with
  `Prefer: include-unknown-enum-members`:
  https://learn.microsoft.com/en-us/graph/best-practices-concept#handling-future-members-in-evolvable-enumerations
- Teams allows 4 requests per second per app on one channel and 20 per second per app
  and tenant for channel message reads:
  https://learn.microsoft.com/en-us/graph/throttling-limits#microsoft-teams-service-limits
  The client's budget has one lane per channel (4 per second); every message read also
  takes a slot of this source's tenant budget (lane `teams-tenant`, 20 per second).

So that no reply can be missed silently, each sync (`changes` with a stored cursor) reads:

1. the delta round: new and changed roots, with their replies;
2. the next `reread_pages` pages (50 threads each, with their replies) of a round that
   reads every thread of the channel again, newest first, resuming where the last sync
   stopped (0: the whole channel each sync). A round that reaches the oldest thread is
   complete: every reply posted before it began has been read;
3. the replies of the threads active in the channel's last `reply_window_days` (the
   `reply_window_threads` most recently active) that steps 1 and 2 did not read.

Cost in Graph requests per channel and sync, each counted against the channel's 4
requests a second and the tenant's 20: at least 1 for delta, plus 1 per 50 changed roots;
at most `reread_pages` for the round (for a channel of T threads, ceil(T / 50) when that
is fewer or the setting is 0); 1 per 50 replies of each window thread not read otherwise
(at most `reply_window_threads` such threads); and 1 per 50 replies past the first 1,000
of any thread read through the listing or delta. Every thread is read again at least once
every ceil(T / (50 x reread_pages)) syncs. Each sync's last page says (`Page.unchecked`)
when the threads outside the window were last all read, unless a round began and ended
within it; `verify` reads every thread whole. A channel's first pass, or a sync where
delta is refused, reads every thread (ceil(T / 50) requests, plus the delta round).

Message bodies stay in memory only between `changes` and `fetch` of one channel; the
item metadata (which the state keeps) never holds a body.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.teams.item.channels.channels_request_builder import ChannelsRequestBuilder
from msgraph.generated.teams.item.channels.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.teams.item.channels.item.messages.item.replies.replies_request_builder import (  # noqa: E501
    RepliesRequestBuilder,
)
from msgraph.generated.teams.item.channels.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)

from ...migrator.errors import CursorExpired, SkipItem
from ...migrator.model import Container, Item, Owner, Page
from .budget import MailboxBudget
from .client import TENANT, GraphClient
from .errors import Call
from .teams_cursor import ChannelCursor, Round, stamp
from .teams_items import (
    Thread,
    chronological,
    created_at,
    first_created,
    instant,
    source_ids,
)

PERMISSION = "ChannelMessage.Read.All"
TEAMS_PERMISSION = "Team.ReadBasic.All"
CHANNELS_PERMISSION = "Channel.ReadBasic.All"
UNKNOWN_ENUMS = "include-unknown-enum-members"
TENANT_LANE = "teams-tenant"
MESSAGE_PAGE = 50  # the largest $top of channel messages, replies and delta
ITEMS_PER_PAGE = 100  # items handed to the engine per Page (one transaction each)
_HOSTED = re.compile(r"hostedContents/([^/\"'\s?<>]+)/\$value")
log = logging.getLogger(__name__)


def teams_budget() -> MailboxBudget:
    """The chat client's budget: a lane per channel, 4 requests per second, 4 at once."""
    return MailboxBudget(concurrency=4, requests_per_window=4, window_seconds=1.0)


def teams_tenant_budget(requests_per_second: int = 20) -> MailboxBudget:
    """The tenant-wide cap on channel message reads (one lane, `TENANT_LANE`)."""
    rate = max(1, requests_per_second)
    return MailboxBudget(concurrency=rate, requests_per_window=rate, window_seconds=1.0)


@dataclass(frozen=True, slots=True)
class TeamsSettings:
    """The chat source's options (the README's `run.chat_*` settings).

    `reread_pages`: pages of 50 threads, each with its replies, that every sync reads
    again, continuing a round over the whole channel; 0 reads every thread each sync.
    `reply_window_days`, `reply_window_threads`: threads active in the channel's last
    days (counted back from its newest activity; at most that many, the most recently
    active) have their replies read again on each sync; 0 days turns it off.
    """

    reread_pages: int = 20
    reply_window_days: float = 7.0
    reply_window_threads: int = 200
    tenant_requests_per_second: int = 20


@dataclass(frozen=True, slots=True)
class _Channel:
    """What a channel's requests and content need beyond the `Container`."""

    team_id: str
    team_name: str
    name: str
    description: str


class GraphTeamsSource:
    """Reads Teams channel messages out of Graph; implements `migrator.protocols.Source`."""

    workload = "chat"

    def __init__(
        self,
        client: GraphClient,
        settings: TeamsSettings | None = None,
        *,
        tenant: MailboxBudget | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.settings = settings or TeamsSettings()
        self.clock = clock  # the cursor's times
        self.tenant = tenant or teams_tenant_budget(self.settings.tenant_requests_per_second)
        self._sdk = client.sdk
        self._channels: dict[str, _Channel] = {}
        self._bodies: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> source id -> JSON
        self.team_owner_ids: dict[str, list[str]] = {}  # team id -> owners' Entra user ids

    # -- owners and containers -----------------------------------------------------

    async def owners(self) -> list[Owner]:
        """Every team of the tenant (`/teams`; `/groups` filtered on Teams where refused)."""
        try:
            teams = await self._collect(self._sdk.teams.to_get_request_information(), "teams")
        except APIError as exc:
            if exc.response_status_code not in (400, 404, 501):
                raise
            teams = await self._collect(self._team_groups_request(), "groups of teams")
        return [
            Owner(f"team:{team.get('displayName') or ''}", str(team["id"]), _name(team))
            for team in teams
        ]

    async def _team_owners(self, owner: Owner) -> None:
        """The team's owners (their rooms give them power level 100): `/teams/{id}/members`,
        members whose `roles` hold "owner"
        (https://learn.microsoft.com/en-us/graph/api/team-list-members)."""
        url = f"{self.client.graph_url}/teams/{quote(owner.source_id, safe='')}/members"
        call = Call(f"members of {owner.upn}", CHANNELS_PERMISSION, item=True)
        try:
            members = [
                member
                async for page in self.client.pages(url, owner.source_id, call)
                for member in page.get("value", [])
            ]
        except SkipItem:
            members = []
        self.team_owner_ids[owner.source_id] = [
            str(m["userId"])
            for m in members
            if "owner" in (m.get("roles") or []) and m.get("userId")
        ]

    async def containers(self, owner: Owner) -> list[Container]:
        """The team's own channels: standard, private and shared (role = membershipType).

        `/channels` rather than `/allChannels`: the latter adds channels other teams
        share *into* this one, which their own team already carries:
        https://learn.microsoft.com/en-us/graph/api/team-list-allchannels
        """
        params = ChannelsRequestBuilder.ChannelsRequestBuilderGetQueryParameters(
            select=["id", "displayName", "description", "membershipType"]
        )
        request = self._sdk.teams.by_team_id(owner.source_id).channels.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        call = Call(f"channels of {owner.upn}", CHANNELS_PERMISSION, item=True)
        await self._team_owners(owner)
        channels = [
            channel
            async for page in self.client.pages(request, owner.source_id, call)
            for channel in page.get("value", [])
        ]
        containers: list[Container] = []
        for channel in channels:
            channel_id, name = str(channel["id"]), _name(channel)
            description = str(channel.get("description") or "")
            self._channels[channel_id] = _Channel(
                owner.source_id, owner.display_name, name, description
            )
            containers.append(
                Container(
                    workload=self.workload,
                    owner=owner.upn,
                    source_id=channel_id,
                    path=(owner.display_name, name),
                    role=str(channel.get("membershipType") or "standard"),
                )
            )
        return containers

    # -- changes ---------------------------------------------------------------------

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """The whole channel (cursor None), or what a sync reads (the module docstring)."""
        channel_id = container.source_id
        channel = await self._channel(container)
        self._bodies[channel_id] = {}
        try:
            state = ChannelCursor.loads(cursor) if cursor else None
            since = stamp(self.clock())  # every reply posted before this is read, or said not
            if state is None or state.delta is None:
                delta = await self._first_delta(container, channel)
                threads, _ = await self._thread_pages(container, channel, None, 0)
                removed: set[str] = set()
                known: Mapping[str, tuple[str, str]] = {}
                done = Round(checked=since, threads=len(threads))
            else:
                delta, threads, removed, done = await self._changed_threads(
                    container, channel, state, since
                )
                known = state.recent
            ended = ChannelCursor(delta, self._recent(known, threads), done)
            note = done.unchecked(since, self.settings.reread_pages * MESSAGE_PAGE)
            entries = list(chronological(threads))
            async for page in self._pages(channel_id, entries, removed, ended, note):
                yield page
        finally:
            self._bodies.pop(channel_id, None)

    async def _pages(
        self,
        channel_id: str,
        entries: list[tuple[Item, dict[str, Any]]],
        removed: set[str],
        cursor: ChannelCursor,
        note: str | None,
    ) -> AsyncIterator[Page]:
        """Cut the items into pages, keeping each body until `fetch` takes it."""
        bodies = self._bodies.setdefault(channel_id, {})
        chunks = [entries[i : i + ITEMS_PER_PAGE] for i in range(0, len(entries), ITEMS_PER_PAGE)]
        for index, chunk in enumerate(chunks or [[]]):
            bodies.update((item.source_id, message) for item, message in chunk)
            items = tuple(item for item, _ in chunk)
            if index < len(chunks) - 1:
                yield Page(items)
            else:
                yield Page(items, tuple(sorted(removed)), None, cursor.dumps(), note)

    async def _thread_pages(
        self, container: Container, channel: _Channel, link: str | None, limit: int
    ) -> tuple[list[Thread], str | None]:
        """Threads of the channel's listing (`$top=50&$expand=replies`, newest first), from
        `link` or the newest, at most `limit` pages (0: to the end); and the next page's
        link, None once the oldest thread was read."""
        call = Call(f"messages of {container.display_path}", PERMISSION, cursor=link is not None)
        target: RequestInformation | str | None = link or self._list_request(container, channel)
        threads: list[Thread] = []
        pages = 0
        while target is not None and (limit == 0 or pages < limit):
            page = await self._read(target, container.source_id, call)
            pages += 1
            for root in page.get("value", []):
                threads.append(await self._thread(container, channel, root))
            target = page.get("@odata.nextLink")
        return threads, None if target is None else str(target)

    async def _thread(
        self, container: Container, channel: _Channel, root: Mapping[str, Any]
    ) -> Thread:
        replies = await self._complete_replies(container, channel, root)
        return Thread(str(root["id"]), dict(root), replies, created_at(root))

    def _list_request(self, container: Container, channel: _Channel) -> RequestInformation:
        params = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=MESSAGE_PAGE, expand=["replies"]
        )
        return self._channel_builder(channel, container).messages.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    async def _round(
        self, container: Container, channel: _Channel, state: Round, since: str
    ) -> tuple[list[Thread], Round]:
        """This sync's pages of the round that reads every thread again: where the last
        sync stopped, or from the newest thread. A stored link the listing no longer
        takes starts the round again (the page links of a listing have no documented
        lifetime); with `reread_pages` 0 every sync reads a whole round."""
        limit = self.settings.reread_pages
        if limit and state.next is not None:
            try:
                threads, link = await self._thread_pages(container, channel, state.next, limit)
            except (CursorExpired, APIError) as exc:
                if isinstance(exc, APIError) and exc.response_status_code not in (400, 404):
                    raise
                log.info("%s: the thread round begins again (%s)", container.display_path, exc)
            else:
                read = state.read + len(threads)
                return threads, state.resumed(link, state.started or since, read)
        threads, link = await self._thread_pages(container, channel, None, limit)
        return threads, state.resumed(link, since, len(threads))

    async def _first_delta(self, container: Container, channel: _Channel) -> str | None:
        """The deltaLink to start from, or None where the service refuses delta.

        Some tenants answered "Delta query is not supported by this resource" (HTTP 400)
        to applications (microsoftgraph/microsoft-graph-docs issue 20728); the channel is
        then enumerated whole on each sync and the engine skips what did not change.
        """
        try:
            delta, _, _ = await self._delta_round(container, channel, None)
        except APIError as exc:
            if exc.response_status_code not in (400, 501):
                raise
            log.warning("delta refused for %s: syncs read it whole", container.display_path)
            return None
        return delta

    async def _changed_threads(
        self, container: Container, channel: _Channel, state: ChannelCursor, since: str
    ) -> tuple[str, list[Thread], set[str], Round]:
        """What a sync reads: the roots delta reported, this sync's share of the round,
        then the recently active threads neither brought."""
        delta, roots, removed = await self._delta_round(container, channel, state.delta)
        threads: dict[str, Thread] = {}
        for root_id, root in roots.items():
            if root is not None:  # a reply listed by delta (None) has its thread read below
                threads[root_id] = await self._thread(container, channel, root)
        swept, done = await self._round(container, channel, state.round, since)
        threads.update((thread.root_id, thread) for thread in swept)
        again = {root: times[0] for root, times in state.recent.items()}
        for root_id, body in roots.items():
            if body is None:
                again.setdefault(root_id, "")
        for root_id, created in again.items():
            if root_id in threads or root_id in removed:
                continue
            replies = await self._list_replies(container, channel, root_id)
            threads[root_id] = Thread(root_id, None, replies, created or first_created(replies))
        return delta, list(threads.values()), removed, done

    async def _delta_round(
        self, container: Container, channel: _Channel, link: str | None
    ) -> tuple[str, dict[str, dict[str, Any] | None], set[str]]:
        """Follow `messages/delta` to its deltaLink: roots reported, ids removed, new link.

        A root maps to its JSON; a reply that delta lists anyway maps its root to None.
        The first round (no link) only seeks the deltaLink: its entries are not kept.
        """
        what = f"message changes of {container.display_path}"
        target: RequestInformation | str = link or self._delta_request(container, channel)
        call = Call(what, PERMISSION, cursor=link is not None)
        roots: dict[str, dict[str, Any] | None] = {}
        removed: set[str] = set()
        while True:
            page = await self._read(target, container.source_id, call)
            for entry in page.get("value", []) if link else ():
                entry_id = str(entry.get("id"))
                if "@removed" in entry:
                    removed.add(entry_id)
                elif entry.get("replyToId"):
                    roots.setdefault(str(entry["replyToId"]), None)
                else:
                    roots[entry_id] = entry
            next_link = page.get("@odata.nextLink")
            if not next_link:
                delta = page.get("@odata.deltaLink") or link
                if not delta:
                    raise CursorExpired(f"{what}: delta ended without a deltaLink")
                return str(delta), roots, removed
            target, call = str(next_link), Call(what, PERMISSION, cursor=True)

    def _delta_request(self, container: Container, channel: _Channel) -> RequestInformation:
        """`$expand=replies` is encoded into the delta token, so later rounds bring replies."""
        params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            top=MESSAGE_PAGE, expand=["replies"]
        )
        messages = self._channel_builder(channel, container).messages
        return messages.delta.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    async def _complete_replies(
        self, container: Container, channel: _Channel, root: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The root's replies: the expanded ones, then the pages past the first 1,000."""
        root_id = str(root["id"])
        if "replies" not in root:  # not expanded (a delta round without replies)
            return await self._list_replies(container, channel, root_id)
        replies = {str(r["id"]): r for r in root.get("replies") or []}
        link = root.get("replies@odata.nextLink")
        count = root.get("replies@odata.count")
        if link:
            call = Call(f"replies of {root_id} in {container.display_path}", PERMISSION, item=True)
            try:
                async for page in self._message_pages(str(link), container.source_id, call):
                    replies.update((str(r["id"]), r) for r in page.get("value", []))
            except SkipItem:
                return list(replies.values())  # the root went away meanwhile
        elif isinstance(count, int) and count > len(replies):
            return await self._list_replies(container, channel, root_id)
        return list(replies.values())

    async def _list_replies(
        self, container: Container, channel: _Channel, root_id: str
    ) -> list[dict[str, Any]]:
        """`/messages/{id}/replies`, paged 50 at a time; none when the root is gone."""
        params = RepliesRequestBuilder.RepliesRequestBuilderGetQueryParameters(top=MESSAGE_PAGE)
        builder = self._channel_builder(channel, container).messages.by_chat_message_id(root_id)
        request = builder.replies.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        call = Call(f"replies of {root_id} in {container.display_path}", PERMISSION, item=True)
        replies: dict[str, dict[str, Any]] = {}
        try:
            async for page in self._message_pages(request, container.source_id, call):
                replies.update((str(r["id"]), r) for r in page.get("value", []))
        except SkipItem:
            return []
        return list(replies.values())

    def _recent(
        self, known: Mapping[str, tuple[str, str]], threads: Iterable[Thread]
    ) -> dict[str, tuple[str, str]]:
        """The threads active within the reply window of the channel's newest activity."""
        window = timedelta(days=self.settings.reply_window_days)
        if window <= timedelta(0) or self.settings.reply_window_threads < 1:
            return {}
        times = dict(known)
        for thread in threads:
            times[thread.root_id] = (thread.created, thread.activity)
        if not times:
            return {}
        newest = max(instant(activity) for _, activity in times.values())
        active = [(r, t) for r, t in times.items() if instant(t[1]) >= newest - window]
        active.sort(key=lambda entry: instant(entry[1][1]), reverse=True)
        return dict(active[: self.settings.reply_window_threads])

    # -- content ------------------------------------------------------------------------

    async def fetch(self, container: Container, item: Item) -> bytes:
        """The message JSON with its inline images and its team and channel (shared contract)."""
        channel = await self._channel(container)
        message = self._bodies.get(container.source_id, {}).pop(item.source_id, None)
        if message is None:
            message = await self._get_message(container, channel, item)
        message = {k: v for k, v in message.items() if not k.startswith("replies")}
        content = {
            "message": message,
            "hostedContents": await self._hosted_contents(container, channel, item, message),
            "team": {"id": channel.team_id, "displayName": channel.team_name},
            "channel": {
                "id": container.source_id,
                "displayName": channel.name,
                "description": channel.description,
            },
        }
        return json.dumps(content, ensure_ascii=False).encode("utf-8")

    async def _get_message(
        self, container: Container, channel: _Channel, item: Item
    ) -> dict[str, Any]:
        """One message read again (a retry after the channel's bodies were dropped)."""
        root_id, reply_id = source_ids(item)
        builder = self._channel_builder(channel, container).messages.by_chat_message_id(root_id)
        if reply_id is not None:
            builder = builder.replies.by_chat_message_id1(reply_id)
        call = Call(f"message {item.source_id} of {container.display_path}", PERMISSION, item=True)
        return await self._read(builder.to_get_request_information(), container.source_id, call)

    async def _hosted_contents(
        self, container: Container, channel: _Channel, item: Item, message: Mapping[str, Any]
    ) -> dict[str, dict[str, str]]:
        """The inline images the body points at (`hostedContents/{id}/$value`), base64."""
        body = str((message.get("body") or {}).get("content") or "")
        found: dict[str, dict[str, str]] = {}
        for hosted_id in dict.fromkeys(unquote(m) for m in _HOSTED.findall(body)):
            url = self._hosted_url(container, channel, item, hosted_id)
            call = Call(f"inline image of {item.source_id}", PERMISSION, item=True)
            try:
                async with self.tenant.slot(TENANT_LANE):
                    data = await self.client.stream_bytes(url, container.source_id, call)
            except SkipItem:
                continue  # the image is gone; the mapper keeps the message without it
            found[hosted_id] = {
                "contentType": _sniff(data),
                "base64": base64.b64encode(data).decode("ascii"),
            }
        return found

    def _hosted_url(
        self, container: Container, channel: _Channel, item: Item, hosted_id: str
    ) -> str:
        root_id, reply_id = source_ids(item)
        parts = ["teams", channel.team_id, "channels", container.source_id, "messages", root_id]
        if reply_id is not None:
            parts += ["replies", reply_id]
        parts += ["hostedContents", hosted_id]
        path = "/".join(quote(part, safe="") for part in parts)
        return f"{self.client.graph_url}/{path}/$value"

    async def listing(self, container: Container) -> list[Item]:
        """Every root and reply of the channel as it is now, for verify."""
        channel = await self._channel(container)
        threads, _ = await self._thread_pages(container, channel, None, 0)
        return [item for item, _ in chronological(threads)]

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    # -- requests -------------------------------------------------------------------------

    async def _read(
        self, target: RequestInformation | str, channel_id: str, call: Call
    ) -> dict[str, Any]:
        """One message read: a slot of the tenant cap, then the channel's own budget."""
        async with self.tenant.slot(TENANT_LANE):
            return await self.client.get_json(target, channel_id, call, prefer=[UNKNOWN_ENUMS])

    async def _message_pages(
        self, first: RequestInformation | str, channel_id: str, call: Call
    ) -> AsyncIterator[dict[str, Any]]:
        target: RequestInformation | str | None = first
        while target is not None:
            page = await self._read(target, channel_id, call)
            yield page
            target = page.get("@odata.nextLink")

    async def _collect(self, request: RequestInformation, what: str) -> list[dict[str, Any]]:
        call = Call(f"list {what}", TEAMS_PERMISSION)
        return [
            entry
            async for page in self.client.pages(request, TENANT, call)
            for entry in page.get("value", [])
        ]

    def _team_groups_request(self) -> RequestInformation:
        """Teams as groups: the listing the docs gave before `/teams` existed."""
        params = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="resourceProvisioningOptions/Any(x:x eq 'Team')",
            select=["id", "displayName", "description"],
        )
        return self._sdk.groups.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    def _channel_builder(self, channel: _Channel, container: Container) -> Any:
        return self._sdk.teams.by_team_id(channel.team_id).channels.by_channel_id(
            container.source_id
        )

    async def _channel(self, container: Container) -> _Channel:
        """The channel's team, found again by the team's name after a restart."""
        known = self._channels.get(container.source_id)
        if known is not None:
            return known
        for owner in await self.owners():
            if owner.upn == container.owner:
                await self.containers(owner)
        known = self._channels.get(container.source_id)
        if known is None:
            raise SkipItem(f"channel {container.display_path} is no longer in {container.owner}")
        return known


def _name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("displayName") or entry.get("id") or "")


def _sniff(data: bytes) -> str:
    """The image type from its first bytes (a `$value` answer says no more than that)."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
    )
    for magic, content_type in signatures:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
