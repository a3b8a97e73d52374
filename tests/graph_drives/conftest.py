"""Shared pieces of the drive source tests: a client on a fake clock, canned driveItems."""

from __future__ import annotations

from typing import Any

import pytest

from hirondelle.connectors.graph.client import GraphClient
from hirondelle.tests.graph.conftest import FakeTime, make_budget, make_client

GRAPH = "https://graph.test/v1.0"
DOWNLOAD_HOST = "https://download.test"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def drive_client(fake_time: FakeTime, **options: Any) -> GraphClient:
    """A Graph client whose budget is SharePoint's: 16 at once, resource units per minute."""
    limits: dict[str, Any] = {
        "concurrency": 16,
        "requests_per_window": 1250,
        "window_seconds": 60.0,
        **options,
    }
    return make_client(make_budget(fake_time, **limits))


def resource_units(client: GraphClient) -> int:
    """Resource units the client spent on the SharePoint lane."""
    return int(client.budgets.stats().get("sharepoint", {}).get("requests", 0))
