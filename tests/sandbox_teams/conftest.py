"""Fixtures for the sandbox's Teams part: running sandboxes on small tenants."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "sandbox"))  # for sandbox_helpers
sys.path.insert(0, str(Path(__file__).parent))  # for teams_helpers

from sandbox_helpers import raw_client
from teams_helpers import BIG, SMALL

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxServer]:
    """A sandbox (TLS, for the SDK) with the 1,200-reply thread; the module's tests only read."""
    with SandboxServer(Tenant.generate(BIG), tls=True, limits=Limits(enabled=False)) as server:
        yield server


@pytest.fixture(scope="module")
def client(sb: SandboxServer) -> Iterator[httpx.Client]:
    with raw_client(sb) as found:
        yield found


@pytest.fixture
def fresh() -> Iterator[SandboxServer]:
    """A sandbox of its own (plain HTTP), for tests that mutate the tenant or its limits."""
    with SandboxServer(Tenant.generate(SMALL), tls=False, limits=Limits(enabled=False)) as server:
        yield server
