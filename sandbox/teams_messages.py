"""Channel messages in the sandbox's Graph: listings, replies, delta and hosted contents.

One `MessagesRoute` answers one request under `/teams/{t}/channels/{c}/messages` for
`TeamsService` (`teams.py`, whose docstring cites the documented behaviour): root posts
newest first with their replies on demand, a thread's replies, `messages/delta` over
root posts with its eight-month horizon, single messages, hosted contents and their
bytes, and the chatMessage JSON itself.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hirondelle.sandbox.calendar import MediaResponse
from hirondelle.sandbox.mail import (
    DELTA_SEGMENTS,
    SYNC_STATE_NOT_FOUND,
    GraphRequest,
    GraphResponse,
)
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    QueryOptions,
    decode_token,
    encode_token,
    preferences,
)
from hirondelle.sandbox.teams_data import ChannelMessage, SandboxChannel, TeamsData, iso_ms

MESSAGES_PAGE, MESSAGES_MAX = 20, 50
EXPANDED_REPLIES = 1000
KNOWN_MESSAGE_TYPES = frozenset({"message", "chatEvent", "typing"})  # before unknownFutureValue
UNKNOWN_ENUM_MEMBERS = "include-unknown-enum-members"


class MessagesRoute:
    """One request under /teams/{t}/channels/{c}/messages: list, delta, get, replies, media."""

    def __init__(
        self, data: TeamsData, request: GraphRequest, options: QueryOptions, channel: SandboxChannel
    ) -> None:
        self.data, self.request, self.options, self.channel = data, request, options, channel
        self.unknown_members = UNKNOWN_ENUM_MEMBERS in preferences(request.headers.get("Prefer"))
        self.path = f"teams/{channel.team_id}/channels/{quote(channel.id, safe='')}/messages"
        self.context = (
            f"{request.base_url}/$metadata#teams('{channel.team_id}')"
            f"/channels('{quote(channel.id, safe='')}')/messages"
        )

    def answer(self, rest: list[str]) -> GraphResponse:
        names = [name.lower() for name in rest]
        match names:
            case []:
                return self._roots()
            case [delta] if delta in DELTA_SEGMENTS:
                return self._delta()
            case [_]:
                return self._single(self._root(rest[0]))
            case [_, "replies"]:
                return self._replies(self._root(rest[0]))
            case [_, "replies", delta] if delta in DELTA_SEGMENTS:
                pass  # in the metadata, documented for no channel: refused below
            case [_, "replies", _]:
                return self._single(self._reply(rest[0], rest[2]))
            case [_, "hostedcontents", *media]:
                return hosted_response(self.context, self._root(rest[0]), rest[2:], media)
            case [_, "replies", _, "hostedcontents", *media]:
                return hosted_response(self.context, self._reply(rest[0], rest[2]), rest[4:], media)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")

    # -- lookups ----------------------------------------------------------------------------

    def _root(self, message_id: str) -> ChannelMessage:
        return root_message(self.data, self.channel.id, message_id)

    def _reply(self, root_id: str, reply_id: str) -> ChannelMessage:
        self._root(root_id)
        try:
            return self.data.reply(self.channel.id, root_id, reply_id)
        except KeyError:
            raise GraphError(404, "NotFound", "Message not found") from None

    def _json(self, message: ChannelMessage) -> JSON:
        return message_json(message, self.data.tenant_id, self.unknown_members)

    def _page_size(self) -> int:
        top = self.options.top
        if top is None:
            return MESSAGES_PAGE
        if not 1 <= top <= MESSAGES_MAX:
            message = f"Invalid page size requested: $top must be 1 to {MESSAGES_MAX}."
            raise GraphError(400, "BadRequest", message)
        return top

    def _expand(self) -> bool:
        expand = self.options.expand.strip().lower()
        if expand not in ("", "replies"):
            raise GraphError(400, "BadRequest", f"Unsupported $expand: {self.options.expand}")
        return expand == "replies"

    # -- listings ---------------------------------------------------------------------------

    def _roots(self) -> GraphResponse:
        size, expand = self._page_size(), self._expand()
        before = _cursor(self.options.skiptoken)
        roots = [m for m in reversed(self.data.roots(self.channel.id)) if int(m.id) < before]
        page = roots[:size]
        body: JSON = {"@odata.context": self.context, "@odata.count": len(page)}
        if len(roots) > size:
            # A next link carries the request's own options (https://learn.microsoft.com/
            # en-us/graph/paging): the next pages keep their size and their expanded replies.
            token = encode_token({"b": int(page[-1].id)})
            options = f"$top={size}&" + ("$expand=replies&" if expand else "")
            body["@odata.nextLink"] = (
                f"{self.request.base_url}/{self.path}?{options}$skiptoken={token}"
            )
        body["value"] = [self._with_replies(m) if expand else self._json(m) for m in page]
        return GraphResponse(body=body)

    def _with_replies(self, root: ChannelMessage) -> JSON:
        """The root with its newest 1,000 replies, and a link to the older ones."""
        entity = self._json(root)
        replies = list(reversed(self.data.replies(self.channel.id, root.id)))
        shown = replies[:EXPANDED_REPLIES]
        entity["replies@odata.count"] = len(shown)
        if len(replies) > EXPANDED_REPLIES:
            token = encode_token({"b": int(shown[-1].id), "n": MESSAGES_MAX})
            link = f"{self.request.base_url}/{self.path}/{root.id}/replies?$skiptoken={token}"
            entity["replies@odata.nextLink"] = link
        entity["replies"] = [self._json(r) for r in shown]
        return entity

    def _replies(self, root: ChannelMessage) -> GraphResponse:
        state = decode_token(self.options.skiptoken) if self.options.skiptoken else {}
        size = int(state.get("n", 0)) or self._page_size()
        before = int(state.get("b", 1 << 62))
        replies = [
            r for r in reversed(self.data.replies(self.channel.id, root.id)) if int(r.id) < before
        ]
        page = replies[:size]
        context = f"{self.context}('{root.id}')/replies"
        body: JSON = {"@odata.context": context, "@odata.count": len(page)}
        if len(replies) > size:
            token = encode_token({"b": int(page[-1].id), "n": size})
            body["@odata.nextLink"] = (
                f"{self.request.base_url}/{self.path}/{root.id}/replies?$skiptoken={token}"
            )
        body["value"] = [self._json(r) for r in page]
        return GraphResponse(body=body)

    def _single(self, message: ChannelMessage) -> GraphResponse:
        body = {"@odata.context": f"{self.context}/$entity"} | self._json(message)
        return GraphResponse(body=body)

    # -- delta ------------------------------------------------------------------------------

    def _delta(self) -> GraphResponse:
        if "$filter" in self.request.query or "filter" in self.request.query:
            raise GraphError(
                400, "BadRequest", "Parameter 'Filter' not supported for this request."
            )
        state = self._delta_state()
        if state.get("e", 0) != self.data.delta_epoch:
            raise GraphError(410, "SyncStateNotFound", SYNC_STATE_NOT_FOUND)
        roots = self.data.roots_changed(self.channel.id, int(state["s"]), int(state["u"]))
        horizon = self.data.horizon if state["h"] else None
        pending = [
            (root.seq, root)
            for root in roots
            if root.seq > int(state["a"]) and (horizon is None or root.created >= horizon)
        ]
        page = pending[: int(state["n"])]
        body: JSON = {
            "@odata.context": f"{self.request.base_url}/$metadata#Collection(chatMessage)"
        }
        link = f"{self.request.base_url}/{self.path}/delta?"
        if len(pending) > len(page):
            body["@odata.nextLink"] = (
                link + "$skiptoken=" + encode_token(state | {"a": page[-1][0]})
            )
        else:
            carry = {"s": state["u"], "u": None, "a": 0, "h": False}
            body["@odata.deltaLink"] = link + "$deltatoken=" + encode_token(state | carry)
        render = self._with_replies if state["x"] else self._json
        body["value"] = [
            {"@odata.type": "#microsoft.graph.chatMessage"} | render(r) for _, r in page
        ]
        return GraphResponse(body=body)

    def _delta_state(self) -> dict[str, Any]:
        """The round's state: from a token, or a fresh initial round (with the horizon)."""
        token = self.options.skiptoken or self.options.deltatoken
        if token is None:
            return {
                "s": 0,
                "u": self.data.seq,
                "a": 0,
                "h": True,
                "n": self._page_size(),
                "x": self._expand(),
                "e": self.data.delta_epoch,
            }
        state = decode_token(token)
        if not {"s", "u", "a", "h", "n", "x"} <= state.keys():
            raise GraphError(400, "BadRequest", "The state token is malformed.")
        if state["u"] is None:  # a deltaLink: the round covers changes up to now
            state["u"] = self.data.seq
        return state


