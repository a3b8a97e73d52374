"""One sandbox for the contract suite: a small tenant with every workload, read only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.tests.sandbox.sandbox_helpers import raw_client

SPEC = TenantSpec(
    seed=7,
    users=2,
    messages=30,
    large_messages=0,
    files_per_drive=5,
    large_file_bytes=0,
    teams=1,
    posts_per_channel=12,
    replies_per_post=3,
)


@pytest.fixture(scope="session")
def contract_sb() -> Iterator[SandboxServer]:
    """Plain HTTP, no throttling: only the shapes are under test here."""
    with SandboxServer(Tenant.generate(SPEC), tls=False, limits=Limits(enabled=False)) as server:
        yield server


@pytest.fixture(scope="session")
def graph(contract_sb: SandboxServer) -> Iterator[httpx.Client]:
    with raw_client(contract_sb) as client:
        yield client
