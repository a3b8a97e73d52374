"""Generation at benchmark scale stays fast and small in memory."""

from __future__ import annotations

import time

import psutil

from hirondelle.sandbox.tenant import Tenant, TenantSpec


def test_twenty_mailboxes_of_a_thousand_messages() -> None:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.process_time()
    tenant = Tenant.generate(TenantSpec(seed=7, users=20, messages=1000))  # 2 x 40 MiB files
    elapsed = time.process_time() - started  # CPU: a loaded machine stretches wall time
    grown = process.memory_info().rss - rss_before
    assert elapsed < 10, f"generation took {elapsed:.1f} s of CPU"
    total = sum(
        m.size
        for user in tenant.users
        for folder in tenant.folders(user.id)
        for m in tenant.messages(user.id, folder.id)
    )
    assert total > 1 << 30  # over a gigabyte of MIME described...
    assert grown < 200 << 20  # ...in well under 200 MiB
