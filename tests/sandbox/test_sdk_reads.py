"""The real msgraph SDK and azure-identity read the sandbox like Microsoft Graph."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import CertificateCredential, ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.user import User
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
    MailFoldersRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from sandbox_helpers import GRAPH_SCOPE, graph_client, raw_client

from hirondelle.sandbox.server import SandboxServer


def with_sdk(sb: SandboxServer, use: Callable[[GraphServiceClient], Awaitable[Any]]) -> Any:
    """Run `use(client)` on a fresh SDK client in its own event loop."""

    async def run() -> Any:
        client, credential = graph_client(sb)
        try:
            return await use(client)
        finally:
            await credential.close()

    return asyncio.run(run())


def test_users_page_by_page_through_next_link(sb: SandboxServer) -> None:
    async def use(client: GraphServiceClient) -> list[User]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=1)
        page = await client.users.get(RequestConfiguration(query_parameters=query))
        users = list(page.value)
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users += page.value
        return users

    users = with_sdk(sb, use)
    assert [u.user_principal_name for u in users] == [u.upn for u in sb.tenant.users]
    assert all(isinstance(u, User) and u.id for u in users)


def test_mail_folders_well_known_hidden_and_children(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]

    async def use(client: GraphServiceClient) -> tuple[Any, ...]:
        mailbox = client.users.by_user_id(user.upn)
        visible = await mailbox.mail_folders.get()
        query = MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(
            include_hidden_folders="true", top=100
        )
        everything = await mailbox.mail_folders.get(RequestConfiguration(query_parameters=query))
        inbox = await mailbox.mail_folders.by_mail_folder_id("inbox").get()
        children = await mailbox.mail_folders.by_mail_folder_id(inbox.id).child_folders.get()
        return visible, everything, inbox, children

    visible, everything, inbox, children = with_sdk(sb, use)
    assert all(isinstance(f, MailFolder) for f in everything.value)
    hidden = [f for f in everything.value if f.is_hidden]
    assert hidden and not any(f.is_hidden for f in visible.value)
    assert {f.id for f in visible.value} | {f.id for f in hidden} == {
        f.id for f in everything.value
    }
    assert inbox.id == sb.tenant.folder(user.id, "inbox").id
    assert inbox.total_item_count == len(sb.tenant.messages(user.id, inbox.id))
    expected_children = {f.id for f in sb.tenant.folders(user.id) if f.parent_id == inbox.id}
    assert {f.id for f in children.value} == expected_children
    assert inbox.child_folder_count == len(expected_children)


def test_messages_parse_into_typed_models_and_page(sb: SandboxServer) -> None:
    user = sb.tenant.users[1]
    inbox = sb.tenant.folder(user.id, "inbox")
    expected = sb.tenant.messages(user.id, inbox.id)

    async def use(client: GraphServiceClient) -> list[Message]:
        folder = client.users.by_user_id(user.id).mail_folders.by_mail_folder_id(inbox.id)
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=3, orderby=["receivedDateTime"], count=True
        )
        page = await folder.messages.get(RequestConfiguration(query_parameters=query))
        assert page.odata_count == len(expected)
        messages = list(page.value)
        while page.odata_next_link:
            page = await folder.messages.with_url(page.odata_next_link).get()
            messages += page.value
        return messages

    messages = with_sdk(sb, use)
    assert [m.id for m in messages] == [m.id for m in expected]  # oldest first, all pages
    first, source = messages[0], expected[0]
    assert isinstance(first, Message)
    assert first.subject == source.subject
    assert first.internet_message_id == source.internet_message_id
    assert first.is_read == source.is_read
    assert first.parent_folder_id == inbox.id
    assert first.sender.email_address.address == source.sender[1]
    assert first.received_date_time == source.received


def test_value_streams_the_tenant_mime(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    message = sb.tenant.messages(user.id, sb.tenant.folder(user.id, "inbox").id)[0]

    async def use(client: GraphServiceClient) -> bytes:
        return (
            await client.users.by_user_id(user.id).messages.by_message_id(message.id).content.get()
        )

    assert with_sdk(sb, use) == sb.tenant.mime(user.id, message.id)


def test_select_and_extended_properties(sb: SandboxServer) -> None:
    user = sb.tenant.users[0]
    expand = (
        "singleValueExtendedProperties($filter=id eq 'Integer 0x1081' or id eq 'Integer 0x0E08')"
    )
    with raw_client(sb) as client:
        page = client.get(
            f"users/{user.id}/messages",
            params={"$select": "subject,isRead", "$expand": expand, "$top": "50"},
        ).json()
    for entry in page["value"]:
        source = sb.tenant.message(user.id, entry["id"])
        assert set(entry) == {
            "@odata.etag",
            "id",
            "subject",
            "isRead",
            "singleValueExtendedProperties",
        }
        values = {p["id"]: p["value"] for p in entry["singleValueExtendedProperties"]}
        assert values["Integer 0x0E08"] == str(source.size)
        assert values.get("Integer 0x1081") == (
            None if source.last_verb is None else str(source.last_verb)
        )


def test_immutable_id_preference_is_acknowledged(sb: SandboxServer) -> None:
    with raw_client(sb) as client:
        response = client.get("users", headers={"Prefer": 'IdType="ImmutableId"'})
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == 'IdType="ImmutableId"'


def test_certificate_credential_gets_a_token(sb: SandboxServer) -> None:
    async def run() -> str:
        credential = CertificateCredential(
            sb.tenant_id,
            sb.client_id,
            certificate_path=sb.client_cert_file,
            authority=sb.authority,
            connection_verify=sb.ca_file,
        )
        async with credential:
            return (await credential.get_token(GRAPH_SCOPE)).token

    token = asyncio.run(run())
    with raw_client(sb, token) as client:
        assert client.get("users").status_code == 200


def test_wrong_secret_is_refused_with_invalid_client(sb: SandboxServer) -> None:
    async def run() -> None:
        credential = ClientSecretCredential(
            sb.tenant_id,
            sb.client_id,
            "wrong",
            authority=sb.authority,
            connection_verify=sb.ca_file,
        )
        async with credential:
            await credential.get_token(GRAPH_SCOPE)

    with pytest.raises(ClientAuthenticationError, match="invalid_client"):
        asyncio.run(run())


def test_unknown_bearer_token_is_401(sb: SandboxServer) -> None:
    with raw_client(sb, token="not-a-token") as client:
        response = client.get("users")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_folder_size_is_served_as_its_extended_property(sb: SandboxServer) -> None:
    """A folder's size comes as PR_MESSAGE_SIZE_EXTENDED (`Long 0x0E08`) when expanded."""
    user = sb.tenant.users[0]
    with raw_client(sb) as client:
        body = client.get(
            f"users/{user.id}/mailFolders/inbox",
            params={"$expand": "singleValueExtendedProperties($filter=id eq 'Long 0x0E08')"},
        ).json()
    inbox = sb.tenant.folder(user.id, "inbox")
    expected = sb.tenant.folder_size(user.id, inbox.id)
    assert expected > 0
    assert body["singleValueExtendedProperties"] == [{"id": "Long 0x0E08", "value": str(expected)}]