def root_message(data: TeamsData, channel_id: str, message_id: str) -> ChannelMessage:
    """A root message of a channel (or a chat); Graph's 404 when there is none."""
    try:
        return data.root(channel_id, message_id)
    except KeyError:
        raise GraphError(404, "NotFound", "Message not found") from None


def hosted_response(
    context: str, message: ChannelMessage, rest: list[str], names: list[str]
) -> GraphResponse:
    """A message's hosted contents under `context` (its messages' collection): the list,
    one entity, or its bytes at `$value`; channel and chat messages answer alike."""
    base = f"{context}('{message.id}')/hostedContents"
    if not rest:
        body: JSON = {"@odata.context": base, "@odata.count": len(message.hosted)}
        body["value"] = [hosted_json(h.id) for h in message.hosted]
        return GraphResponse(body=body)
    found = next((h for h in message.hosted if h.id == rest[0]), None)
    if found is None or names[1:] not in ([], ["$value"]):
        raise GraphError(404, "NotFound", "Hosted content not found")
    if names[1:] == ["$value"]:
        return MediaResponse(headers={"Content-Type": found.content_type}, content=found.data)
    return GraphResponse(body={"@odata.context": f"{base}/$entity"} | hosted_json(found.id))


def _cursor(token: str | None) -> int:
    return int(decode_token(token).get("b", 1 << 62)) if token else 1 << 62


