"""Teams, channels, members and channel messages through the real msgraph SDK's typed models."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.channel import Channel
from msgraph.generated.models.channel_membership_type import ChannelMembershipType
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.chat_message_type import ChatMessageType
from msgraph.generated.models.members_added_event_message_detail import (
    MembersAddedEventMessageDetail,
)
from msgraph.generated.models.team import Team
from msgraph.generated.teams.item.channels.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from sandbox_helpers import graph_client
from teams_helpers import PREFER_ALL

from hirondelle.sandbox.server import SandboxServer

TEAM_FILTER = "resourceProvisioningOptions/Any(x:x eq 'Team')"


def with_sdk(sb: SandboxServer, use: Callable[[GraphServiceClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        client, credential = graph_client(sb)
        try:
            return await use(client)
        finally:
            await credential.close()

    return asyncio.run(run())


def test_teams_are_listed_by_teams_and_by_the_groups_filter(sb: SandboxServer) -> None:
    async def use(client: GraphServiceClient) -> tuple[Any, Any, Any, Any]:
        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(filter=TEAM_FILTER)
        filtered = await client.groups.get(RequestConfiguration(query_parameters=query))
        every_group = await client.groups.get()
        teams = await client.teams.get()
        first = await client.teams.by_team_id(teams.value[0].id).get()
        return filtered, every_group, teams, first

    filtered, every_group, teams, first = with_sdk(sb, use)
    assert [t.display_name for t in teams.value] == ["Projet Hirondelle", "Vie de bureau"]
    assert all(isinstance(t, Team) for t in teams.value)
    assert [g.id for g in filtered.value] == [t.id for t in teams.value]
    assert "Comité d'entreprise" in [g.display_name for g in every_group.value]
    assert isinstance(first, Team) and first.summary.owners_count == 1
    site = sb.tenant.drives.site("ProjetHirondelle")
    assert first.id == site.group_id  # the team's files live in the seeded SharePoint site


def test_channels_have_their_membership_type_and_members_their_roles(sb: SandboxServer) -> None:
    data = sb.tenant.teams
    first, second = data.teams[0].id, data.teams[1].id

    async def use(client: GraphServiceClient) -> tuple[Any, Any, Any, Any]:
        channels = await client.teams.by_team_id(first).channels.get()
        shared_in = await client.teams.by_team_id(second).all_channels.get()
        members = await client.teams.by_team_id(first).members.get()
        private = next(c for c in channels.value if c.display_name == "Direction")
        private_members = (
            await client.teams.by_team_id(first).channels.by_channel_id(private.id).members.get()
        )
        return channels, shared_in, members, private_members

    channels, shared_in, members, private_members = with_sdk(sb, use)
    assert all(isinstance(c, Channel) for c in channels.value)
    assert [c.membership_type for c in channels.value] == [
        ChannelMembershipType.Standard,
        ChannelMembershipType.Standard,
        ChannelMembershipType.Private,
        ChannelMembershipType.Shared,
    ]
    assert "Partenaires" in [c.display_name for c in shared_in.value]  # shared by team 1
    assert all(isinstance(m, AadUserConversationMember) for m in members.value)
    assert [m.roles for m in members.value].count(["owner"]) == 1
    assert len(members.value) == 3 and len(private_members.value) == 2


def test_channel_messages_parse_as_chat_messages(sb: SandboxServer) -> None:
    data = sb.tenant.teams
    team = data.teams[0].id
    channel = data.channels(team)[0].id

    async def use(client: GraphServiceClient) -> list[ChatMessage]:
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=50, expand=["replies"]
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", PREFER_ALL["Prefer"])
        builder = client.teams.by_team_id(team).channels.by_channel_id(channel).messages
        page = await builder.get(config)
        found = list(page.value)
        while page.odata_next_link:
            page = await builder.with_url(page.odata_next_link).get(config)
            found += page.value
        return found

    roots = with_sdk(sb, use)
    assert len(roots) == 30 and all(isinstance(m, ChatMessage) for m in roots)
    first = roots[-1]  # newest first: the oldest post is the channel's first system event
    assert first.message_type == ChatMessageType.SystemEventMessage
    assert isinstance(first.event_detail, MembersAddedEventMessageDetail)
    mentioned = [m for m in roots if m.mentions and len(m.mentions) == 3][0]
    assert mentioned.mentions[0].mentioned.user.display_name in mentioned.body.content
    assert mentioned.mentions[2].mentioned.conversation.display_name == "General"
    files = [a for m in roots for a in m.attachments or [] if a.content_type == "reference"]
    assert files and all(a.content_url.startswith("https://") for a in files)
    kinds = {r.reaction_type for m in roots for r in m.reactions or []}
    assert {"like", "heart", "laugh", "💯", "custom"} <= kinds
    replies = [r for m in roots for r in m.replies or []]
    assert replies and all(r.reply_to_id for r in replies)
