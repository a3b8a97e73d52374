"""The local pool's pause between looks at the run: over when a worker process ends."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.context
import time

from hirondelle.migrator.local_workers import LocalPool


def test_a_pause_ends_when_a_worker_ends() -> None:
    context = multiprocessing.get_context("fork")
    release = context.Event()
    worker = context.Process(target=release.wait, daemon=True)
    worker.start()
    pool = LocalPool.__new__(LocalPool)  # its processes only: no configuration needed
    pool._processes = [worker]

    async def scenario() -> tuple[float, float]:
        started = time.monotonic()
        await pool.pause(0.2)  # the worker runs on: the whole pause
        full = time.monotonic() - started
        pausing = asyncio.create_task(pool.pause(60.0))
        await asyncio.sleep(0)
        started = time.monotonic()
        release.set()  # the worker ends
        await asyncio.wait_for(pausing, timeout=30.0)
        return full, time.monotonic() - started

    full, cut = asyncio.run(scenario())
    worker.join(timeout=30)
    assert full >= 0.2
    assert cut < 30.0 and worker.exitcode == 0


def test_waiting_for_the_workers_tells_the_idle_ones_the_run_is_over() -> None:
    context = multiprocessing.get_context("fork")
    pool = LocalPool.__new__(LocalPool)  # its processes only: no configuration needed
    pool._context = multiprocessing.context.SpawnContext()  # no fork server to stop
    pool._over = context.Event()
    idle = context.Process(target=pool._over.wait, args=(60.0,), daemon=True)
    idle.start()
    pool._processes = [idle]
    started = time.monotonic()
    pool.wait()
    assert time.monotonic() - started < 30.0 and not pool._processes
