"""Shared pieces of the Graph connector tests: a fake credential, a client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from azure.core.credentials import AccessToken

from hirondelle.connectors.graph.auth import GraphSettings
from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.links import LinkClient
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


def make_budget(fake_time: FakeTime, **options: Any) -> MailboxBudget:
    return MailboxBudget(clock=fake_time.clock, sleep=fake_time.sleep, **options)


def make_client(budgets: MailboxBudget, links: LinkClient | None = None) -> GraphClient:
    settings = GraphSettings(
        tenant_id="tenant", client_id="client", graph_url=GRAPH, client_secret_env="UNUSED"
    )
    credential = FakeCredential()
    return GraphClient(settings, budgets, credential=credential, links=links)  # type: ignore[arg-type]  # a fake credential
