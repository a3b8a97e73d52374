"""An owner's target session as the asynchronous engine uses it.

Target sessions are blocking; each call runs in the engine's thread pool, one
at a time per session. A retriable failure drops the connection so the next
call logs in again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .errors import FatalError, OwnerFailed, Retriable, Unreachable
from .model import Owner
from .protocols import TargetSession
from .workload import Workload

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outage:
    """A workload's target that cannot be reached, as one process sees it: the owners that
    meet it wait with a growing pause (logged once), and once it has lasted `limit`
    seconds each of them fails with the reason while the others go on."""

    MAX_PAUSE = 15.0

    def __init__(self, workload: str, limit: float) -> None:
        self.workload, self.limit = workload, limit
        self.since: float | None = None
        self._pause = 1.0

    async def wait(self, error: Unreachable) -> None:
        """Pause before the next attempt; `OwnerFailed` once the outage is too long."""
        now = time.monotonic()
        if self.since is None:
            self.since, self._pause = now, 1.0
            log.warning(
                "the %s target cannot be reached (%s): waiting up to %.0f s for it",
                self.workload,
                error,
                self.limit,
            )
        waited = now - self.since
        if waited >= self.limit:
            raise OwnerFailed(
                f"the {self.workload} target stayed unreachable for {waited:.0f} s "
                f"(run.target_wait_seconds): {error}"
            )
        pause = min(self._pause, self.MAX_PAUSE, self.limit - waited)
        self._pause *= 2
        await asyncio.sleep(pause)

    def over(self) -> None:
        """A call went through: the target is back."""
        if self.since is not None:
            log.warning(
                "the %s target answers again after %.0f s",
                self.workload,
                time.monotonic() - self.since,
            )
            self.since = None


class OwnerSession:
    """An owner's target sessions: up to `size` connections, each used by one thread at a
    time; a connection that failed with a retriable error is dropped and reopened. A call
    that could not reach the target is made again once it answers (`Outage`)."""

    def __init__(
        self,
        workload: Workload,
        owner: Owner,
        pool: ThreadPoolExecutor,
        size: int = 1,
        fence: Callable[[], None] | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.workload, self.owner, self.pool = workload, owner, pool
        self._slots = asyncio.Semaphore(max(1, size))
        self._idle: list[TargetSession] = []
        # Raises `LeaseLost` once this process no longer holds the owner: checked before
        # every call, so a process that stalled past its lease writes nothing more.
        self.fence = fence or (lambda: None)
        self.outage = outage or Outage(workload.name, 0.0)

    async def call(self, fn: Callable[[TargetSession], T]) -> T:
        """Run `fn(session)` in the pool on a free session (opened on first need); while
        the target cannot be reached, wait for it and try again."""
        while True:
            try:
                result = await self._call_once(fn)
            except Unreachable as error:
                await self.outage.wait(error)
                continue
            except OSError as error:
                # A local disk (an archive target) that cannot be written: one line, not
                # a traceback. Connectors sort their network errors themselves.
                where = f" ({error.filename})" if error.filename else ""
                raise FatalError(
                    f"the {self.workload.name} target cannot write: {error.strerror}{where}"
                ) from error
            self.outage.over()
            return result

    async def _call_once(self, fn: Callable[[TargetSession], T]) -> T:
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
    except Exception:  # closing a dead connection may fail in many ways
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
