"""Reading Teams chats through Graph: a user's chats with their members, a chat's messages
whole or changed since a time, one message again. Why each request is shaped so is told
in `chats`; every read takes a slot of the tenant's cap, then its chat's or user's lane.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.chats.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.chats.chats_request_builder import ChatsRequestBuilder

from ...mappings.chat_members import ChatMember
from ...migrator.errors import CursorExpired, SkipItem
from ...migrator.model import Owner
from .budget import MailboxBudget
from .client import GraphClient
from .errors import Call
from .teams_channel import UNKNOWN_ENUMS
from .teams_items import instant

PERMISSION = "Chat.Read.All"
TENANT_LANE = "chats-tenant"
CHAT_PAGE = 50  # the largest $top of /users/{id}/chats
MESSAGE_PAGE = 50  # the largest $top of /chats/{id}/messages
EXPANDED_MEMBERS = 25  # `$expand=members` stops there, whatever `$top` says
# How far back each sync reads before the newest change it saw: Teams' listing has no
# documented consistency bound, and a change stamped just before that time may not have
# been listed yet. Re-reading it costs nothing on the target (same version: unchanged).
OVERLAP = timedelta(minutes=10)
CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True)
class ChatCursor:
    """What a chat's sync starts from: the newest `lastModifiedDateTime` read (None: read
    the chat whole), and whether the service took the `$filter` (False: read whole)."""

    modified: str | None
    filtered: bool = True

    def dumps(self) -> str:
        state = {"v": CURSOR_VERSION, "modified": self.modified, "filtered": self.filtered}
        return json.dumps(state)

    @classmethod
    def loads(cls, text: str) -> ChatCursor:
        """A stored cursor; anything unreadable means reading the chat whole once."""
        try:
            state = json.loads(text)
            if state.get("v") != CURSOR_VERSION:
                raise ValueError("cursor of another shape")
            modified = state["modified"]
            if modified is not None and not isinstance(modified, str):
                raise TypeError("modified is not text")
            return cls(modified, bool(state["filtered"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CursorExpired(f"unreadable chats cursor ({exc})") from exc


class ChatReader:
    """The reads of the chats source (`chats.GraphChatsSource`)."""

    def __init__(self, client: GraphClient, tenant: MailboxBudget) -> None:
        self.client, self.tenant = client, tenant
        self._sdk = client.sdk

    async def _user_chats(self, owner: Owner) -> list[dict[str, Any]]:
        """`/users/{id}/chats?$expand=members&$top=50`, every page."""
        params = ChatsRequestBuilder.ChatsRequestBuilderGetQueryParameters(
            expand=["members"], top=CHAT_PAGE
        )
        request = self._sdk.users.by_user_id(owner.source_id).chats.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        call = Call(f"chats of {owner.upn}", PERMISSION)
        return [chat async for chat in self._collection(request, owner.source_id, call)]

    async def _members(self, chat: dict[str, Any], owner: Owner) -> tuple[ChatMember, ...]:
        """The chat's members: those `$expand` gave, or `/chats/{id}/members` when it gave
        as many as it ever does (https://learn.microsoft.com/en-us/graph/api/chat-list)."""
        members = list(chat.get("members") or [])
        if len(members) >= EXPANDED_MEMBERS:
            chat_id = str(chat["id"])
            builder = self._sdk.chats.by_chat_id(chat_id).members
            call = Call(f"members of chat {chat_id}", PERMISSION, item=True)
            try:
                request = builder.to_get_request_information()
                members = [m async for m in self._collection(request, owner.source_id, call)]
            except SkipItem:
                pass  # gone meanwhile: keep what the listing gave
        return tuple(
            ChatMember(
                str(m.get("userId") or ""),
                str(m.get("displayName") or ""),
                str(m.get("email") or ""),
                tuple(str(r) for r in m.get("roles") or []),
            )
            for m in members
        )

    async def _messages(
        self, chat_id: str, what: str, since: str | None
    ) -> AsyncIterator[dict[str, Any]]:
        """The chat's messages, newest change first: all, or those changed after `since`
        (less `OVERLAP`) with `$orderby` and `$filter` on lastModifiedDateTime."""
        filtered = since is not None
        params = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=MESSAGE_PAGE,
            orderby=["lastModifiedDateTime desc"] if filtered else None,
            filter=f"lastModifiedDateTime gt {_graph_time(since)}" if since else None,
        )
        request = self._sdk.chats.by_chat_id(chat_id).messages.to_get_request_information(
            RequestConfiguration(query_parameters=params)
        )
        async for message in self._collection(request, chat_id, Call(what, PERMISSION)):
            yield message

    async def _collection(
        self, first: RequestInformation, lane: str, call: Call
    ) -> AsyncIterator[dict[str, Any]]:
        """Every entry of a collection, following its next links, each page a read."""
        target: RequestInformation | str | None = first
        while target is not None:
            page = await self._read(target, lane, call)
            for entry in page.get("value", []):
                yield entry
            target = page.get("@odata.nextLink")
            call = Call(call.what, call.permission, call.item, cursor=True)

    async def _message(self, chat_id: str, message_id: str) -> dict[str, Any]:
        """One message read again (a retry after the chat's bodies were dropped)."""
        builder = self._sdk.chats.by_chat_id(chat_id).messages.by_chat_message_id(message_id)
        call = Call(f"message {message_id} of chat {chat_id}", PERMISSION, item=True)
        return await self._read(builder.to_get_request_information(), chat_id, call)

    async def _read(
        self, target: RequestInformation | str, lane: str, call: Call
    ) -> dict[str, Any]:
        """One read: a slot of the tenant cap (every chats request takes one: chat message
        reads are capped at 20 a second, the other Teams reads at 30), then the lane of
        the chat (or of the user, for the listings)."""
        async with self.tenant.slot(TENANT_LANE):
            return await self.client.get_json(target, lane, call, prefer=[UNKNOWN_ENUMS])


def _graph_time(text: str) -> str:
    """`since` less the overlap, as Graph writes times (UTC, milliseconds, Z)."""
    moment = instant(text) - OVERLAP
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
