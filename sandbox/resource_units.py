"""SharePoint's resource-unit throttling, as the sandbox enforces it on drive requests.

SharePoint limits each application per tenant by resource units (RU) per minute, by
the tenant's licence count (1,200 RU a minute up to 1,000 licences, then 2,400, 3,600,
4,800, 6,000). Graph calls have fixed costs: 1 RU for a single item, a delta with a
token or a download; 2 RU for a multi-item query or a delta without a token; 5 RU for
any permission operation. Over the limit the service answers 429 (or 503) with
`Retry-After`, and throttled requests count toward the limit too. From 80 % of the
minute's budget it adds the `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` headers (IETF draft 03) to its answers, throttled or not:
https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online
`scale` shrinks the window and its budget together so tests reach the limit in seconds.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hirondelle.sandbox.service import Gate
from hirondelle.sandbox.throttle import Refusal

LICENCE_TIERS = ((1_000, 1_200), (5_000, 2_400), (15_000, 3_600), (50_000, 4_800))
TOP_TIER = 6_000
SHAREPOINT_KEY = "sharepoint"  # one budget per app and tenant: the sandbox has one of each


def units_per_minute(licences: int) -> int:
    """The documented per-app RU budget a minute for a tenant with `licences` licences."""
    for ceiling, units in LICENCE_TIERS:
        if licences <= ceiling:
            return units
    return TOP_TIER


@dataclass(frozen=True)
class ResourceUnitLimits:
    """The per-app budget; `scale` shrinks the window and its units in proportion."""

    units_per_window: int = units_per_minute(1_000)
    window_seconds: float = 60.0
    scale: float = 1.0
    enabled: bool = True
    status: int = 429  # SharePoint answers 429, or 503 when it sheds load
    charge_refused: bool = True  # "throttled requests count towards usage limits"
    warning_fraction: float = 0.8  # RateLimit headers from this share of the budget on

    @property
    def window_units(self) -> int:
        return max(1, round(self.units_per_window * self.scale))

    @property
    def window_length(self) -> float:
        return self.window_seconds * self.scale


@dataclass(frozen=True)
class ResourceUnitRefusal(Refusal):
    """A refusal with the status, error code and headers SharePoint sends with it."""

    status: int = 429
    code: str = "activityLimitReached"
    message: str = "The request has been throttled."
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Window:
    charges: deque[tuple[float, int]] = field(default_factory=deque)
    used: int = 0


class ResourceUnitThrottle:
    """Charges each drive request its RU cost against a sliding window per key.

    Runs on the server's event loop only, so it needs no lock.
    """

    def __init__(
        self, limits: ResourceUnitLimits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def configure(self, limits: ResourceUnitLimits) -> None:
        """New limits, counted afresh from now on."""
        self.limits = limits
        self._windows.clear()

    def gate(self, cost: int, key: str = SHAREPOINT_KEY) -> Gate:
        """The gate the server's pipeline runs a request of `cost` RU through."""
        return Gate(_Charge(self, cost), key)

    def charge(self, key: str, cost: int) -> ResourceUnitRefusal | None:
        """Spend `cost` units, or refuse (charging them anyway when the limits say so)."""
        if not self.limits.enabled:
            return None
        window = self._window(key)
        now = self._clock()
        if window.used + cost <= self.limits.window_units:
            self._spend(window, now, cost)
            return None
        if self.limits.charge_refused:
            self._spend(window, now, cost)
        wait = self._wait_for(window, now, cost)
        headers = {"Retry-After": str(wait), **self.rate_limit_headers(key, force=True)}
        return ResourceUnitRefusal(
            "ResourceUnitsPerMinute", wait, status=self.limits.status, headers=headers
        )

    def rate_limit_headers(self, key: str = SHAREPOINT_KEY, force: bool = False) -> dict[str, str]:
        """The RateLimit headers, once the window is used past the warning share (or forced)."""
        if not self.limits.enabled:
            return {}
        window = self._window(key)
        now = self._clock()
        limit = self.limits.window_units
        if not force and window.used < limit * self.limits.warning_fraction:
            return {}
        reset = window.charges[0][0] + self.limits.window_length - now if window.charges else 0
        return {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(0, limit - window.used)),
            "RateLimit-Reset": str(max(0, math.ceil(reset))),
        }

    def used(self, key: str = SHAREPOINT_KEY) -> int:
        return self._window(key).used

    def _window(self, key: str) -> _Window:
        window = self._windows.setdefault(key, _Window())
        horizon = self._clock() - self.limits.window_length
        while window.charges and window.charges[0][0] <= horizon:
            window.used -= window.charges.popleft()[1]
        return window

    @staticmethod
    def _spend(window: _Window, now: float, cost: int) -> None:
        window.charges.append((now, cost))
        window.used += cost

    def _wait_for(self, window: _Window, now: float, cost: int) -> int:
        """Whole seconds until `cost` more units fit, if nothing else is spent meanwhile."""
        excess = window.used + cost - self.limits.window_units
        for moment, units in window.charges:
            excess -= units
            if excess <= 0:
                return max(1, math.ceil(moment + self.limits.window_length - now))
        return max(1, math.ceil(self.limits.window_length))


@dataclass(frozen=True)
class _Charge:
    """The `Throttle` the server sees: admits a request by charging its cost."""

    throttle: ResourceUnitThrottle
    cost: int

    def admit(self, key: str) -> Refusal | None:
        return self.throttle.charge(key, self.cost)

    def release(self, key: str) -> None:
        """Resource units have no concurrency slot to give back."""
