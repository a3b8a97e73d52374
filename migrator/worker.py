"""A worker: one process's share of a run, owners claimed from the state under a lease.

A worker claims jobs (one owner of one workload each) from the state, runs several at
once on one event loop through the engine, and records each job's progress and
tally. A heartbeat thread keeps its leases, its worker row and the run's lock alive,
writes progress about once a second, divides the tenant-wide Graph budgets with the
other live workers, and stops a job whose lease another process took over (this
process had stalled past the lease) or whose run was stopped. Before each page's
writes the pass checks it still holds its owner (the fence), so a process that lost
its lease never writes the owner's items while another one does.

`run --workers N` starts N of these on one machine; `hirondelle worker` runs one per
process of a cluster node, fed by Celery tasks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..state import leases
from ..state.jobs import Jobs, JobState
from ..state.leases import Holder
from ..state.schema import ERROR, FATAL, FINISHED, Run
from ..state.store import Store
from .audit import AuditLog
from .engine import Engine, Mode
from .errors import ConfigError, FatalError, HirondelleError, LeaseLost
from .ledger import Tally
from .model import Owner
from .owner_pass import Fence
from .workload import RunOptions, Workload

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often an idle worker looks for claimable jobs
PROGRESS_S = 1.0  # how often progress is written


class JobProgress:
    """A job's counters: the engine's `Reporter`, read by the heartbeat thread."""

    def __init__(self) -> None:
        self.total = self.done = self.bytes = 0

    def add_total(self, workload: str, items: int) -> None:
        self.total += items

    def advance(self, workload: str, items: int, size: int) -> None:
        self.done += items
        self.bytes += size

    def counters(self) -> tuple[int, int, int]:
        return (max(self.total, self.done), self.done, self.bytes)


@dataclass
class _Active:
    job: JobState
    task: asyncio.Task[None]
    progress: JobProgress = field(default_factory=JobProgress)
    lost: bool = False  # another process holds the owner now
    stopped: bool = False  # the run was stopped, or this worker is shutting down


def share_of(limit: int, open_jobs: int, pool_size: int) -> int:
    """The jobs a worker of a local pool of `pool_size` runs at once: at most its share of
    the run's open jobs. The first worker up would otherwise claim every owner it can
    hold (four mailboxes at four a worker) before its siblings start, and leave their
    cores idle for the whole run."""
    if pool_size <= 1:
        return limit
    return max(1, min(limit, -(-open_jobs // pool_size)))


class Worker:
    """Runs the jobs it claims, up to `capacity` at once, in this process."""

    def __init__(
        self,
        store: Store,
        workloads: list[Workload],
        options: RunOptions,
        audit: AuditLog,
        holder: Holder,
        *,
        kind: str = "local",
        capacity: int | None = None,
        lease_seconds: float = 60.0,
        shared: Mapping[str, Callable[[int], None]] | None = None,
        pool_run: int | None = None,
        pool_size: int = 1,
    ) -> None:
        self.store, self.holder, self.kind = store, holder, kind
        self.workloads = {w.name: w for w in workloads}
        self.engine = Engine(store, workloads, options, audit)
        self.capacity = capacity or options.owner_concurrency
        self.lease_seconds = lease_seconds
        self.jobs = Jobs(store, lease_seconds)
        # Tenant-wide budgets (budget group -> divide among n): each worker keeps to its
        # share, the budget divided by the live workers of its pool (the local workers of
        # run `pool_run`, or every live cluster node), re-divided as workers come and go.
        # `pool_size` is the share at start, before the others have registered.
        self.shared = dict(shared or {})
        self.pool_run, self.pool_size = pool_run, pool_size
        self._pool_seen = False
        self._active: dict[int, _Active] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Register this worker and start its heartbeat (call from its event loop)."""
        self._loop = asyncio.get_running_loop()
        with self.store.writing() as s, s.begin():
            leases.register_worker(s, self.holder, self.kind, self.capacity, self.pool_run)
        self._divide(self.pool_size)
        self._beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beat.start()

    async def stop(self) -> None:
        """Give back the jobs still running (queued again) and stop the heartbeat."""
        for active in list(self._active.values()):
            active.stopped = True
            active.task.cancel()
        if self._active:
            await asyncio.gather(*(a.task for a in self._active.values()), return_exceptions=True)
        self._stop.set()
        if self._beat is not None:
            await asyncio.to_thread(self._beat.join)
        with self.store.writing() as s, s.begin():
            leases.worker_stopped(s, self.holder)
        self.engine.close()

    # -- claiming and running ---------------------------------------------------------

    async def drain(
        self,
        run_id: int,
        *,
        wait: bool,
        concurrency: int | None = None,
        prefer: int | None = None,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Claim and run `run_id`'s jobs, `concurrency` at once, until none is claimable.

        With `wait`, stay until every job of the run has ended, so that the jobs of a
        worker that dies are taken over here, looking again after each `pause(POLL_S)`
        (a local pool's ends early once the command has seen the run end).
        """
        limit = concurrency or self.capacity
        if concurrency is None and self.pool_size > 1:
            open_jobs = await asyncio.to_thread(self.jobs.open_count, run_id)
            limit = share_of(limit, open_jobs, self.pool_size)
        mine: set[asyncio.Task[None]] = set()
        try:
            while True:
                while len(mine) < limit and len(self._active) < self.capacity:
                    job = await self._claim(run_id, prefer)
                    prefer = None
                    if job is None:
                        break
                    mine.add(self._launch(job))
                if mine:
                    done, _ = await asyncio.wait(
                        mine, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    mine -= done
                    for task in done:
                        if not task.cancelled():  # a cancelled job was given back
                            task.result()
                    continue
                if not wait or not await asyncio.to_thread(self._run_open, run_id):
                    return
                await pause(POLL_S)
        finally:
            for task in mine:
                task.cancel()

    async def _claim(self, run_id: int, prefer: int | None) -> JobState | None:
        """A claimable job of the run. A claim skips the jobs another transaction has
        locked at that instant: when the preferred job is queued but was not claimed,
        try again a few times before giving up on it."""
        for _ in range(10 if prefer is not None else 1):
            job = await asyncio.to_thread(self.jobs.claim, run_id, self.holder, prefer)
            if job is not None or not await asyncio.to_thread(self.jobs.queued, prefer):
                return job
            await asyncio.sleep(0.2)
        return None

    def _run_open(self, run_id: int) -> bool:
        """Whether the run still has jobs to end and was not stopped."""
        with self.store.session() as s:
            status = s.scalar(select(Run.status).where(Run.id == run_id))
        return status == "running" and self.jobs.open_count(run_id) > 0

    def _launch(self, job: JobState) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run(job), name=f"{job.workload} {job.owner}")
        self._active[job.id] = _Active(job, task)
        return task

    async def _run(self, job: JobState) -> None:
        active = self._active[job.id]
        workload = self.workloads.get(job.workload)
        tally: Tally | None = None
        status, error = FINISHED, None
        log.info("%s: %s %s (job %d)", self.holder.id, job.mode, job.owner, job.id)
        try:
            if workload is None:
                raise ConfigError(
                    f"targets.{job.workload}", "this worker's configuration does not name it"
                )
            owner = Owner(job.owner, job.owner_id, job.display_name, job.target_login)
            fence = self._fence(job)
            if job.mode == "retry-failed":
                tally = await self.engine.retry_owner(workload, owner, active.progress, fence)
            else:
                mode: Mode = "sync" if job.mode == "sync" else "run"
                tally = await self.engine.owner(workload, owner, mode, active.progress, fence)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._abandon, active)
            raise
        except LeaseLost:
            log.warning(
                "%s %s: this worker no longer holds it (its lease ran out): it stops here",
                job.workload,
                job.owner,
            )
            active.lost = True
            await asyncio.to_thread(self._abandon, active)
            return
        except HirondelleError as exc:
            kind = "configuration error" if isinstance(exc, ConfigError) else "error"
            status, error = FATAL, f"{kind}: {exc}"
            if not isinstance(exc, FatalError | ConfigError):
                log.exception("%s %s: unexpected %s", job.workload, job.owner, kind)
                status = ERROR
        except Exception as exc:  # recorded, logged with its traceback
            log.exception("%s %s: internal error", job.workload, job.owner)
            status, error = ERROR, f"internal error: {type(exc).__name__}: {exc}"
        self._active.pop(job.id, None)
        counters = active.progress.counters()
        await asyncio.to_thread(self.jobs.finish, job, self.holder, status, tally, error, counters)

    def _abandon(self, active: _Active) -> None:
        """Give the job back: queued again unless another process holds it already."""
        self._active.pop(active.job.id, None)
        self.jobs.release(active.job, self.holder)

    def _fence(self, job: JobState) -> Fence:
        """Raises `LeaseLost` unless this process holds the owner with a quarter of a lease
        to spare (the heartbeat keeps three quarters or more: less means it stalled).

        Between two target calls a check that passed less than an eighth of a lease ago
        (by this process's clock, which a stall moves on too) still stands: the lease
        cannot have run out since. Inside a transaction the lease is always read."""
        margin = self.lease_seconds / 4
        reuse = min(1.0, self.lease_seconds / 8)
        passed = [-reuse]  # when the last check passed (monotonic)

        def check(session: Session | None = None) -> None:
            active = self._active.get(job.id)
            if active is None or active.lost:
                raise LeaseLost(job.owner)
            if session is None and time.monotonic() - passed[0] < reuse:
                return
            if session is not None:
                held = leases.holds(session, job.lease_key, self.holder, margin)
            else:
                with self.store.session() as own:
                    held = leases.holds(own, job.lease_key, self.holder, margin)
            if not held:
                active.lost = True
                raise LeaseLost(job.owner)
            passed[0] = time.monotonic()

        return check

    # -- the heartbeat thread -------------------------------------------------------

    def _heartbeat(self) -> None:
        renew_every = max(0.5, self.lease_seconds / 4)
        last_renew = 0.0
        written: dict[int, tuple[int, int, int]] = {}
        while not self._stop.wait(PROGRESS_S):
            try:
                written = self._write_progress(written)
                self._share_budgets()
                if time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    self._renew()
            except Exception:  # a missed beat is retried on the next one
                log.warning("heartbeat of %s failed", self.holder.id, exc_info=True)

    def _write_progress(
        self, written: dict[int, tuple[int, int, int]]
    ) -> dict[int, tuple[int, int, int]]:
        now = {job_id: a.progress.counters() for job_id, a in list(self._active.items())}
        changed = {k: v for k, v in now.items() if written.get(k) != v}
        self.jobs.save_progress(self.holder, changed)
        return now

    def _renew(self) -> None:
        active = list(self._active.values())
        runs = sorted({a.job.run_id for a in active})
        with self.store.writing() as s, s.begin():
            held = leases.renew_leases(s, self.holder, self.lease_seconds)
            leases.worker_heartbeat(s, self.holder, len(active))
            if runs:
                leases.renew_lock(s, self.holder, self.lease_seconds, runs)
            stopped = set(
                s.scalars(select(Run.id).where(Run.id.in_(runs), Run.status != "running"))
            )
        for a in active:
            if a.job.lease_key not in held:
                log.warning("%s lost its lease on %s", self.holder.id, a.job.owner)
                a.lost = True
                self._cancel(a)
            elif a.job.run_id in stopped:
                a.stopped = True
                self._cancel(a)

    def _share_budgets(self) -> None:
        if not self.shared:
            return
        with self.store.session() as s:
            live = leases.live_workers(s, self.kind, self.lease_seconds, self.pool_run)
        # Until the whole pool has been seen, the share is the one planned at start.
        self._pool_seen = self._pool_seen or live >= self.pool_size
        self._divide(live if self._pool_seen else max(live, self.pool_size))

    def _divide(self, workers: int) -> None:
        for divide in self.shared.values():
            self._call(divide, max(1, workers))

    def _cancel(self, active: _Active) -> None:
        self._call(active.task.cancel)

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)
