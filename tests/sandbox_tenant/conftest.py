"""Shared tenants for the sandbox tenant tests (small, so that every test stays fast)."""

from __future__ import annotations

import pytest

from hirondelle.sandbox.tenant import Tenant, TenantSpec

SMALL = TenantSpec(seed=7, users=3, messages=60, large_messages=2, large_attachment_bytes=300_000)


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    """A generated tenant the module's tests only read."""
    return Tenant.generate(SMALL)


@pytest.fixture
def fresh_tenant() -> Tenant:
    """A generated tenant of its own, for tests that mutate it."""
    return Tenant.generate(SMALL)
