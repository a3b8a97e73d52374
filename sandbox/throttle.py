"""Outlook's per-mailbox throttling, as the sandbox enforces it.

Microsoft documents two limits per app and mailbox: 4 concurrent requests and
10,000 requests in a 10-minute window
(https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits).
Over the window, Graph answers 429 with a `Retry-After` header. Over the concurrency,
the 429 may come without one: the throttling page tells clients to back off
exponentially when Retry-After is absent
(https://learn.microsoft.com/en-us/graph/throttling#best-practices-to-handle-throttling),
so the sandbox sends none there. `Limits.scale`
shrinks the window and its request count together so tests reach the limit in
seconds. Refused requests do not count against the window, so that `Retry-After`
stays an honest promise.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """Per-mailbox limits; `scale` shrinks the window and the count in proportion."""

    concurrency: int = 4
    requests_per_window: int = 10_000
    window_seconds: float = 600.0
    scale: float = 1.0
    enabled: bool = True

    @property
    def window_requests(self) -> int:
        return max(1, round(self.requests_per_window * self.scale))

    @property
    def window_length(self) -> float:
        return self.window_seconds * self.scale


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused and when a request would pass again."""

    limit: str  # "MailboxConcurrency" | "MailboxRequests"
    retry_after: int | None  # whole seconds, at least 1; None: no Retry-After header


@dataclass
class _MailboxState:
    in_flight: int = 0
    admitted: deque[float] = field(default_factory=deque)


class MailboxThrottle:
    """Admits or refuses each request to a mailbox; `release` ends an admitted one.

    Runs on the server's event loop only, so it needs no lock.
    """

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._mailboxes: dict[str, _MailboxState] = {}

    def configure(self, limits: Limits) -> None:
        """New limits, counted afresh from now on."""
        self.limits = limits
        self._mailboxes.clear()

    def admit(self, mailbox: str) -> Refusal | None:
        """Take a slot for `mailbox`, or say which limit refuses the request."""
        if not self.limits.enabled:
            return None
        state = self._mailboxes.setdefault(mailbox, _MailboxState())
        now = self._clock()
        self._forget_before(state, now - self.limits.window_length)
        if state.in_flight >= self.limits.concurrency:
            return Refusal("MailboxConcurrency", None)
        if len(state.admitted) >= self.limits.window_requests:
            wait = state.admitted[0] + self.limits.window_length - now
            return Refusal("MailboxRequests", max(1, math.ceil(wait)))
        state.in_flight += 1
        state.admitted.append(now)
        return None

    def release(self, mailbox: str) -> None:
        """End an admitted request: its concurrency slot is free again."""
        state = self._mailboxes.get(mailbox)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1

    @staticmethod
    def _forget_before(state: _MailboxState, horizon: float) -> None:
        while state.admitted and state.admitted[0] <= horizon:
            state.admitted.popleft()
