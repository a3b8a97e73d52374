"""A run, coordinated: the state lock, one job per owner, workers, progress, the summary.

`run`, `sync` and `retry-failed` all go through `coordinate`:

1. take the state lock (a row in the state database, renewed by this process: two runs
   over one state exclude each other whichever folder they start from);
2. record the run and queue one job per owner of each workload (a mailbox, a drive or
   library, a team);
3. have the jobs run: in this process (one worker), in N local worker processes, or
   on a cluster's Celery workers; every worker claims jobs from the state under a lease;
4. follow the jobs' progress in the state until every job has ended, and sum their
   tallies into the run's summary.

A fatal error in one job (authentication refused, a full quota) stops the run: the
queued jobs are not run, the running ones stop, and the error is raised.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..state import leases
from ..state.jobs import Jobs, JobSpec, JobState, Outstanding
from ..state.leases import Holder
from ..state.schema import ERROR, FATAL, QUEUED, RUNNING, Run
from ..state.store import Store
from .audit import AuditLog
from .config import Config
from .errors import ConfigError, FatalError, LockedError
from .ledger import Tally
from .model import Owner
from .selection import UsersFile, owners_of
from .workload import RunOptions, RunReporter, Workload

log = logging.getLogger(__name__)
FOLLOW_S = 0.5


def run_options(config: Config, workers: int = 1) -> RunOptions:
    """The engine's knobs from the configuration; the memory budget is the machine's,
    shared by its `workers` processes."""
    return RunOptions(
        owner_concurrency=config.owner_concurrency,
        fetch_concurrency=config.fetch_concurrency,
        target_sessions=config.target_sessions,
        deletions="keep" if config.deletions == "keep" else "mirror",
        users=frozenset(config.users) if config.users else None,
        target_logins=dict(config.users),
        memory_bytes=RunOptions.memory_bytes // max(1, workers),
        target_wait=config.target_wait,
    )


def default_workers() -> int:
    """Worker processes when nothing says otherwise: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(config: Config, workers: int | None) -> int:
    """The local worker processes of a run: `--workers`, else the configuration's, else
    the cores (`default_workers`)."""
    return workers or config.workers or default_workers()


@dataclass
class RunResult:
    run_id: int
    tallies: dict[str, Tally]
    audit_path: str | None
    workers: int = 1
    detached: bool = False
    jobs: int = 0
    # What is still failed for the run's owners, this pass's failures and earlier ones.
    outstanding: dict[str, Outstanding] = field(default_factory=dict)
    log_path: str | None = None  # the run's log file, beside its audit log

    @property
    def ok(self) -> bool:
        this_pass = any(
            t.failed or t.failed_units or t.failed_owners for t in self.tallies.values()
        )
        return not this_pass and not any(self.outstanding.values())

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run": self.run_id,
            "audit_log": self.audit_path,
            "log_file": self.log_path,
            "workers": self.workers,
            "workloads": {k: v.as_dict() for k, v in self.tallies.items()},
            "still_failed": {k: v.as_dict() for k, v in self.outstanding.items() if v},
        }
        if self.detached:
            data.update(detached=True, jobs=self.jobs)
        return data


LEGACY_MARK = b"hirondelle state lock, kept for earlier versions; held by pid "


@contextmanager
def legacy_lock(state_url: str) -> Iterator[None]:
    """Hold the lock file versions before the state lock moved into the database kept
    beside an SQLite state, so that a run of such a version and this one never share the
    state (nor its schema upgrade). When a run of this version holds it, the state lock
    in the database says who (the file says only that it is one of ours)."""
    if not state_url.startswith("sqlite:///") or state_url.endswith(":memory:"):
        yield
        return
    path = Path(state_url.removeprefix("sqlite:///")).parent / "hirondelle.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if os.pread(fd, len(LEGACY_MARK), 0) != LEGACY_MARK:
                raise LockedError(
                    f"another hirondelle run holds this state: a run of an earlier version "
                    f"holds {path}; wait for it to finish"
                ) from None
            yield  # one of ours: the state lock decides
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, LEGACY_MARK + str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


