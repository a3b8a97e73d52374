"""Signing in: the authority follows graph_url's cloud, and a refused scope names the setting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hirondelle.connectors.graph import client as client_module
from hirondelle.connectors.graph.auth import GraphSettings, make_credential
from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.clouds import token_scope
from hirondelle.connectors.graph.directory import tenant_users
from hirondelle.migrator.errors import FatalError
from hirondelle.sandbox import server
from hirondelle.sandbox import tenant as tenant_module

from .conftest import run

SECRET_ENV = "HIRONDELLE_TEST_SIGN_IN_SECRET"
US_GRAPH = "https://graph.microsoft.us/v1.0"


def authority_of(graph_url: str, authority: str | None = None) -> str:
    """The sign-in host azure-identity will ask for a token, for these settings."""
    settings = GraphSettings("tenant", "client", graph_url, authority, client_secret_env=SECRET_ENV)
    credential = make_credential(settings)
    try:
        # azure-identity keeps the authority it will call on its client (no public reader).
        return str(credential._current._client._authority)  # type: ignore[attr-defined]  # private, untyped
    finally:
        run(credential.close())


@pytest.mark.parametrize(
    ("graph_url", "sign_in"),
    [
        # https://learn.microsoft.com/en-us/graph/deployments: the token service of each cloud.
        ("https://graph.microsoft.com/v1.0", "https://login.microsoftonline.com"),
        ("https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn"),
        ("https://graph.example.test/v1.0", "https://login.microsoftonline.com"),
    ],
)
def test_the_sign_in_host_follows_the_clouds_graph_root(
    graph_url: str, sign_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "not-a-real-secret")
    assert authority_of(graph_url) == sign_in


def test_an_explicit_authority_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "not-a-real-secret")
    assert authority_of(US_GRAPH, "login.example.test") == "https://login.example.test"


def test_the_token_scope_names_the_clouds_graph() -> None:
    # https://learn.microsoft.com/en-us/graph/sdks/national-clouds, "Permission scopes".
    assert token_scope(US_GRAPH) == "https://graph.microsoft.us/.default"
    assert token_scope("https://127.0.0.1:8443/v1.0") == "https://graph.microsoft.com/.default"


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    spec = tenant_module.TenantSpec(seed=3, users=1, messages=1, large_messages=0)
    with server.SandboxServer(tenant_module.Tenant.generate(spec), tls=True) as sandbox:
        monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
        yield sandbox


def test_a_refused_scope_is_one_fatal_line_naming_graph_url(
    sb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox, like Entra ID, refuses a scope other than Graph's .default with
    invalid_scope AADSTS70011; here the client asks the US cloud's, as a graph_url of
    that cloud would while signing in to the global one."""
    monkeypatch.setattr(client_module, "token_scope", lambda url: token_scope(US_GRAPH))
    settings = GraphSettings(
        sb.tenant_id,
        sb.client_id,
        sb.graph_url,
        sb.authority,
        sb.ca_file,
        client_secret_env=SECRET_ENV,
    )

    async def list_users() -> Any:
        client = GraphClient(settings, MailboxBudget())
        try:
            return await tenant_users(client)
        finally:
            await client.aclose()

    with pytest.raises(FatalError) as refused:
        run(list_users())
    message = str(refused.value)
    assert "\n" not in message and "AADSTS70011" in message and "invalid_scope" in message
    assert "source.graph_url" in message and "source.authority" in message
    assert sb.client_secret not in message
