"""The sandbox's Teams part of Graph: teams, channels, members, channel messages, delta.

Serves `tenant.teams` (`teams_data.py`) the way the service answers, per Microsoft Learn:

- Teams are listed by `/teams` or by `/groups?$filter=resourceProvisioningOptions/Any(x:x eq
  'Team')`; `/teams/{id}/channels` lists the channels the team hosts (standard, private,
  shared), `/allChannels` adds the shared channels other teams share with it:
  https://learn.microsoft.com/en-us/graph/api/team-list-allchannels
- Channel messages list root posts only, newest first, 20 a page by default and at most 50
  (`$top`); `$expand=replies` brings up to 1,000 replies per post (newest first) and a
  `replies@odata.nextLink` for the rest. Replies page on their own, at most 50 at a time:
  https://learn.microsoft.com/en-us/graph/api/channel-list-messages
  https://learn.microsoft.com/en-us/graph/api/chatmessage-list-replies
- `messages/delta` lists root posts only, oldest change first, and only those created in
  the eight months before the sandbox's "now" (the latest seeded date). A later round
  reports a root again when the root itself changed (edited, deleted), never because a
  reply was posted, edited or deleted in its thread: the page lists "messages (without the
  replies)" and sends to list replies for those
  (https://learn.microsoft.com/en-us/graph/api/chatmessage-delta), and a root's
  `lastModifiedDateTime` moves when it is "created (initial setting) or modified, including
  when a reaction is added or removed", not for a reply
  (https://learn.microsoft.com/en-us/graph/api/resources/chatmessage; the wording that
  included replies was withdrawn: microsoftgraph/microsoft-graph-docs issue 6693). Only
  `$filter` is said to fetch whole "reply chains", and the service refuses it with
  application permissions (microsoftgraph/microsoft-graph-docs issue 20728), so an app
  must find new replies to old threads by reading the threads again. Deleted messages are
  never `@removed`: they come back with `deletedDateTime` set and an empty body. The
  metadata also names `messages/{id}/replies/delta`, which no page documents for
  channels: it is not served.
- `messageType` is an evolvable enum: `systemEventMessage` comes after `unknownFutureValue`,
  so it reads `unknownFutureValue` unless the request sends `Prefer:
  include-unknown-enum-members` (the `eventDetail` object is there either way):
  https://learn.microsoft.com/en-us/graph/best-practices-concept#handling-future-members-in-evolvable-enumerations
- Channel messages are protected APIs: with application permissions an app reads them only
  once Microsoft approved it (https://learn.microsoft.com/en-us/graph/teams-protected-apis).
  `protected_apis_approved = False` plays an app still waiting: every request under
  `/messages` answers 403 `Forbidden` with the message the service gives (quoted in
  github.com/leeford/Backup-TeamsChat/issues/12); teams, channels and members still answer.
- Hosted contents list ids only (`contentBytes` and `contentType` null); `$value` is the bytes.
- Throttling: at most 4 requests per second per app on one team or channel, and 20 channel
  message reads per second per app and tenant, answered with 429 and `Retry-After`:
  https://learn.microsoft.com/en-us/graph/throttling-limits#microsoft-teams-service-limits
  The mail `Limits` switch and scale it (`enabled`, `scale`), like every other throttle.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from hirondelle.sandbox.mail import (
    GraphRequest,
    GraphResponse,
)
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    QueryOptions,
    decode_token,
    encode_token,
    select_keys,
)
from hirondelle.sandbox.service import Gate
from hirondelle.sandbox.teams_data import (
    Member,
    SandboxChannel,
    SandboxGroup,
    SandboxTeam,
    TeamsData,
    channel_web_url,
    iso_ms,
)
from hirondelle.sandbox.teams_messages import MessagesRoute
from hirondelle.sandbox.throttle import Limits, MailboxThrottle, Refusal

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

PER_RESOURCE_PER_SECOND = 4  # "A maximum of 4 requests per second per app ... team or channel"
MESSAGE_READS_PER_SECOND = 20  # "GET channel message": 20 rps per app per tenant
DIRECTORY_PAGE, DIRECTORY_MAX = 100, 999
TEAM_FILTER = re.compile(
    r"^\s*resourceProvisioningOptions/any\(\s*(\w+)\s*:\s*\1\s+eq\s+'Team'\s*\)\s*$", re.I
)
UNIFIED_FILTER = re.compile(
    r"^\s*groupTypes/any\(\s*(\w+)\s*:\s*\1\s+eq\s+'Unified'\s*\)\s*$", re.I
)
TENANT_BUCKET = "tenant:channel-message-reads"
CHAT_BUCKET = "tenant:chat-message-reads"  # "GET 1:1/group chat message": 20 rps as well
PROTECTED_API_REFUSAL = (
    "Invoked API requires Protected API access in application-only context when not using "
    "Resource Specific Consent. Visit https://docs.microsoft.com/en-us/graph/teams-protected-apis "
    "for more details."
)
_MESSAGES, _CHANNEL, _TEAM = "teams-messages:", "teams-channel:", "teams-team:"
CHAT_MESSAGES = "teams-chat-messages:"  # a chat's message reads (`chats.ChatsService`)


# --- throttling ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamsRefusal(Refusal):
    """A refusal with the status, code and message Graph's throttling page shows."""

    status: int = 429
    code: str = "TooManyRequests"  # https://learn.microsoft.com/en-us/graph/throttling
    message: str = "Please retry again later."
    headers: dict[str, str] = field(default_factory=dict)


