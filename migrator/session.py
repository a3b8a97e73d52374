"""An owner's target session as the asynchronous engine uses it.

Target sessions are blocking; each call runs in the engine's thread pool, one
at a time per session. A retriable failure drops the connection so the next
call logs in again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .errors import Retriable
from .model import Owner
from .protocols import TargetSession
from .workload import Workload

log = logging.getLogger(__name__)
T = TypeVar("T")


class OwnerSession:
    """One owner's target session, used by one thread at a time, reopened after a reset."""

    def __init__(self, workload: Workload, owner: Owner, pool: ThreadPoolExecutor) -> None:
        self.workload, self.owner, self.pool = workload, owner, pool
        self.lock = asyncio.Lock()
        self._session: TargetSession | None = None

    async def call(self, fn: Callable[[TargetSession], T]) -> T:
        """Run `fn(session)` in the pool, holding the session for this call only."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            if self._session is None:
                self._session = await loop.run_in_executor(
                    self.pool, self.workload.target.open, self.owner
                )
            session = self._session
            try:
                return await loop.run_in_executor(self.pool, fn, session)
            except Retriable:
                self._session = None  # the connection may be dead: reopen on the next call
                await loop.run_in_executor(self.pool, close_quietly, session)
                raise

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.get_running_loop().run_in_executor(self.pool, close_quietly, session)


def close_quietly(session: TargetSession) -> None:
    try:
        session.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may fail in many ways
        log.debug("closing a target session failed", exc_info=True)


async def retrying(call: Callable[[], Awaitable[T]], attempts: int, pause: float) -> T:
    """Await `call()` until it stops raising `Retriable`, at most `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Retriable as exc:
            if attempt == attempts:
                raise
            await asyncio.sleep(exc.retry_after or pause)
            pause *= 2
    raise AssertionError("unreachable")
