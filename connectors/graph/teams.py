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

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.teams.item.channels.channels_request_builder import ChannelsRequestBuilder

from ...migrator.errors import SkipItem
from ...migrator.model import Container, Item, Owner, Page
from .budget import MailboxBudget
from .client import TENANT, GraphClient
from .errors import Call
from .teams_channel import (
    CHANNELS_PERMISSION,
    MESSAGE_PAGE,
    TEAMS_PERMISSION,
    ChannelInfo,
    ChannelReader,
)
from .teams_cursor import ChannelCursor, Round, stamp
from .teams_items import Thread, chronological, instant

ITEMS_PER_PAGE = 100  # items handed to the engine per Page (one transaction each)


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


class GraphTeamsSource(ChannelReader):
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
        self.settings = settings or TeamsSettings()
        tenant = tenant or teams_tenant_budget(self.settings.tenant_requests_per_second)
        super().__init__(client, tenant, self.settings.reread_pages)
        self.clock = clock  # the cursor's times
        self._channels: dict[str, ChannelInfo] = {}
        self._bodies: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> source id -> JSON
        self.team_owner_ids: dict[str, list[str]] = {}  # team id -> owners' Entra user ids
        # Entra user id -> display name, of the members of every team listed so far
        self.member_names: dict[str, str] = {}

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
        (https://learn.microsoft.com/en-us/graph/api/team-list-members). The members'
        display names go to `member_names`: a reaction names its user by id only (its
        `displayName` is often null), and the mapper names the reacting puppet from them."""
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
        self.member_names.update(
            (str(m["userId"]), str(m["displayName"]))
            for m in members
            if m.get("userId") and m.get("displayName")
        )
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
            self._channels[channel_id] = ChannelInfo(
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

    async def listing(self, container: Container) -> list[Item]:
        """Every root and reply of the channel as it is now, for verify."""
        channel = await self._channel(container)
        threads, _ = await self._thread_pages(container, channel, None, 0)
        return [item for item, _ in chronological(threads)]

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    # -- requests -------------------------------------------------------------------------

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

    async def _channel(self, container: Container) -> ChannelInfo:
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
