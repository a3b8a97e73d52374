"""Fixtures for the sandbox server tests: a running sandbox on a small tenant."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for sandbox_helpers

from sandbox_helpers import make_tenant

from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer


@pytest.fixture(scope="session")
def sb() -> Iterator[SandboxServer]:
    """One HTTPS sandbox for the read-only tests (nobody mutates its tenant)."""
    with SandboxServer(make_tenant(), tls=True, limits=Limits(enabled=False)) as server:
        yield server


@pytest.fixture(autouse=True)
def _calm_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts and ends with no faults and no throttling on the shared sandbox."""
    yield
    if "sb" in request.fixturenames:
        server: SandboxServer = request.getfixturevalue("sb")
        server.set_faults(Faults())
        server.set_limits(Limits(enabled=False))
