"""Fixtures for the sandbox's Teams part: running sandboxes on small tenants."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "sandbox"))  # for sandbox_helpers
sys.path.insert(0, str(Path(__file__).parent))  # for teams_helpers

from sandbox_helpers import client_fixture, sandbox_fixture
from teams_helpers import BIG, SMALL

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant

sb = sandbox_fixture(BIG, tls=True)  # TLS, for the SDK; the 1,200-reply thread
client = client_fixture()


@pytest.fixture
def fresh() -> Iterator[SandboxServer]:
    """A sandbox of its own (plain HTTP), for tests that mutate the tenant or its limits."""
    with SandboxServer(Tenant.generate(SMALL), tls=False, limits=Limits(enabled=False)) as server:
        yield server
