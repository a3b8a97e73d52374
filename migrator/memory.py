"""A weighted gate on the bytes of content held in memory across the whole run.

Mail content travels as bytes; a handful of 40 MB messages fetched at once by
several mailboxes would multiply the process's memory. Each fetch first takes
the item's expected size from this gate and gives it back once the item is
written, so the bytes in flight stay under the budget whatever the sizes. An
item larger than the whole budget waits for the gate to empty, then runs alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class MemoryGate:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        weight = min(max(size, 1), self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self._used + weight <= self.capacity)
            self._used += weight
        try:
            yield
        finally:
            async with self._changed:
                self._used -= weight
                self._changed.notify_all()