class TeamsThrottle:
    """Per-second windows per team or channel, and one per tenant for channel message reads.

    Gate keys name the resource: "teams-messages:<channel>" (a message read: counts on the
    channel and on the tenant), "teams-channel:<channel>", "teams-team:<team>". Refused
    requests do not count. Runs on the server's event loop only, so it needs no lock.
    """

    def __init__(
        self, limits: Callable[[], Limits], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._seen: Limits | None = None
        self._windows: dict[str, deque[float]] = {}

    def admit(self, key: str) -> Refusal | None:
        limits = self._limits()
        if not limits.enabled:
            return None
        if limits is not self._seen:  # new limits are counted afresh
            self._seen, self._windows = limits, {}
        length, now = max(limits.scale, 1e-3), self._clock()
        resource = key.split(":", 1)[1].lower()
        checks = [(resource, PER_RESOURCE_PER_SECOND, "ChannelOrTeamRequests")]
        if key.startswith(_MESSAGES):
            checks.append((TENANT_BUCKET, MESSAGE_READS_PER_SECOND, "ChannelMessageReads"))
        elif key.startswith(CHAT_MESSAGES):  # the page names no per-chat rate
            checks = [(CHAT_BUCKET, MESSAGE_READS_PER_SECOND, "ChatMessageReads")]
        for bucket, count, name in checks:
            window = self._windows.setdefault(bucket, deque())
            while window and window[0] <= now - length:
                window.popleft()
            if len(window) >= max(1, round(count * limits.scale)):
                wait = window[0] + length - now
                return TeamsRefusal(name, max(1, math.ceil(wait)))
        for bucket, _, _ in checks:
            self._windows[bucket].append(now)
        return None

    def release(self, key: str) -> None:
        """Nothing to release: Teams limits rates, not concurrency."""


# --- the service ---------------------------------------------------------------------------------


class TeamsService:
    """Routes Graph requests on groups, teams, channels and channel messages."""

    def __init__(self, tenant: Tenant, throttle: MailboxThrottle) -> None:
        self.tenant = tenant
        self.throttle = TeamsThrottle(lambda: throttle.limits)
        self.protected_apis_approved = True  # False: channel messages answer 403

    @property
    def data(self) -> TeamsData:
        return self.tenant.teams

    def owns(self, request: GraphRequest) -> bool:
        names = request.names
        return bool(names) and (names[0] == "teams" or (names[0] == "groups" and len(names) <= 2))

    def gate(self, request: GraphRequest) -> Gate | None:
        names, segments = request.names, request.segments
        if names[0] != "teams" or len(names) < 2:
            return None  # directory listings: not a Teams resource
        if len(names) >= 4 and names[2] == "channels":
            kind = _MESSAGES if len(names) >= 5 and names[4] == "messages" else _CHANNEL
            return Gate(self.throttle, kind + segments[3])
        return Gate(self.throttle, _TEAM + segments[1])

    def handle(self, request: GraphRequest) -> GraphResponse:
        if request.method != "GET":
            raise GraphError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        options = QueryOptions.parse(request.query)
        if request.names[0] == "groups":
            return self._groups(request, options)
        return self._teams_route(request, options)

    # -- directory ----------------------------------------------------------------------------

    def _groups(self, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        if len(request.segments) == 2:
            group = self._group(request.segments[1])
            body = {"@odata.context": f"{request.base_url}/$metadata#groups/$entity"}
            return GraphResponse(body=body | select_keys(group, options.select))
        groups = [group_json(t, True, self.data.tenant_id) for t in self.data.teams]
        groups += [group_json(g, False, self.data.tenant_id) for g in self.data.groups]
        wanted = request.query.get("$filter", request.query.get("filter"))
        if wanted and TEAM_FILTER.match(wanted):
            groups = [g for g in groups if "Team" in g["resourceProvisioningOptions"]]
        elif wanted and not UNIFIED_FILTER.match(wanted):
            message = f"Unsupported or invalid query filter clause specified: '{wanted}'."
            raise GraphError(400, "Request_UnsupportedQuery", message)
        return self._directory_page(request, options, "groups", groups)

    def _group(self, key: str) -> JSON:
        for team in self.data.teams:
            if team.id.lower() == key.lower():
                return group_json(team, True, self.data.tenant_id)
        for group in self.data.groups:
            if group.id.lower() == key.lower():
                return group_json(group, False, self.data.tenant_id)
        message = f"Resource '{key}' does not exist or one of its queried reference-property"
        raise GraphError(404, "Request_ResourceNotFound", message + " objects are not present.")

    def _directory_page(
        self, request: GraphRequest, options: QueryOptions, entity: str, rows: list[JSON]
    ) -> GraphResponse:
        size = options.page_size(default=DIRECTORY_PAGE, maximum=DIRECTORY_MAX)
        start = int(decode_token(options.skiptoken).get("o", 0)) if options.skiptoken else 0
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#{entity}"}
        body["value"] = [select_keys(row, options.select) for row in rows[start : start + size]]
        if start + size < len(rows):
            body["@odata.nextLink"] = request.link(skiptoken=encode_token({"o": start + size}))
        return GraphResponse(body=body)

    # -- teams and channels -------------------------------------------------------------------

    def _teams_route(self, request: GraphRequest, options: QueryOptions) -> GraphResponse:
        names, segments = request.names, request.segments
        if names == ["teams"]:
            rows = [team_summary_json(t, self.data.tenant_id) for t in self.data.teams]
            return self._directory_page(request, options, "teams", rows)
        team = self._team(segments[1])
        tenant_id = self.data.tenant_id
        match names[2:]:
            case []:
                members = len(team.members)
                body = team_json(team, tenant_id, members)
                return self._entity(request, "teams/$entity", body, options)
            case ["members"]:
                return self._members(request, team.members, f"teams('{team.id}')/members")
            case ["channels"] | ["allchannels"] | ["incomingchannels"]:
                return self._channels(request, options, team, names[2])
            case ["primarychannel"]:
                body = channel_json(self.data.channels(team.id)[0], tenant_id)
                return self._entity(
                    request, f"teams('{team.id}')/primaryChannel/$entity", body, options
                )
        if len(names) < 4 or names[2] != "channels":
            raise GraphError(
                400, "BadRequest", f"Resource not found for the segment '{segments[-1]}'."
            )
        channel = self._channel(team, segments[3])
        if names[4:] == []:
            body = channel_json(channel, tenant_id)
            return self._entity(request, f"teams('{team.id}')/channels/$entity", body, options)
        if names[4:] == ["members"]:
            context = f"teams('{team.id}')/channels('{quote(channel.id)}')/members"
            return self._members(request, channel.members, context)
        if len(names) > 4 and names[4] == "messages":
            if not self.protected_apis_approved:
                raise GraphError(403, "Forbidden", PROTECTED_API_REFUSAL)
            return MessagesRoute(self.data, request, options, channel).answer(segments[5:])
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segments[-1]}'.")

    def _team(self, key: str) -> SandboxTeam:
        try:
            return self.data.team(key)
        except KeyError:
            raise GraphError(404, "NotFound", f"No team found with Group Id {key}") from None

    def _channel(self, team: SandboxTeam, key: str) -> SandboxChannel:
        try:
            return self.data.channel(team.id, key)
        except KeyError:
            raise GraphError(404, "NotFound", "Channel not found") from None

    def _entity(
        self, request: GraphRequest, context: str, entity: JSON, options: QueryOptions
    ) -> GraphResponse:
        body = {"@odata.context": f"{request.base_url}/$metadata#{context}"}
        return GraphResponse(body=body | select_keys(entity, options.select))

    def _channels(
        self, request: GraphRequest, options: QueryOptions, team: SandboxTeam, which: str
    ) -> GraphResponse:
        hosted, incoming = self.data.channels(team.id), self.data.incoming_channels(team.id)
        chosen = {"channels": hosted, "allchannels": hosted + incoming}.get(which, incoming)
        rows = [channel_json(c, self.data.tenant_id) for c in chosen]
        wanted = request.query.get("$filter", request.query.get("filter"))
        if wanted:
            found = re.fullmatch(r"\s*membershipType\s+eq\s+'(\w+)'\s*", wanted, re.I)
            if not found:
                raise GraphError(400, "BadRequest", f"Invalid filter clause: {wanted}")
            rows = [r for r in rows if r["membershipType"].lower() == found[1].lower()]
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#teams('{team.id}')/{which}"}
        body["@odata.count"] = len(rows)
        body["value"] = [select_keys(r, options.select) for r in rows]
        return GraphResponse(body=body)

    def _members(
        self, request: GraphRequest, members: Sequence[Member], context: str
    ) -> GraphResponse:
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#{context}"}
        body["@odata.count"] = len(members)
        body["value"] = [member_json(m, context, self.data.tenant_id) for m in members]
        return GraphResponse(body=body)


# --- the wire format -----------------------------------------------------------------------------


def internal_id(team: SandboxTeam) -> str:
    return f"19:{team.id.replace('-', '')}@thread.skype"


def team_json(team: SandboxTeam, tenant_id: str, members: int) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/team-get"""
    owners = sum(1 for m in team.members if "owner" in m.roles)
    return team_summary_json(team, tenant_id) | {
        "createdDateTime": iso_ms(team.created),
        "internalId": internal_id(team),
        "specialization": "none",
        "webUrl": (
            f"https://teams.microsoft.com/l/team/{quote(internal_id(team), safe='')}"
            f"/conversations?groupId={team.id}&tenantId={tenant_id}"
        ),
        "isMembershipLimitedToOwners": False,
        "memberSettings": {"allowCreateUpdateChannels": True, "allowCreatePrivateChannels": True},
        "guestSettings": {"allowCreateUpdateChannels": False, "allowDeleteChannels": False},
        "messagingSettings": {"allowUserEditMessages": True, "allowUserDeleteMessages": True},
        "funSettings": {"allowGiphy": True, "giphyContentRating": "moderate"},
        "discoverySettings": {"showInTeamsSearchAndSuggestions": True},
        "summary": {"ownersCount": owners, "membersCount": members - owners, "guestsCount": 0},
    }


def team_summary_json(team: SandboxTeam, tenant_id: str) -> JSON:
    """A team as `/teams` lists it: the basic properties, the others null."""
    return {
        "id": team.id,
        "createdDateTime": None,
        "displayName": team.display_name,
        "description": team.description,
        "internalId": None,
        "classification": None,
        "specialization": None,
        "visibility": team.visibility,
        "webUrl": None,
        "isArchived": False,
        "tenantId": tenant_id,
        "isMembershipLimitedToOwners": None,
    }


def group_json(group: SandboxTeam | SandboxGroup, is_team: bool, tenant_id: str) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/group"""
    mail = f"{group.mail_nickname}@contoso.onmicrosoft.com"
    return {
        "id": group.id,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": iso_ms(group.created),
        "creationOptions": ["Team"] if is_team else [],
        "description": group.description,
        "displayName": group.display_name,
        "groupTypes": ["Unified"],
        "mail": mail,
        "mailEnabled": True,
        "mailNickname": group.mail_nickname,
        "proxyAddresses": [f"SMTP:{mail}"],
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": ["Team"] if is_team else [],
        "securityEnabled": False,
        "visibility": getattr(group, "visibility", "private").capitalize(),
    }


def channel_json(channel: SandboxChannel, tenant_id: str) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/channel"""
    return {
        "id": channel.id,
        "createdDateTime": iso_ms(channel.created),
        "displayName": channel.display_name,
        "description": channel.description,
        "isFavoriteByDefault": None,
        "email": "",
        "tenantId": tenant_id,
        "webUrl": channel_web_url(channel, tenant_id),
        "membershipType": channel.membership_type,
        "isArchived": False,
    }


def member_json(member: Member, container: str, tenant_id: str) -> JSON:
    """An aadUserConversationMember: roles ["owner"] for owners, [] for members."""
    raw = f"0#{container}#{member.user_id}".encode()
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "roles": list(member.roles),
        "displayName": member.display_name,
        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
        "userId": member.user_id,
        "email": member.email,
        "tenantId": tenant_id,
    }
