"""Helpers for the sandbox server tests: a small tenant and clients on a running sandbox."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from hirondelle.sandbox.calendar_data import CONTACT_ID_PREFIX, SandboxContact
from hirondelle.sandbox.contact_seed import contact_fields
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.sandbox.tenant_records import stable_id

SMALL = TenantSpec(seed=7, users=2, messages=40, large_messages=0)
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# As the client asks on every request: ids that a move does not change. Without it the
# sandbox hands out default ids, as Graph does (see test_outlook_ids.py).
IMMUTABLE = 'IdType="ImmutableId"'


def prefer(*values: str) -> dict[str, str]:
    """A Prefer header with these preferences and immutable ids."""
    return {"Prefer": ", ".join((*values, IMMUTABLE))}


def make_tenant(spec: TenantSpec = SMALL) -> Tenant:
    """A small synthetic tenant: 2 users, 40 messages each, no large message."""
    return Tenant.generate(spec)


def trust(server: SandboxServer) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=server.ca_file) if server.ca_file else True


def access_token(server: SandboxServer) -> str:
    """A token from the client-secret grant, fetched with plain httpx."""
    form = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "grant_type": "client_credentials",
        "scope": GRAPH_SCOPE,
    }
    url = f"https://{server.authority}/{server.tenant_id}/oauth2/v2.0/token"
    if not server.ca_file:
        url = url.replace("https://", "http://")
    response = httpx.post(url, data=form, verify=trust(server))
    response.raise_for_status()
    return str(response.json()["access_token"])


def raw_client(server: SandboxServer, token: str | None = None) -> httpx.Client:
    """An httpx client on the Graph URL with a bearer token (no retries, unlike the SDK)."""
    headers = {"Authorization": f"Bearer {token or access_token(server)}", **prefer()}
    return httpx.Client(
        base_url=server.graph_url + "/", headers=headers, verify=trust(server), timeout=10
    )


def sandbox_fixture(spec: TenantSpec, *, tls: bool, scope: Any = "module") -> Callable[..., Any]:
    """A fixture (named by the variable it is assigned to): a sandbox of `spec`'s tenant,
    throttling off, for tests of shapes and paging that only read it."""

    def running() -> Iterator[SandboxServer]:
        with SandboxServer(Tenant.generate(spec), tls=tls, limits=Limits(enabled=False)) as server:
            yield server

    return pytest.fixture(scope=scope)(running)


def client_fixture(scope: Any = "module") -> Callable[..., Any]:
    """A fixture: a `raw_client` on the fixture `sb`."""

    def client(sb: SandboxServer) -> Iterator[httpx.Client]:
        with raw_client(sb) as found:
            yield found

    return pytest.fixture(scope=scope)(client)


def graph_client(server: SandboxServer) -> tuple[GraphServiceClient, ClientSecretCredential]:
    """The real msgraph SDK on the sandbox, authenticated by azure-identity's aio credential.

    Build and use it inside one event loop; close the credential at the end.
    """
    credential = ClientSecretCredential(
        server.tenant_id,
        server.client_id,
        server.client_secret,
        authority=server.authority,
        connection_verify=server.ca_file,
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=trust(server), timeout=30, headers=prefer())
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = server.graph_url
    return GraphServiceClient(request_adapter=adapter), credential


def add_contacts(server: SandboxServer, user_id: str, count: int) -> list[str]:
    """`count` more contacts in the user's default Contacts folder; their ids."""
    data = server.tenant.calendar_data
    folder = data.contact_folder(user_id, None)
    added = []
    for n in range(count):
        contact_id = stable_id(CONTACT_ID_PREFIX, user_id, "added", n)
        fields = contact_fields(random.Random(n), "Élodie", f"Martin-{n:03}", folder.id, n)
        data.put_contact(SandboxContact(contact_id, user_id, folder.id, 0, "", fields))
        added.append(contact_id)
    return added