class StateLockHold:
    """The state lock, held by this process for a command; a thread renews it."""

    def __init__(self, store: Store, holder: Holder, command: str, seconds: float) -> None:
        self.store, self.holder, self.command, self.seconds = store, holder, command, seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        for attempt in range(3):
            try:
                with self.store.writing() as s, s.begin():
                    other, stale = leases.take_lock(s, self.holder, self.command, self.seconds)
                break
            except IntegrityError:  # two first takes of the lock at once: look again
                if attempt == 2:
                    raise
        if other is not None:
            raise LockedError(
                f"another hirondelle run holds this state: {other.describe()}; wait for it "
                "to finish or point state.url elsewhere"
            )
        if stale is not None:
            log.warning(
                "run %d was interrupted (its process is gone or stopped renewing the lock): "
                "this run resumes its work",
                stale,
            )
        self._thread = threading.Thread(target=self._renew, name="state-lock", daemon=True)
        self._thread.start()

    def attach(self, run_id: int) -> None:
        with self.store.writing() as s, s.begin():
            leases.attach_run(s, self.holder, run_id)

    def hand_over(self, run_id: int, grace: float) -> None:
        """Leave the lock to a detached run's workers: it lasts `grace` seconds unless a
        worker renews it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.store.writing() as s, s.begin():
            leases.detach_lock(s, self.holder, run_id, grace)

    def _renew(self) -> None:
        while not self._stop.wait(max(0.5, self.seconds / 4)):
            try:
                with self.store.writing() as s, s.begin():
                    if not leases.renew_lock(s, self.holder, self.seconds):
                        self.lost = True
                        return
            except Exception:  # retried on the next beat
                log.warning("renewing the state lock failed", exc_info=True)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.store.writing() as s, s.begin():
            leases.release_lock(s, self.holder)


async def job_specs(
    workloads: Sequence[Workload],
    command: str,
    options: RunOptions,
    store: Store,
    users: UsersFile | None = None,
) -> list[JobSpec]:
    """One job per owner of each workload (the owners with failed items for retry-failed).
    The users file is checked against the tenant first (`ConfigError` by line)."""
    specs: list[JobSpec] = []
    selected = {} if command == "retry-failed" else await owners_of(workloads, options, users)
    for workload in workloads:
        if command == "retry-failed":
            owners = [
                Owner(upn, "", "", options.target_logins.get(upn.lower(), ""))
                for upn in store.failed_owners(workload.name)
            ]
        else:
            owners = selected[workload.name]
        specs.extend(
            JobSpec(
                workload.name,
                owner.upn,
                owner.source_id,
                owner.display_name,
                owner.target_login,
                workload.budget_group,
            )
            for owner in owners
        )
    return specs


@dataclass
class Follower:
    """Turns the jobs' progress in the state into the reporter's totals and advances."""

    jobs: Jobs
    run_id: int
    reporter: RunReporter
    shown: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def step(self) -> int:
        """Report what moved since the last step; the number of jobs still open."""
        open_jobs = 0
        for workload, now in self.jobs.progress(self.run_id).items():
            total, done, size = self.shown.get(workload, (0, 0, 0))
            if now.total > total:
                self.reporter.add_total(workload, now.total - total)
            if now.done > done or now.bytes > size:
                self.reporter.advance(workload, max(0, now.done - done), max(0, now.bytes - size))
            self.shown[workload] = (
                max(total, now.total),
                max(done, now.done),
                max(size, now.bytes),
            )
            waiting, running = now.jobs.get(QUEUED, 0), now.jobs.get(RUNNING, 0)
            self.reporter.owners(workload, waiting, running)
            open_jobs += waiting + running
        return open_jobs


async def follow(
    jobs: Jobs,
    run_id: int,
    reporter: RunReporter,
    tick: Callable[[int], None] | None = None,
    lock: StateLockHold | None = None,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> JobState | None:
    """Follow the run until every job has ended; the job that stopped it, if one did.

    `tick(open_jobs)` runs on each step (the local pool checks its processes there);
    `pause(FOLLOW_S)` between steps (the local pool's ends early when a worker ends: the
    last one ends when the run's jobs have).
    """
    follower = Follower(jobs, run_id, reporter)
    while True:
        open_jobs = await asyncio.to_thread(follower.step)
        stopper = await asyncio.to_thread(jobs.stopped, run_id)
        if stopper is not None:
            return stopper
        if open_jobs == 0:
            return None
        if lock is not None and lock.lost:
            raise LockedError("another process took the state lock over: this run stops")
        if tick is not None:
            tick(open_jobs)
        await pause(FOLLOW_S)


def stop_run(store: Store, jobs: Jobs, run_id: int, status: str) -> None:
    """The run stops: its queued jobs will not run; workers stop its running ones."""
    jobs.interrupt(run_id)
    with store.writing() as s, s.begin():
        s.execute(update(Run).where(Run.id == run_id).values(status=status))


def raise_stopper(job: JobState) -> None:
    """Raise the error that stopped the run, as the command line reports it."""
    where = f"{job.workload} {job.owner}"
    message = job.error or "stopped"
    if job.status == FATAL and message.startswith("configuration error: "):
        setting, _, detail = message.removeprefix("configuration error: ").partition(": ")
        raise ConfigError(setting, f"{detail} ({where})")
    if job.status == ERROR:
        raise FatalError(f"{where}: {message} (the log above has the details)")
    raise FatalError(f"{where}: {message.removeprefix('error: ')}")


def audit_for(config: Config, run_id: int, suffix: str = "") -> AuditLog:
    return AuditLog(config.audit_dir, run_id, suffix)