# --- the wire format -------------------------------------------------------------------------


def identity_set(message: ChannelMessage, tenant_id: str) -> JSON | None:
    """`from`: a user or an application (a bot); None for system events."""
    sender = message.sender
    if sender is None:
        return None
    found: JSON = {"application": None, "device": None, "user": None}
    if sender.kind == "application":
        found["application"] = {
            "@odata.type": "#microsoft.graph.teamworkApplicationIdentity",
            "id": sender.id,
            "displayName": sender.display_name,
            "applicationIdentityType": "bot",
        }
    else:
        found["user"] = {
            "@odata.type": "#microsoft.graph.teamworkUserIdentity",
            "id": sender.id,
            "displayName": sender.display_name,
            "userIdentityType": "aadUser",
            "tenantId": tenant_id,
        }
    return found


def message_json(message: ChannelMessage, tenant_id: str, unknown_members: bool) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/chatmessage"""
    message_type = message.message_type
    if message_type not in KNOWN_MESSAGE_TYPES and not unknown_members:
        message_type = "unknownFutureValue"
    channel = quote(message.channel_id, safe="")
    web_url = (
        f"https://teams.microsoft.com/l/message/{channel}/{message.id}?groupId={message.team_id}"
        f"&tenantId={tenant_id}&createdTime={message.id}&parentMessageId={message.root_id}"
    )
    return {
        "id": message.id,
        "replyToId": None if message.is_root else message.root_id,
        "etag": message.etag,
        "messageType": message_type,
        "createdDateTime": iso_ms(message.created),
        "lastModifiedDateTime": iso_ms(message.modified),
        "lastEditedDateTime": iso_ms(message.edited),
        "deletedDateTime": iso_ms(message.deleted),
        "subject": message.subject,
        "summary": message.summary,
        "chatId": None,
        "importance": message.importance,
        "locale": "en-us",
        "webUrl": web_url,
        "policyViolation": None,
        "eventDetail": message.event_detail,
        "from": identity_set(message, tenant_id),
        "body": {"contentType": message.content_type, "content": message.body},
        "channelIdentity": {"teamId": message.team_id, "channelId": message.channel_id},
        "attachments": list(message.attachments),
        "mentions": list(message.mentions),
        "reactions": list(message.reactions),
        "messageHistory": [],
    }


def hosted_json(hosted_id: str) -> JSON:
    """Listing and getting a hosted content give its id only; `$value` gives the bytes."""
    return {"id": hosted_id, "contentBytes": None, "contentType": None}
