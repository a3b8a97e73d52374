"""Reading one Teams channel through Graph: its listing of threads (50 roots a page, replies
expanded), a thread's replies past the first 1,000, `messages/delta` rounds, the round
that reads every thread again, one message read again and its inline images. Every read
takes a slot of the tenant's cap, then the channel's own budget. Why each request is
shaped so, and what a sync reads, is told in `teams`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
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
from ...migrator.model import Container, Item
from .budget import MailboxBudget
from .client import GraphClient
from .errors import Call
from .teams_cursor import ChannelCursor, Round
from .teams_hosted import hosted_contents
from .teams_items import Thread, created_at, first_created, source_ids

PERMISSION = "ChannelMessage.Read.All"
TEAMS_PERMISSION = "Team.ReadBasic.All"
CHANNELS_PERMISSION = "Channel.ReadBasic.All"
UNKNOWN_ENUMS = "include-unknown-enum-members"
TENANT_LANE = "teams-tenant"
MESSAGE_PAGE = 50  # the largest $top of channel messages, replies and delta
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What a channel's requests and content need beyond the `Container`."""

    team_id: str
    team_name: str
    name: str
    description: str


class ChannelReader:
    """The channel reads of the chat source (`teams.GraphTeamsSource`)."""

    def __init__(self, client: GraphClient, tenant: MailboxBudget, reread_pages: int) -> None:
        self.client = client
        self.tenant = tenant
        self._sdk = client.sdk
        self._reread_pages = reread_pages  # `TeamsSettings.reread_pages`

    async def _thread_pages(
        self, container: Container, channel: ChannelInfo, link: str | None, limit: int
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
        self, container: Container, channel: ChannelInfo, root: Mapping[str, Any]
    ) -> Thread:
        replies = await self._complete_replies(container, channel, root)
        return Thread(str(root["id"]), dict(root), replies, created_at(root))

    def _list_request(self, container: Container, channel: ChannelInfo) -> RequestInformation:
        params = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=MESSAGE_PAGE, expand=["replies"]
        )
        return self._channel_builder(channel, container).messages.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    async def _round(
        self, container: Container, channel: ChannelInfo, state: Round, since: str
    ) -> tuple[list[Thread], Round]:
        """This sync's pages of the round that reads every thread again: where the last
        sync stopped, or from the newest thread. A stored link the listing no longer
        takes starts the round again (the page links of a listing have no documented
        lifetime); with `reread_pages` 0 every sync reads a whole round."""
        limit = self._reread_pages
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

    async def _first_delta(self, container: Container, channel: ChannelInfo) -> str | None:
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
        self, container: Container, channel: ChannelInfo, state: ChannelCursor, since: str
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
        self, container: Container, channel: ChannelInfo, link: str | None
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

    def _delta_request(self, container: Container, channel: ChannelInfo) -> RequestInformation:
        """`$expand=replies` is encoded into the delta token, so later rounds bring replies."""
        params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            top=MESSAGE_PAGE, expand=["replies"]
        )
        messages = self._channel_builder(channel, container).messages
        return messages.delta.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )

    async def _complete_replies(
        self, container: Container, channel: ChannelInfo, root: Mapping[str, Any]
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
        self, container: Container, channel: ChannelInfo, root_id: str
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

    async def _get_message(
        self, container: Container, channel: ChannelInfo, item: Item
    ) -> dict[str, Any]:
        """One message read again (a retry after the channel's bodies were dropped)."""
        root_id, reply_id = source_ids(item)
        builder = self._channel_builder(channel, container).messages.by_chat_message_id(root_id)
        if reply_id is not None:
            builder = builder.replies.by_chat_message_id1(reply_id)
        call = Call(f"message {item.source_id} of {container.display_path}", PERMISSION, item=True)
        return await self._read(builder.to_get_request_information(), container.source_id, call)

    async def _hosted_contents(
        self, container: Container, channel: ChannelInfo, item: Item, message: Mapping[str, Any]
    ) -> dict[str, dict[str, str]]:
        """The inline images the body points at (`teams_hosted`)."""
        call = Call(f"inline image of {item.source_id}", PERMISSION, item=True)
        return await hosted_contents(
            self.client,
            (self.tenant, TENANT_LANE),
            container.source_id,
            message,
            lambda hosted_id: self._hosted_url(container, channel, item, hosted_id),
            call,
        )

    def _hosted_url(
        self, container: Container, channel: ChannelInfo, item: Item, hosted_id: str
    ) -> str:
        root_id, reply_id = source_ids(item)
        parts = ["teams", channel.team_id, "channels", container.source_id, "messages", root_id]
        if reply_id is not None:
            parts += ["replies", reply_id]
        parts += ["hostedContents", hosted_id]
        path = "/".join(quote(part, safe="") for part in parts)
        return f"{self.client.graph_url}/{path}/$value"

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

    def _channel_builder(self, channel: ChannelInfo, container: Container) -> Any:
        return self._sdk.teams.by_team_id(channel.team_id).channels.by_channel_id(
            container.source_id
        )
