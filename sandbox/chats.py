"""The sandbox's Teams chats in Graph: a user's chats, a chat's members and its messages.

Serves `tenant.chats` (`chats_data.py`) the way the service answers, per Microsoft Learn:

- `/users/{id | upn}/chats` lists the chats the user is a member of, at most 50 a page
  (`$top`); `$expand=members` expands at most 25 members of a chat, whatever `$top` says
  (the page's known issue): https://learn.microsoft.com/en-us/graph/api/chat-list
- `/chats/{id}/members` lists them all:
  https://learn.microsoft.com/en-us/graph/api/chat-list-members
- `/chats/{id}/messages` lists the chat's messages newest first by `lastModifiedDateTime`
  (or by `createdDateTime`, descending only), at most 50 a page; `$filter` takes
  `lastModifiedDateTime gt|lt <time>` and `createdDateTime lt <time>`, and is ignored
  unless `$orderby` names the same property:
  https://learn.microsoft.com/en-us/graph/api/chat-list-messages
  A deleted message stays listed with `deletedDateTime` set; an edit, a deletion or a
  reaction moves `lastModifiedDateTime`
  (https://learn.microsoft.com/en-us/graph/api/resources/chatmessage).
- Hosted contents answer their bytes at `.../hostedContents/{id}/$value`.
- Chat messages are protected APIs (https://learn.microsoft.com/en-us/graph/teams-protected-apis):
  with the tenant's Teams `protected_apis_approved` False they answer 403 as channel
  messages do.
- Throttling: 20 chat message reads per second per app and tenant
  (https://learn.microsoft.com/en-us/graph/throttling-limits#microsoft-teams-service-limits),
  counted by the Teams throttle (`teams.TeamsThrottle`); the page names no per-chat rate.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from hirondelle.sandbox.mail import GraphRequest, GraphResponse
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    QueryOptions,
    decode_token,
    encode_token,
    preferences,
)
from hirondelle.sandbox.service import Gate
from hirondelle.sandbox.teams import CHAT_MESSAGES, PROTECTED_API_REFUSAL, member_json
from hirondelle.sandbox.teams_data import ChannelMessage, epoch_ms
from hirondelle.sandbox.teams_messages import (
    UNKNOWN_ENUM_MEMBERS,
    hosted_response,
    message_json,
    root_message,
)

from .chats_data import ChatsData, SandboxChat, chat_json

if TYPE_CHECKING:
    from hirondelle.sandbox.teams import TeamsService
    from hirondelle.sandbox.tenant import Tenant

CHATS_MAX = 50
MESSAGES_PAGE, MESSAGES_MAX = 20, 50
EXPANDED_MEMBERS = 25
_CLAUSE = re.compile(r"^\s*(lastModifiedDateTime|createdDateTime)\s+(gt|lt)\s+(\S+)\s*$", re.I)


class ChatsService:
    """Routes Graph requests on users' chats and on chats."""

    def __init__(self, tenant: Tenant, teams: TeamsService) -> None:
        self.tenant, self.teams = tenant, teams

    @property
    def data(self) -> ChatsData:
        return self.tenant.chats

    def owns(self, request: GraphRequest) -> bool:
        names = request.names
        if names[:1] == ["chats"]:
            return True
        return len(names) >= 3 and names[0] == "users" and names[2] == "chats"

    def gate(self, request: GraphRequest) -> Gate | None:
        names, segments = request.names, request.segments
        if names[0] == "chats" and len(names) >= 3 and names[2] == "messages":
            return Gate(self.teams.throttle, CHAT_MESSAGES + segments[1])
        return None

    def handle(self, request: GraphRequest) -> GraphResponse:
        if request.method != "GET":
            raise GraphError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        options = QueryOptions.parse(request.query)
        names, segments = request.names, request.segments
        if names[0] == "users":
            if len(names) != 3:
                raise GraphError(400, "BadRequest", f"Resource not found: '{segments[-1]}'.")
            return self._chats(request, options, segments[1])
        chat = self._chat(segments[1]) if len(segments) > 1 else None
        if chat is None:
            raise GraphError(400, "BadRequest", "Listing every chat needs delegated access.")
        match names[2:]:
            case []:
                body = {"@odata.context": f"{request.base_url}/$metadata#chats/$entity"}
                return GraphResponse(body=body | chat_json(chat, self.data.tenant_id))
            case ["members"]:
                return self._members(request, chat)
        if names[2] != "messages":
            raise GraphError(400, "BadRequest", f"Resource not found: '{segments[-1]}'.")
        if not self.teams.protected_apis_approved:
            raise GraphError(403, "Forbidden", PROTECTED_API_REFUSAL)
        return _Messages(self.data, request, options, chat).answer(segments[3:])

    # -- chats and members -------------------------------------------------------------------

    def _chats(self, request: GraphRequest, options: QueryOptions, key: str) -> GraphResponse:
        user = next(
            (u for u in self.tenant.users if key.lower() in (u.id.lower(), u.upn.lower())), None
        )
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
        expand = options.expand.strip().lower()
        if expand not in ("", "members"):
            raise GraphError(400, "BadRequest", f"Unsupported $expand: {options.expand}")
        size = options.page_size(default=CHATS_MAX, maximum=CHATS_MAX)
        start = int(decode_token(options.skiptoken).get("o", 0)) if options.skiptoken else 0
        chats = self.data.chats_of(user.id)
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#chats"}
        rows = []
        for chat in chats[start : start + size]:
            row = chat_json(chat, self.data.tenant_id)
            if expand:
                shown = chat.members[:EXPANDED_MEMBERS]
                row["members"] = [member_json(m, chat.id, self.data.tenant_id) for m in shown]
            rows.append(row)
        body["@odata.count"] = len(rows)
        if start + size < len(chats):
            body["@odata.nextLink"] = request.link(skiptoken=encode_token({"o": start + size}))
        body["value"] = rows
        return GraphResponse(body=body)

    def _members(self, request: GraphRequest, chat: SandboxChat) -> GraphResponse:
        context = f"chats('{quote(chat.id, safe='')}')/members"
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#{context}"}
        body["@odata.count"] = len(chat.members)
        body["value"] = [member_json(m, chat.id, self.data.tenant_id) for m in chat.members]
        return GraphResponse(body=body)

    def _chat(self, key: str) -> SandboxChat:
        try:
            return self.data.chat(key)
        except KeyError:
            raise GraphError(404, "NotFound", f"Chat {key} not found.") from None


