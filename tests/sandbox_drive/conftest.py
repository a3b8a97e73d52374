"""Fixtures for the sandbox drive tests: small tenants and sandboxes serving their drives."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "sandbox"))  # for sandbox_helpers
sys.path.insert(0, str(Path(__file__).parent))  # for sandbox_drive_helpers

from sandbox_drive_helpers import make_tenant

from hirondelle.sandbox.server import Limits, SandboxServer


@pytest.fixture(scope="module")
def sb() -> Iterator[SandboxServer]:
    """A sandbox the module's tests only read (plain HTTP: downloads stay fast)."""
    with SandboxServer(make_tenant(), tls=False, limits=Limits(enabled=False)) as server:
        yield server


@pytest.fixture
def mutable() -> Iterator[SandboxServer]:
    """A sandbox of its own, for tests that mutate the tenant or change its limits."""
    with SandboxServer(make_tenant(), tls=False, limits=Limits(enabled=False)) as server:
        yield server
