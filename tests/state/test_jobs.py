"""Jobs, leases and the state lock on SQLite and PostgreSQL: one holder at a time, a dead
holder's work taken over, concurrent claimers in several processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import update

from hirondelle.state import leases
from hirondelle.state.jobs import Jobs, JobSpec
from hirondelle.state.leases import Holder
from hirondelle.state.schema import FINISHED, QUEUED, RUNNING, StateLock
from hirondelle.state.store import Store, open_store

LEASE = 30.0


def specs(owners: int, workloads: tuple[str, ...] = ("mail", "calendar")) -> list[JobSpec]:
    return [
        JobSpec(workload, f"user{n}@contoso.test", f"id{n}", f"User {n}", "", "outlook")
        for workload in workloads
        for n in range(owners)
    ]


def a_run(store: Store, owners: int = 3) -> tuple[Jobs, int]:
    jobs = Jobs(store, LEASE)
    run_id = store.start_run("run", {})
    jobs.add(run_id, "run", specs(owners))
    return jobs, run_id


def elsewhere(name: str, pid: int = 1) -> Holder:
    """A holder on another machine: only its lease's expiry can free what it holds."""
    return Holder(f"{name}@machine-{name}#{pid}", f"machine-{name}", pid, 1)


def test_one_owner_one_holder_and_a_mailbox_is_one_owner(state_url: str) -> None:
    store = open_store(state_url)
    jobs, run_id = a_run(store, owners=1)
    a, b = elsewhere("a"), elsewhere("b")
    first = jobs.claim(run_id, a)
    assert first is not None and first.status == RUNNING
    # user0's calendar shares the mailbox's lease: nobody else may take it...
    assert jobs.claim(run_id, b) is None
    # ... but the holder of the mailbox may, next to its mail
    second = jobs.claim(run_id, a)
    assert second is not None and {first.workload, second.workload} == {"mail", "calendar"}
    assert jobs.finish(first, a, FINISHED, None, None, (5, 5, 50))
    with store.session() as s:
        assert leases.holds(s, first.lease_key, a)  # still held for the calendar
        # the fence reads the expiry by the database's clock: not held a lease and more on
        assert leases.holds(s, first.lease_key, a, margin=LEASE - 5)
        assert not leases.holds(s, first.lease_key, a, margin=LEASE + 5)
        assert not leases.holds(s, first.lease_key, b)
    assert jobs.finish(second, a, FINISHED, None, None, (1, 1, 10))
    with store.session() as s:
        assert not leases.holds(s, first.lease_key, a)
    assert jobs.open_count(run_id) == 0
    store.engine.dispose()


def test_a_dead_holders_job_is_taken_over(state_url: str) -> None:
    store = open_store(state_url)
    jobs, run_id = a_run(store, owners=1)
    # a holder of this machine whose process is gone: its job is free at once
    gone = Holder.here("gone")
    gone = Holder(gone.id.replace(f"#{os.getpid()}", "#999999"), gone.host, 999999, 12345)
    taken = jobs.claim(run_id, gone)
    assert taken is not None
    heir = Holder.here("heir")
    again = jobs.claim(run_id, heir, prefer=taken.id)
    assert again is not None and again.id == taken.id and again.attempts == 2
    # the dead holder can no longer record anything for it
    assert not jobs.finish(taken, gone, FINISHED, None, None, (0, 0, 0))
    with store.session() as s:
        assert not leases.holds(s, taken.lease_key, gone)
        assert leases.holds(s, taken.lease_key, heir)
    store.engine.dispose()


def test_an_expired_lease_frees_a_remote_holders_job(state_url: str) -> None:
    store = open_store(state_url)
    jobs = Jobs(store, 0.3)
    run_id = store.start_run("run", {})
    jobs.add(run_id, "run", specs(1, ("mail",)))
    remote, local = elsewhere("a"), Holder.here("local")
    assert jobs.claim(run_id, remote) is not None
    assert jobs.claim(run_id, local) is None  # alive on its machine, as far as we know
    deadline = time.monotonic() + 10
    while (taken := jobs.claim(run_id, local)) is None:
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.05)
    assert taken.attempts == 2
    store.engine.dispose()


