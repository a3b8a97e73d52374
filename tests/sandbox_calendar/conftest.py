"""Fixtures for the sandbox's calendar and contacts: a running sandbox on a small tenant."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "sandbox"))  # for sandbox_helpers

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec

SMALL = TenantSpec(seed=7, users=2, messages=5, large_messages=0)


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxServer]:
    """A sandbox the module's tests only read."""
    with SandboxServer(Tenant.generate(SMALL), tls=True, limits=Limits(enabled=False)) as server:
        yield server


@pytest.fixture
def fresh_sb() -> Iterator[SandboxServer]:
    """A sandbox of its own, for tests that mutate the tenant."""
    with SandboxServer(Tenant.generate(SMALL), tls=False, limits=Limits(enabled=False)) as server:
        yield server
