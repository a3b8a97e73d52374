"""Shared pieces of the Graph connector tests: a fake credential, a client; a sandbox
with its secret in the environment, and settings that sign in to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from azure.core.credentials import AccessToken

from hirondelle.connectors.graph.auth import GraphSettings
from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.links import LinkClient
from hirondelle.sandbox.server import SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.tests.fake_time import FakeTime

T = TypeVar("T")
GRAPH = "https://graph.test/v1.0"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one test coroutine on a fresh event loop."""
    return asyncio.run(coroutine)


class FakeCredential:
    """An async credential that hands out a fixed token and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    async def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        self.calls += 1
        return AccessToken("test-token", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


@contextmanager
def sandbox_with_secret(
    monkeypatch: pytest.MonkeyPatch, spec: TenantSpec, secret_env: str
) -> Iterator[SandboxServer]:
    """A TLS sandbox of `spec`'s tenant, its client secret in `secret_env`."""
    with SandboxServer(Tenant.generate(spec), tls=True) as sandbox:
        monkeypatch.setenv(secret_env, sandbox.client_secret)
        yield sandbox


def sandbox_settings(sb: Any, **secret: str) -> GraphSettings:
    """The source settings that sign in to the sandbox `sb` with `secret` (the setting
    naming where the secret is, e.g. `client_secret_env=...`)."""
    return GraphSettings(
        tenant_id=sb.tenant_id,
        client_id=sb.client_id,
        graph_url=sb.graph_url,
        authority=sb.authority,
        ca_file=sb.ca_file,
        **secret,
    )


def make_budget(fake_time: FakeTime, **options: Any) -> MailboxBudget:
    return MailboxBudget(clock=fake_time.clock, sleep=fake_time.sleep, **options)


def make_client(
    budgets: MailboxBudget, links: LinkClient | None = None, graph_url: str = GRAPH
) -> GraphClient:
    settings = GraphSettings(
        tenant_id="tenant", client_id="client", graph_url=graph_url, client_secret_env="UNUSED"
    )
    credential = FakeCredential()
    return GraphClient(settings, budgets, credential=credential, links=links)  # type: ignore[arg-type]  # a fake credential
