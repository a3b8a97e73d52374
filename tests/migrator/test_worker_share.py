"""A worker of a local pool holds its share of a small run's owners at once, not every
owner it could hold: its siblings, up a moment later, get theirs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.worker import Worker
from hirondelle.migrator.workload import RunOptions
from hirondelle.state.jobs import Jobs, JobSpec, JobState
from hirondelle.state.leases import Holder
from hirondelle.state.schema import FINISHED
from hirondelle.state.store import open_store


class CountingWorker(Worker):
    """Runs each job for a moment, noting how many it ran at once."""

    most = 0

    async def _run(self, job: JobState) -> None:
        CountingWorker.most = max(CountingWorker.most, len(self._active))
        # the job's work, while the next claims are made (long enough for a loaded machine)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(self.jobs.finish, job, self.holder, FINISHED, None, None, (0, 0, 0))
        del self._active[job.id]


@pytest.mark.parametrize(("pool_size", "owners", "expected"), [(2, 4, 2), (1, 4, 4), (2, 20, 4)])
def test_a_pool_worker_takes_its_share(
    tmp_path: Path, pool_size: int, owners: int, expected: int
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    run_id = store.start_run("run", {})
    specs = [
        JobSpec("mail", f"user{n}@contoso.test", f"id{n}", f"User {n}", "", "outlook")
        for n in range(owners)
    ]
    Jobs(store, 30.0).add(run_id, "run", specs)
    worker = CountingWorker(
        store,
        [],
        RunOptions(owner_concurrency=4),
        AuditLog(None, run_id),
        Holder.here("local-1"),
        lease_seconds=30.0,
        pool_run=run_id,
        pool_size=pool_size,
    )
    CountingWorker.most = 0

    async def drain() -> None:
        worker.start()
        try:
            await worker.drain(run_id, wait=False)
        finally:
            await worker.stop()

    asyncio.run(drain())
    assert CountingWorker.most == expected
    assert Jobs(store, 30.0).open_count(run_id) == 0  # and it still ran every job
    store.engine.dispose()


def test_an_idle_worker_leaves_when_its_pause_says_the_run_ended(tmp_path: Path) -> None:
    """A pool worker with no job of its own waits for its siblings' (it would take them
    over if they died); the pause it is given ends its wait as soon as the run is over."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    run_id = store.start_run("run", {})
    jobs = Jobs(store, 30.0)
    jobs.add(run_id, "run", [JobSpec("mail", "a@contoso.test", "id", "A", "", "outlook")])
    sibling = Holder.here("local-2")
    held = jobs.claim(run_id, sibling, None)
    assert held is not None
    worker = CountingWorker(
        store,
        [],
        RunOptions(owner_concurrency=4),
        AuditLog(None, run_id),
        Holder.here("local-1"),
        lease_seconds=30.0,
        pool_run=run_id,
        pool_size=2,
    )
    pauses: list[float] = []
    CountingWorker.most = 0

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:  # the sibling ends the run's last job; the command says so
            await asyncio.to_thread(jobs.finish, held, sibling, FINISHED, None, None, (0, 0, 0))
            return
        assert len(pauses) < 2, "the worker looked at the run again after it ended"
        await asyncio.sleep(0)

    async def drain() -> None:
        worker.start()
        try:
            await asyncio.wait_for(worker.drain(run_id, wait=True, pause=pause), timeout=30.0)
        finally:
            await worker.stop()

    asyncio.run(drain())
    assert len(pauses) == 2 and CountingWorker.most == 0  # it ran nothing itself
    store.engine.dispose()
