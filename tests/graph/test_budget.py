"""Per-mailbox budgets: AIMD concurrency, the request window, isolated Retry-After pauses."""

from __future__ import annotations

import asyncio

import pytest

from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.errors import Throttled
from hirondelle.migrator.errors import Retriable, SkipItem
from hirondelle.tests.fake_time import FakeTime

from .conftest import make_budget, run


def test_throttling_halves_concurrency_and_successes_bring_it_back(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, concurrency=4, success_run=3)
    budgets.report_throttled("alice", 1)
    assert budgets.limit("alice") == 2
    budgets.report_throttled("alice", 1)
    budgets.report_throttled("alice", 1)
    assert budgets.limit("alice") == 1

    async def succeed(times: int) -> None:
        for _ in range(times):
            async with budgets.slot("alice"):
                pass

    run(succeed(2))
    assert budgets.limit("alice") == 1
    run(succeed(1))
    assert budgets.limit("alice") == 2
    run(succeed(3 * 5))
    assert budgets.limit("alice") == 4  # never above the configured concurrency


def test_no_more_requests_in_flight_than_the_limit(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, concurrency=2)
    in_flight = peak = 0

    async def request() -> None:
        nonlocal in_flight, peak
        async with budgets.slot("alice"):
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1

    async def many() -> None:
        await asyncio.gather(*(request() for _ in range(10)))

    run(many())
    assert peak == 2
    assert budgets.stats()["alice"]["requests"] == 10


def test_a_throttled_mailbox_waits_alone(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time)
    budgets.report_throttled("alice", 30)

    async def one(owner: str) -> None:
        async with budgets.slot(owner):
            pass

    run(one("bob"))
    assert fake_time.sleeps == []  # bob did not wait for alice's pause
    run(one("alice"))
    assert fake_time.sleeps == [30]
    stats = budgets.stats()
    assert stats["alice"]["waited_s"] == 30 and stats["alice"]["throttled"] == 1
    assert stats["bob"]["waited_s"] == 0 and stats["bob"]["throttled"] == 0


def test_a_paused_mailbox_does_not_block_others_while_it_waits() -> None:
    async def scenario() -> tuple[bool, bool]:
        gate = asyncio.Event()
        fake_time = FakeTime()

        async def held_sleep(seconds: float) -> None:
            await gate.wait()
            fake_time.now += seconds

        budgets = make_budget(fake_time, concurrency=1)
        budgets._sleep = held_sleep  # alice's pause never ends during the test
        budgets.report_throttled("alice", 60)

        async def one(owner: str) -> None:
            async with budgets.slot(owner):
                pass

        alice = asyncio.create_task(one("alice"))
        await asyncio.wait_for(one("bob"), timeout=2)
        alice_done = alice.done()
        gate.set()
        await asyncio.wait_for(alice, timeout=2)
        return alice_done, alice.done()

    assert run(scenario()) == (False, True)


def test_the_request_window_caps_requests(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, requests_per_window=3, window_seconds=10)

    async def requests(count: int) -> None:
        for _ in range(count):
            async with budgets.slot("alice"):
                fake_time.now += 1

    run(requests(4))
    # the first request was answered at t=1: it leaves the window at t=11
    assert fake_time.sleeps == [8]


def test_run_honours_retry_after_then_succeeds(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time)
    answers: list[Exception | str] = [Throttled("429", retry_after=5), "done"]

    async def request() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert run(budgets.run("alice", request)) == "done"
    assert fake_time.sleeps == [5]
    assert budgets.stats()["alice"]["throttled"] == 1


def test_run_gives_up_after_its_attempts(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, attempts=3)
    calls = 0

    async def request() -> None:
        nonlocal calls
        calls += 1
        raise Retriable("502", retry_after=1)

    with pytest.raises(Retriable):
        run(budgets.run("alice", request))
    assert calls == 3 and fake_time.sleeps == [1, 1]


def test_run_does_not_retry_what_is_not_retriable(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time)
    calls = 0

    async def request() -> None:
        nonlocal calls
        calls += 1
        raise SkipItem("gone")

    with pytest.raises(SkipItem):
        run(budgets.run("alice", request))
    assert calls == 1


def test_a_batch_holds_one_slot_per_part_sent_on_at_once(fake_time: FakeTime) -> None:
    # Graph runs up to four parts of a $batch at once against the mailbox's four concurrent
    # requests (https://learn.microsoft.com/en-us/graph/throttling-limits#outlook-service-limits):
    # while a batch of four is in flight, no other request to that mailbox may start.
    budgets = make_budget(fake_time, concurrency=4)
    order: list[str] = []
    release = asyncio.Event()

    async def batch() -> None:
        async with budgets.slot("alice", cost=20, parallel=4):
            order.append("batch")
            await release.wait()
        order.append("batch done")

    async def single() -> None:
        async with budgets.slot("alice"):
            order.append("single")

    async def scenario() -> None:
        first = asyncio.ensure_future(batch())
        await asyncio.sleep(0)
        second = asyncio.ensure_future(single())
        for _ in range(5):
            await asyncio.sleep(0)
        assert order == ["batch"]  # the single waits: the batch holds all four slots
        release.set()
        await asyncio.gather(first, second)

    run(scenario())
    assert order == ["batch", "batch done", "single"]


def test_a_batch_fits_a_lane_cut_down_by_throttling(fake_time: FakeTime) -> None:
    budgets = make_budget(fake_time, concurrency=4)
    budgets.report_throttled("alice", 0)
    budgets.report_throttled("alice", 0)
    assert budgets.limit("alice") == 1

    async def batch() -> None:
        async with budgets.slot("alice", cost=8, parallel=4):  # runs alone, not never
            pass

    run(batch())
    assert budgets.stats()["alice"]["requests"] == 8


def test_throttling_without_retry_after_backs_off_longer_each_time(fake_time: FakeTime) -> None:
    # "If no Retry-After header is provided ... implementing an exponential backoff":
    # https://learn.microsoft.com/en-us/graph/throttling#best-practices-to-handle-throttling
    budgets = make_budget(fake_time)

    async def one() -> None:
        async with budgets.slot("alice"):
            pass

    def pause_after(refusals: int) -> float:
        for _ in range(refusals):  # refusals in a row, no success in between
            budgets.report_throttled("alice", None)
        before = fake_time.now
        run(one())  # succeeds: the next refusal starts the doubling over
        return fake_time.now - before

    first = pause_after(1)
    assert 0.5 <= first <= 1.0
    assert 4.0 <= pause_after(4) <= 8.0
    assert 0.5 <= pause_after(1) <= 1.0


def test_a_waiting_batch_is_not_starved_by_single_requests_that_keep_coming() -> None:
    # Single requests release a slot and take one again at once; a batch that needs four
    # must still get them: while it waits, newcomers of one slot wait behind it.
    budgets = MailboxBudget(concurrency=4, requests_per_window=10**6)

    async def scenario() -> bool:
        stop = asyncio.Event()

        async def single() -> None:
            while not stop.is_set():
                async with budgets.slot("alice"):
                    await asyncio.sleep(0.005)

        singles = [asyncio.ensure_future(single()) for _ in range(4)]
        await asyncio.sleep(0.02)
        try:
            async with asyncio.timeout(2):
                async with budgets.slot("alice", cost=4, parallel=4):
                    got = True
        except TimeoutError:
            got = False
        stop.set()
        await asyncio.gather(*singles)
        return got

    assert run(scenario())
