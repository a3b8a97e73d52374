"""One sandbox for the contract suite: a small tenant with every workload, read only."""

from __future__ import annotations

from hirondelle.sandbox.tenant import TenantSpec
from hirondelle.tests.sandbox.sandbox_helpers import client_fixture, sandbox_fixture

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


sb = sandbox_fixture(SPEC, tls=False, scope="session")  # plain HTTP: only the shapes matter
graph = client_fixture(scope="session")