class _Messages:
    """One request under /chats/{id}/messages: list, get, hosted contents."""

    def __init__(
        self, data: ChatsData, request: GraphRequest, options: QueryOptions, chat: SandboxChat
    ) -> None:
        self.data, self.request, self.options, self.chat = data, request, options, chat
        self.unknown = UNKNOWN_ENUM_MEMBERS in preferences(request.headers.get("Prefer"))
        self.context = f"{request.base_url}/$metadata#chats('{quote(chat.id, safe='')}')/messages"

    def answer(self, rest: list[str]) -> GraphResponse:
        names = [name.lower() for name in rest]
        match names:
            case []:
                return self._list()
            case [_]:
                body = {"@odata.context": f"{self.context}/$entity"}
                return GraphResponse(body=body | self._json(self._message(rest[0])))
            case [_, "hostedcontents", *media]:
                return hosted_response(self.context, self._message(rest[0]), rest[2:], media)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")

    def _message(self, message_id: str) -> ChannelMessage:
        return root_message(self.data, self.chat.id, message_id)

    def _json(self, message: ChannelMessage) -> JSON:
        return chat_message_json(message, self.data.tenant_id, self.unknown)

    def _list(self) -> GraphResponse:
        options = self.options
        size = options.page_size(default=MESSAGES_PAGE, maximum=MESSAGES_MAX)
        field = _order(options.orderby)
        messages = self.data.roots(self.chat.id)
        for prop, operator, moment in _filters(self.request, field):
            stamp = epoch_ms(moment)
            messages = [
                m
                for m in messages
                if (_key(m, prop)[0] > stamp if operator == "gt" else _key(m, prop)[0] < stamp)
            ]
        ordered = sorted(messages, key=lambda m: _key(m, field), reverse=True)
        if options.skiptoken:
            after = tuple(decode_token(options.skiptoken)["k"])
            ordered = [m for m in ordered if _key(m, field) < (after[0], after[1])]
        page = ordered[:size]
        body: JSON = {"@odata.context": self.context, "@odata.count": len(page)}
        if len(ordered) > size:
            token = encode_token({"k": list(_key(page[-1], field))})
            body["@odata.nextLink"] = self.request.link(skiptoken=token)
        body["value"] = [self._json(m) for m in page]
        return GraphResponse(body=body)


def chat_message_json(message: ChannelMessage, tenant_id: str, unknown_members: bool) -> JSON:
    """A chat's chatMessage: the channel's wire format with the chat's id and no channel."""
    entity = message_json(message, tenant_id, unknown_members)
    entity.update(chatId=message.channel_id, channelIdentity=None, webUrl=None, replyToId=None)
    return entity


def _order(orderby: str) -> str:
    """The property listed by, descending: the default, or what `$orderby` asks for."""
    if not orderby.strip():
        return "lastmodifieddatetime"
    found = re.fullmatch(r"\s*(lastModifiedDateTime|createdDateTime)(\s+desc)?\s*", orderby, re.I)
    if found is None or not found[2]:
        message = "Only descending order on lastModifiedDateTime or createdDateTime is supported."
        raise GraphError(400, "BadRequest", message)
    return found[1].lower()


def _filters(request: GraphRequest, field: str) -> list[tuple[str, str, datetime]]:
    """The `$filter` clauses that apply: none unless they are on the `$orderby` property."""
    text = request.query.get("$filter", request.query.get("filter"))
    if not text:
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text, flags=re.I):
        found = _CLAUSE.match(part)
        if found is None:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: {text}")
        prop, operator = found[1].lower(), found[2].lower()
        if prop == "createddatetime" and operator == "gt":
            raise GraphError(400, "BadRequest", "createdDateTime supports the lt operator only.")
        try:
            moment = datetime.fromisoformat(found[3].replace("Z", "+00:00"))
        except ValueError:
            raise GraphError(400, "BadRequest", f"Invalid date: {found[3]}") from None
        clauses.append((prop, operator, moment))
    if any(prop != field for prop, _, _ in clauses):
        return []  # "otherwise, the $filter query option is ignored"
    return clauses


def _key(message: ChannelMessage, field: str) -> tuple[int, int]:
    moment = message.modified if field == "lastmodifieddatetime" else message.created
    return epoch_ms(moment), int(message.id)
