"""The tenant's users, read once for every Outlook workload (mail, calendar, contacts).

Each workload's `Source.owners` is the same question asked of the directory, so
the answer lives here rather than in one of them. `/users` is paged with the
largest documented page (999): https://learn.microsoft.com/en-us/graph/api/user-list
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from ...migrator.model import Owner
from .client import TENANT, GraphClient
from .errors import Call

USER_PAGE = 999
USER_SELECT = ["id", "userPrincipalName", "displayName", "mail", "userType", "proxyAddresses"]


async def tenant_users(client: GraphClient) -> list[Owner]:
    """Every user of the tenant (`/users`, paged), as owners named by their UPN."""
    return [owner_of(user) for user in await directory_entries(client)]


def owner_of(user: Mapping[str, Any]) -> Owner:
    """A `/users` entry as an owner named by its UPN."""
    return Owner(user.get("userPrincipalName") or "", user["id"], user.get("displayName") or "")


async def directory_entries(client: GraphClient) -> list[dict[str, Any]]:
    """Every user of the tenant as `/users` lists them: id, UPN, display name, primary
    address (`mail`, null for a user without a mailbox), `userType` (Member or Guest) and
    `proxyAddresses` (every address, "SMTP:" the primary one, "smtp:" the aliases): all
    of them read with `User.Read.All`, https://learn.microsoft.com/en-us/graph/api/resources/user."""
    params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=USER_SELECT, top=USER_PAGE
    )
    first = client.sdk.users.to_get_request_information(
        RequestConfiguration(query_parameters=params)
    )
    call = Call("list users", permission="User.Read.All")
    return [
        user async for page in client.pages(first, TENANT, call) for user in page.get("value", [])
    ]
