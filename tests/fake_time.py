"""A clock for tests of waiting code (budgets, retries, downloads): the `fake_time` fixture
of tests/conftest.py hands out one per test."""

from __future__ import annotations

import asyncio


class FakeTime:
    """A clock that only moves when someone sleeps; sleeps are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