def test_the_state_lock_names_its_holder_and_passes_on_when_it_dies(state_url: str) -> None:
    store = open_store(state_url)
    first = Holder.here("run-sync")
    with store.writing() as s, s.begin():
        assert leases.take_lock(s, first, "sync", LEASE) == (None, None)
    run_id = store.start_run("sync", {})
    with store.writing() as s, s.begin():
        leases.attach_run(s, first, run_id)
    with store.writing() as s, s.begin():
        view, _ = leases.take_lock(s, elsewhere("b"), "run", LEASE)
    assert view is not None and view.command == "sync" and view.run_id == run_id
    assert first.id in view.describe()
    # the holder dies (same machine, its process gone): the next one takes over at once
    dead = Holder(first.id, first.host, 999999, 12345)
    with store.writing() as s, s.begin():
        s.execute(update(StateLock).values(holder=dead.id, pid=dead.pid, pid_start=12345))
    with store.writing() as s, s.begin():
        view, stale = leases.take_lock(s, elsewhere("b"), "run", LEASE)
    assert view is None and stale == run_id
    assert store.last_runs(1)[0].status == "interrupted"
    store.engine.dispose()


def _claimer(url: str, run_id: int, name: str, queue: Any) -> None:
    store = open_store(url)
    jobs = Jobs(store, LEASE)
    holder = Holder.here(name)
    while (job := jobs.claim(run_id, holder)) is not None:
        start = time.monotonic()
        time.sleep(0.01)
        queue.put((job.id, job.lease_key, holder.id, start, time.monotonic()))
        jobs.finish(job, holder, FINISHED, None, None, (1, 1, 1))
    store.engine.dispose()


def test_concurrent_claimers_take_each_job_once_and_never_share_an_owner(state_url: str) -> None:
    store = open_store(state_url)
    jobs, run_id = a_run(store, owners=20)  # 40 jobs, 20 lease keys
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_claimer, args=(state_url, run_id, f"c{n}", queue)) for n in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    records = [queue.get(timeout=5) for _ in range(40)]
    assert queue.empty()
    assert sorted(r[0] for r in records) == sorted(j.id for j in jobs.of_run(run_id))
    by_key: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for _, key, holder, start, end in records:
        by_key[key].append((holder, start, end))
    for key, spans in by_key.items():
        spans.sort(key=lambda span: span[1])
        for (h1, _, end1), (h2, start2, _) in zip(spans, spans[1:], strict=False):
            assert h1 == h2 or start2 >= end1, f"{key} held by {h1} and {h2} at once"
    assert {j.status for j in jobs.of_run(run_id)} == {FINISHED}
    assert jobs.open_count(run_id) == 0 and QUEUED not in {j.status for j in jobs.of_run(run_id)}
    store.engine.dispose()


def test_a_detached_run_is_finished_by_its_workers_only_once_handed_over(state_url: str) -> None:
    """A node's sweep must not close a detached run while its command still queues jobs."""
    from types import SimpleNamespace

    from hirondelle.migrator.cluster import finish_detached

    store = open_store(state_url)
    config: Any = SimpleNamespace(lease_seconds=LEASE, targets={"mail": None})
    command = Holder.here("run")
    with store.writing() as s, s.begin():
        assert leases.take_lock(s, command, "run", LEASE)[0] is None
    run_id = store.start_run("run", {"detached": True})
    with store.writing() as s, s.begin():
        leases.attach_run(s, command, run_id)
    finish_detached(config, store, run_id)  # no job yet: the command is still listing owners
    assert _run_status(store, run_id) == "running"
    jobs = Jobs(store, LEASE)
    jobs.add(run_id, "run", specs(1, ("mail",)))
    with store.writing() as s, s.begin():
        leases.detach_lock(s, command, run_id, 600)
    worker = elsewhere("a")
    job = jobs.claim(run_id, worker)
    assert job is not None
    assert jobs.finish(job, worker, FINISHED, None, None, (1, 1, 1))
    finish_detached(config, store, run_id)
    assert _run_status(store, run_id) == "done"
    store.engine.dispose()


def _run_status(store: Store, run_id: int) -> str:
    from hirondelle.state.schema import Run

    with store.session() as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run.status
