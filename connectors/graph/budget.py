"""Per-mailbox request budgets: concurrency, a request window and Retry-After pauses.

Exchange Online limits each application per mailbox: 4 concurrent requests and
10,000 requests per 10 minutes; a 429 or 503 comes with Retry-After
(https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
One `MailboxBudget` keeps a lane per owner so that a throttled mailbox waits alone
while the others go on:

- concurrency starts at `concurrency`, halves on throttling (never below one) and
  creeps back by one after a run of successes (AIMD);
- a sliding window caps the requests of a lane per `window_seconds`. A request counts
  from the moment it is sent, and stays in the window until `window_seconds` after its
  answer came back: the service charged it somewhere in between, so the lane never
  believes a request has left the service's window before it has (timing the window
  from the send let a burst whose answers were slow overrun it);
- `report_throttled` pauses that lane only, until the time Graph gave; without a
  Retry-After (Outlook's concurrency refusals may come without one) the pause doubles
  with each refusal in a row, as the throttling page advises
  (https://learn.microsoft.com/en-us/graph/throttling#best-practices-to-handle-throttling);
- a request that runs several parts at once on the service (a `$batch`: Graph sends
  up to four of its parts on together) holds as many of the lane's slots.

`run` wraps one request with its retries: throttling pauses the lane, other
retriable failures back off exponentially, and the last failure is raised after
`attempts` tries. The clock and the sleep are injectable so tests need no real time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from ...migrator.errors import Retriable
from .errors import Throttled

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_PAUSE_S = 1.0  # the first pause of a throttling answer without Retry-After
MAX_BACKOFF_S = 60.0


@dataclass
class _Lane:
    """The live state of one owner's budget."""

    limit: int
    ceiling: int
    condition: asyncio.Condition = field(default_factory=asyncio.Condition)
    in_flight: int = 0  # slots held (a batch holds several)
    wide_waiting: int = 0  # requests of several slots waiting: newcomers of one wait behind
    in_flight_cost: int = 0  # sent, not answered: in the window until it is
    success_run: int = 0
    refusals_in_a_row: int = 0  # throttling answers since the last success
    paused_until: float = 0.0
    window: deque[tuple[float, int]] = field(default_factory=deque)
    window_total: int = 0
    requests: int = 0
    throttled: int = 0
    waited_s: float = 0.0

    def expire(self, now: float, window_seconds: float) -> None:
        """Forget the requests older than the window."""
        while self.window and self.window[0][0] <= now - window_seconds:
            _, cost = self.window.popleft()
            self.window_total -= cost

    def window_wait(self, now: float, cost: int, cap: int, window_seconds: float) -> float | None:
        """Seconds until `cost` more requests fit in the window (0 if they fit now), or
        None when only answers still awaited can make room."""
        excess = self.window_total + self.in_flight_cost + cost - cap
        if excess <= 0:
            return 0.0
        freed = 0
        for stamp, entry_cost in self.window:
            freed += entry_cost
            if freed >= excess:
                return max(0.0, stamp + window_seconds - now)
        return None


