"""Shared pieces of the drive source tests: a client on a fake clock, canned driveItems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from hirondelle.connectors.graph.client import GraphClient
from hirondelle.tests.fake_time import FakeTime
from hirondelle.tests.graph.conftest import make_budget, make_client

GRAPH = "https://graph.test/v1.0"
DOWNLOAD_HOST = "https://download.test"


def drive_client(fake_time: FakeTime, **options: Any) -> GraphClient:
    """A Graph client whose budget is SharePoint's: 16 at once, resource units per minute."""
    limits: dict[str, Any] = {
        "concurrency": 16,
        "requests_per_window": 1250,
        "window_seconds": 60.0,
        **options,
    }
    return make_client(make_budget(fake_time, **limits), links=HttpxLinks())


class HttpxLinks:
    """A `LinkClient` over httpx, so that respx can play the download host in these tests
    (the real one, aiohttp, is read against the sandbox in `test_sandbox_drives`)."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False)

    @asynccontextmanager
    async def stream(self, url: str, headers: Mapping[str, str]) -> AsyncIterator[httpx.Response]:
        async with self._client.stream("GET", url, headers=dict(headers)) as response:
            yield response

    @asynccontextmanager
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], content: bytes | None = None
    ) -> AsyncIterator[httpx.Response]:
        async with self._client.stream(
            method, url, headers=dict(headers), content=content
        ) as response:
            yield response

    async def aclose(self) -> None:
        await self._client.aclose()


def resource_units(client: GraphClient) -> int:
    """Resource units the client spent on the SharePoint lane."""
    return int(client.budgets.stats().get("sharepoint", {}).get("requests", 0))
