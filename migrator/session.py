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
    """An owner's target sessions: up to `size` connections, each used by one thread at a
    time; a connection that failed with a retriable error is dropped and reopened."""

    def __init__(
        self,
        workload: Workload,
        owner: Owner,
        pool: ThreadPoolExecutor,
        size: int = 1,
        fence: Callable[[], None] | None = None,
    ) -> None:
        self.workload, self.owner, self.pool = workload, owner, pool
        self._slots = asyncio.Semaphore(max(1, size))
        self._idle: list[TargetSession] = []
        # Raises `LeaseLost` once this process no longer holds the owner: checked before
        # every call, so a process that stalled past its lease writes nothing more.
        self.fence = fence or (lambda: None)

    async def call(self, fn: Callable[[TargetSession], T]) -> T:
        """Run `fn(session)` in the pool on a free session (opened on first need)."""
        async with self._slots:
            self.fence()
            loop = asyncio.get_running_loop()
            if self._idle:
                session = self._idle.pop()
            else:
                session = await loop.run_in_executor(
                    self.pool, self.workload.target.open, self.owner
                )
            try:
                result = await loop.run_in_executor(self.pool, fn, session)
            except Retriable:
                # the connection may be dead: drop it, the next call opens another
                await loop.run_in_executor(self.pool, close_quietly, session)
                raise
            except BaseException:
                self._idle.append(session)
                raise
            self._idle.append(session)
            return result

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        while self._idle:
            await loop.run_in_executor(self.pool, close_quietly, self._idle.pop())


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