class MailboxBudget:
    """One request budget per mailbox (owner), shared by every request to that mailbox."""

    def __init__(
        self,
        concurrency: int = 4,
        requests_per_window: int = 10000,
        window_seconds: float = 600.0,
        *,
        success_run: int = 20,
        attempts: int = 6,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if concurrency < 1 or requests_per_window < 1 or window_seconds <= 0:
            raise ValueError("a budget needs at least one request, one slot and a window")
        self.concurrency = concurrency
        self.requests_per_window = requests_per_window
        self.full_window = requests_per_window  # the budget before `divide`
        self.window_seconds = window_seconds
        self.success_run = success_run
        self.attempts = attempts
        self._clock = clock
        self._sleep = sleep
        self._lanes: dict[str, _Lane] = {}

    def _lane(self, owner: str) -> _Lane:
        lane = self._lanes.get(owner)
        if lane is None:
            lane = _Lane(limit=self.concurrency, ceiling=self.concurrency)
            self._lanes[owner] = lane
        return lane

    def divide(self, holders: int) -> None:
        """Keep to a `holders`-th of the budget: it is tenant-wide and that many processes
        draw on it now (each re-divides as they come and go)."""
        self.requests_per_window = max(1, self.full_window // max(1, holders))

    def limit(self, owner: str) -> int:
        """The owner's current concurrency limit."""
        return self._lane(owner).limit

    @asynccontextmanager
    async def slot(self, owner: str, cost: int = 1, parallel: int = 1) -> AsyncIterator[None]:
        """Hold the owner's concurrent slots for one request: `cost` requests of the
        window, `parallel` of them at once on the service (both more for a $batch)."""
        lane = self._lane(owner)
        cost = min(max(cost, 1), self.requests_per_window)
        slots = await self._acquire(lane, cost, max(1, parallel))
        refusals = lane.throttled
        succeeded = False
        try:
            yield
            # A request that reported throttling meanwhile (a batch whose parts were
            # refused) is no success: the backoff keeps growing, the limit does not.
            succeeded = lane.throttled == refusals
        finally:
            await self._release(lane, succeeded, cost, slots)

    async def _acquire(self, lane: _Lane, cost: int, parallel: int) -> int:
        started = self._clock()
        wide = parallel > 1
        lane.wide_waiting += wide
        try:
            return await self._wait_for_room(lane, cost, parallel, started)
        finally:
            lane.wide_waiting -= wide

    async def _wait_for_room(self, lane: _Lane, cost: int, parallel: int, started: float) -> int:
        """Wait until the lane has `parallel` free slots (fewer when its limit is lower)
        and room for `cost` in its window. While a request of several slots waits, a
        request of one waits behind it: otherwise single requests that keep coming would
        take each slot as it frees and the batch would wait forever."""
        while True:
            now = self._clock()
            lane.expire(now, self.window_seconds)
            window = lane.window_wait(now, cost, self.requests_per_window, self.window_seconds)
            wait = max(lane.paused_until - now, window or 0.0)
            if wait > 0:
                await self._sleep(wait)
                continue
            slots = min(parallel, lane.limit)  # a lane cut to one slot runs a batch alone
            behind_a_batch = parallel == 1 and lane.wide_waiting > 0
            if window is None or lane.in_flight + slots > lane.limit or behind_a_batch:
                # a slot, or room in the window, comes back with an answer
                async with lane.condition:
                    await lane.condition.wait()
                continue
            lane.in_flight += slots
            lane.in_flight_cost += cost
            lane.requests += cost
            lane.waited_s += self._clock() - started
            return slots

    async def _release(self, lane: _Lane, succeeded: bool, cost: int, slots: int) -> None:
        lane.in_flight -= slots
        lane.in_flight_cost -= cost
        lane.window.append((self._clock(), cost))
        lane.window_total += cost
        if succeeded:
            lane.refusals_in_a_row = 0
            lane.success_run += 1
            if lane.success_run >= self.success_run and lane.limit < lane.ceiling:
                lane.limit += 1
                lane.success_run = 0
        async with lane.condition:
            lane.condition.notify_all()

    def report_throttled(self, owner: str, retry_after: float | None) -> None:
        """Halve the owner's concurrency and pause that owner only until Retry-After."""
        lane = self._lane(owner)
        lane.throttled += 1
        lane.success_run = 0
        lane.refusals_in_a_row += 1
        lane.limit = max(1, lane.limit // 2)
        if retry_after is None:
            backoff = DEFAULT_PAUSE_S * 2 ** min(lane.refusals_in_a_row - 1, 6)
            pause = min(MAX_BACKOFF_S, random.uniform(backoff / 2, backoff))
        else:
            pause = max(0.0, retry_after)
        lane.paused_until = max(lane.paused_until, self._clock() + pause)

    def stats(self) -> dict[str, dict[str, float]]:
        """Per owner: requests sent, throttling answers, seconds spent waiting for a slot."""
        return {
            owner: {
                "requests": lane.requests,
                "throttled": lane.throttled,
                "waited_s": round(lane.waited_s, 3),
                "concurrency": lane.limit,
            }
            for owner, lane in self._lanes.items()
        }

    async def run(
        self,
        owner: str,
        request: Callable[[], Awaitable[T]],
        cost: int = 1,
        parallel: int = 1,
    ) -> T:
        """Send `request` in the owner's slots, retrying what is retriable."""
        for attempt in range(1, self.attempts + 1):
            try:
                async with self.slot(owner, cost, parallel):
                    return await request()
            except Throttled as exc:
                self.report_throttled(owner, exc.retry_after)
                if attempt == self.attempts:
                    raise
            except Retriable as exc:
                if attempt == self.attempts:
                    raise
                await self.backoff(attempt, exc.retry_after)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def backoff(self, attempt: int, retry_after: float | None) -> None:
        """Wait before retrying a passing failure: Retry-After, else jittered exponential."""
        if retry_after is None:
            retry_after = random.uniform(0, min(MAX_BACKOFF_S, 0.5 * 2**attempt))
        await self._sleep(retry_after)
