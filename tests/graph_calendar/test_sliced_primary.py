"""The primary calendar's window is read in slices, each a delta walk of its own.

Each calendar view window is its own sync state in the sandbox (sandbox/sync_states.py):
the pages of one slice do not age another slice's link, so quiet syncs never start over.
Whether Exchange shares generations across windows of one calendar needs a real tenant.
"""

from __future__ import annotations

from typing import Any

from hirondelle.connectors.graph.calendar import GraphCalendarSource
from hirondelle.migrator.errors import CursorExpired
from hirondelle.tests.graph.conftest import run

from .test_sandbox_calendar_contacts import client_for, sb  # noqa: F401


def test_quiet_syncs_of_a_sliced_primary_calendar_never_start_over(sb: Any) -> None:  # noqa: F811
    async def rounds() -> list[str]:
        source = GraphCalendarSource(client_for(sb))
        source.page_size = 3  # stands for a slice with more than 1,000 instances
        said = []
        try:
            owner = (await source.owners())[0]
            primary = next(c for c in await source.containers(owner) if c.role == "default")
            cursor = None
            for n in range(3):
                try:
                    pages = [p async for p in source.changes(primary, cursor)]
                except CursorExpired as exc:
                    said.append(f"sync {n}: {exc}")
                    pages = [p async for p in source.changes(primary, None)]
                cursor = pages[-1].delta_link
                said.append(f"sync {n}: {sum(len(p.items) for p in pages)} items")
        finally:
            await source.aclose()
        return said

    said = run(rounds())
    assert said[0].endswith("items") and not said[0].startswith("sync 0: 0 ")
    assert not any("expired" in s or "Gone" in s or "410" in s for s in said), said
