"""Fault injection for the sandbox: errors, resets, truncated bodies, slow answers.

The engine must survive what the real service does on a bad day. Each request
draws its fate from a generator seeded by `Faults.seed`, so a run with the same
requests in the same order meets the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Faults:
    """Rates are probabilities per request in [0, 1]; `slow_seconds` delays every answer."""

    error_rate: float = 0.0  # 503 with Retry-After: 1
    reset_rate: float = 0.0  # TCP connection closed without a response
    truncate_rate: float = 0.0  # $value: fewer bytes than Content-Length, then close
    slow_seconds: float = 0.0
    seed: int = 0


class Fate(Enum):
    """What happens to one request."""

    NORMAL = "normal"
    ERROR = "error"
    RESET = "reset"
    TRUNCATE = "truncate"


class FaultInjector:
    """Draws the fate of each request from the seeded generator."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)

    def draw(self) -> Fate:
        """Three draws per request, always, so one rate never shifts another's sequence."""
        reset, error, truncate = (self._random.random() for _ in range(3))
        if reset < self.faults.reset_rate:
            return Fate.RESET
        if error < self.faults.error_rate:
            return Fate.ERROR
        if truncate < self.faults.truncate_rate:
            return Fate.TRUNCATE
        return Fate.NORMAL
