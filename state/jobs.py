"""The jobs of a run: one per owner of one workload, claimed by workers under a lease.

A run writes its jobs `queued`. A worker claims one in a write transaction: it takes
the lease of the job's owner (`state.leases`), marks the job `running` under its own
name and commits; it writes the job's progress while it runs and its tally when it
ends. A job whose holder died (its lease expired, or its process is gone from this
machine) is claimable again, and the next claim resumes the owner where the state
says it stopped. Owners that draw on one Graph budget share one lease key (a user's
mail, calendar and contacts are one mailbox), so they never run in two processes at
once and the mailbox's budget stays whole in the process that holds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..migrator.ledger import Tally
from .leases import Holder, alive, now, release_lease, take_lease
from .schema import (
    FAILED,
    FATAL,
    FINISHED,
    INTERRUPTED,
    OPEN_JOBS,
    QUEUED,
    RUNNING,
    STARTED,
    ItemRow,
    Job,
    Lease,
    Unit,
)
from .store import Store

CLAIM_WINDOW = 200  # jobs looked at per claim


@dataclass(frozen=True)
class JobSpec:
    """What a run asks for: one owner of one workload."""

    workload: str
    owner: str
    owner_id: str
    display_name: str
    target_login: str
    budget: str  # the Graph budget the owner draws on ("outlook", "sharepoint", "teams")

    @property
    def lease_key(self) -> str:
        return lease_key(self.budget, self.owner)


def lease_key(budget: str, owner: str) -> str:
    return f"{budget}:{owner.lower()}"


def budget_of(key: str) -> str:
    return key.split(":", 1)[0]


@dataclass(frozen=True)
class JobState:
    id: int
    run_id: int
    mode: str
    workload: str
    owner: str
    owner_id: str
    display_name: str
    target_login: str
    lease_key: str
    status: str
    holder: str | None
    attempts: int
    items_total: int = 0
    items_done: int = 0
    bytes_done: int = 0
    error: str | None = None
    tally: Mapping[str, Any] = field(default_factory=dict)


def _state(row: Job) -> JobState:
    return JobState(
        row.id,
        row.run_id,
        row.mode,
        row.workload,
        row.owner,
        row.owner_id,
        row.display_name,
        row.target_login,
        row.lease_key,
        row.status,
        row.holder,
        row.attempts,
        row.items_total,
        row.items_done,
        row.bytes_done,
        row.error,
        dict(row.tally or {}),
    )


@dataclass
class WorkloadProgress:
    """One workload's jobs in one run, summed."""

    total: int = 0
    done: int = 0
    bytes: int = 0
    jobs: dict[str, int] = field(default_factory=dict)  # status -> count


@dataclass
class Outstanding:
    """What the state still holds unwritten for one workload's owners, across passes."""

    failed_items: int = 0
    unsettled_items: int = 0  # marked started by a pass that did not end
    owners: list[str] = field(default_factory=list)  # owners with failed items
    failed_units: list[tuple[str, str, str]] = field(default_factory=list)  # owner, path, why

    def __bool__(self) -> bool:
        return bool(self.failed_items or self.unsettled_items or self.failed_units)

    def as_dict(self) -> dict[str, Any]:
        return {
            "failed_items": self.failed_items,
            "unsettled_items": self.unsettled_items,
            "owners": list(self.owners),
            "failed_folders": [
                {"owner": o, "folder": p, "reason": r} for o, p, r in self.failed_units
            ],
        }


class Jobs:
    """The jobs table, through the store's sessions."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds

    def add(self, run_id: int, mode: str, specs: Iterable[JobSpec]) -> int:
        """Queue one job per spec; workloads interleave (the n-th owner of each first)."""
        rows: list[Job] = []
        positions: dict[str, int] = defaultdict(int)
        for spec in specs:
            rows.append(
                Job(
                    run_id=run_id,
                    mode=mode,
                    workload=spec.workload,
                    owner=spec.owner,
                    owner_id=spec.owner_id,
                    display_name=spec.display_name,
                    target_login=spec.target_login,
                    lease_key=spec.lease_key,
                    position=positions[spec.workload],
                    status=QUEUED,
                    attempts=0,
                    items_total=0,
                    items_done=0,
                    bytes_done=0,
                    tally={},
                )
            )
            positions[spec.workload] += 1
        with self.store.writing() as s, s.begin():
            s.add_all(rows)
        return len(rows)

    # -- claiming ---------------------------------------------------------------

    def claim(self, run_id: int, holder: Holder, prefer: int | None = None) -> JobState | None:
        """Take the first job of `run_id` nobody alive holds (`prefer` first), or None."""
        for _ in range(5):
            try:
                return self._claim(run_id, holder, prefer)
            except IntegrityError:  # two first takes of one lease key: try again
                continue
        return None

    def _claim(self, run_id: int, holder: Holder, prefer: int | None) -> JobState | None:
        with self.store.writing() as s, s.begin():
            order: list[Any] = [Job.position, Job.id]
            if prefer is not None:
                order.insert(0, Job.id != prefer)
            candidates = list(
                s.scalars(
                    select(Job)
                    .where(Job.run_id == run_id, Job.status.in_(OPEN_JOBS))
                    .order_by(*order)
                    .limit(CLAIM_WINDOW)
                    .with_for_update(skip_locked=True)
                )
            )
            if not candidates:
                return None
            at = now(s)
            keys = {job.lease_key for job in candidates}
            leases = {row.key: row for row in s.scalars(select(Lease).where(Lease.key.in_(keys)))}
            for job in candidates:
                if job.status == RUNNING and job.holder == holder.id:
                    continue  # this process runs it already
                lease = leases.get(job.lease_key)
                if lease is not None and lease.holder != holder.id and alive(lease, at):
                    continue
                key, budget = job.lease_key, budget_of(job.lease_key)
                if not take_lease(s, key, budget, run_id, holder, self.lease_seconds, at):
                    continue
                job.status, job.holder = RUNNING, holder.id
                job.attempts += 1
                job.started_at = at
                return _state(job)
        return None

    # -- while a job runs -----------------------------------------------------------

    def save_progress(self, holder: Holder, progress: Mapping[int, tuple[int, int, int]]) -> None:
        """Items counted, items done and bytes written so far, per running job."""
        if not progress:
            return
        with self.store.writing() as s, s.begin():
            for job_id, (total, done, size) in progress.items():
                s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.holder == holder.id)
                    .values(items_total=total, items_done=done, bytes_done=size)
                )

    def finish(
        self,
        job: JobState,
        holder: Holder,
        status: str,
        tally: Tally | None,
        error: str | None,
        progress: tuple[int, int, int],
    ) -> bool:
        """Record how the job ended and free its owner's lease unless this process runs
        another job on it; False if another process took the job meanwhile."""
        total, done, size = progress
        with self.store.writing() as s, s.begin():
            result = s.execute(
                update(Job)
                .where(Job.id == job.id, Job.holder == holder.id, Job.status == RUNNING)
                .values(
                    status=status,
                    tally=tally.as_dict() if tally is not None else {},
                    error=error,
                    finished_at=now(s),
                    items_total=total,
                    items_done=done,
                    bytes_done=size,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
                return False
            self._free_lease(s, job.lease_key, holder)
            return True

    def release(self, job: JobState, holder: Holder) -> None:
        """Give the job back (this process stops): queued again, its lease freed."""
        with self.store.writing() as s, s.begin():
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.holder == holder.id, Job.status == RUNNING)
                .values(status=QUEUED, holder=None, dispatched_at=None)
            )
            self._free_lease(s, job.lease_key, holder)

    @staticmethod
    def _free_lease(s: Any, key: str, holder: Holder) -> None:
        others = s.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.lease_key == key, Job.holder == holder.id, Job.status == RUNNING)
        )
        if not others:
            release_lease(s, key, holder)

    # -- the run as a whole -------------------------------------------------------------

    def queued(self, job_id: int | None) -> bool:
        """Whether the job waits for a worker (queued, nobody holds it)."""
        if job_id is None:
            return False
        with self.store.session() as s:
            return s.scalar(select(Job.status).where(Job.id == job_id)) == QUEUED

    def open_count(self, run_id: int) -> int:
        with self.store.session() as s:
            query = select(func.count()).select_from(Job)
            return int(s.scalar(query.where(Job.run_id == run_id, Job.status.in_(OPEN_JOBS))) or 0)

    def stopped(self, run_id: int) -> JobState | None:
        """The first job that stopped the run (a fatal error or an unexpected one), if any."""
        with self.store.session() as s:
            row = s.scalar(
                select(Job)
                .where(Job.run_id == run_id, Job.status.not_in((*OPEN_JOBS, FINISHED)))
                .where(Job.status != INTERRUPTED)
                .order_by(Job.finished_at, Job.id)
                .limit(1)
            )
            return None if row is None else _state(row)

    def interrupt(self, run_id: int) -> None:
        """The run stops: its queued jobs will not run (running ones end on their own)."""
        with self.store.writing() as s, s.begin():
            s.execute(
                update(Job)
                .where(Job.run_id == run_id, Job.status == QUEUED)
                .values(status=INTERRUPTED)
            )

    def progress(self, run_id: int) -> dict[str, WorkloadProgress]:
        """Per workload: items counted, done, bytes, and jobs per status."""
        found: dict[str, WorkloadProgress] = {}
        with self.store.session() as s:
            rows = s.execute(
                select(
                    Job.workload,
                    Job.status,
                    func.count(),
                    func.coalesce(func.sum(Job.items_total), 0),
                    func.coalesce(func.sum(Job.items_done), 0),
                    func.coalesce(func.sum(Job.bytes_done), 0),
                )
                .where(Job.run_id == run_id)
                .group_by(Job.workload, Job.status)
            ).all()
        for workload, status, count, total, done, size in rows:
            entry = found.setdefault(workload, WorkloadProgress())
            entry.total += int(total)
            entry.done += int(done)
            entry.bytes += int(size)
            entry.jobs[status] = int(count)
        return found

    def tallies(self, run_id: int, workloads: Sequence[str]) -> dict[str, Tally]:
        """The run's summary: every finished job's tally, summed per workload."""
        tallies = {name: Tally() for name in workloads}
        with self.store.session() as s:
            rows = s.execute(
                select(Job.workload, Job.tally).where(
                    Job.run_id == run_id, Job.status.in_((FINISHED, FATAL))
                )
            ).all()
        for workload, tally in rows:
            tallies.setdefault(workload, Tally()).add(Tally.from_dict(tally or {}))
        return tallies

    def outstanding(self, run_id: int) -> dict[str, Outstanding]:
        """What is still failed or unsettled for the owners of the run's jobs, whichever
        pass left it: the run is not a success while any of it remains."""
        found: dict[str, Outstanding] = defaultdict(Outstanding)
        with self.store.session() as s:
            owners = select(Job.workload, Job.owner).where(Job.run_id == run_id).subquery()
            items = s.execute(
                select(ItemRow.workload, ItemRow.owner, ItemRow.status, func.count())
                .join(
                    owners,
                    (owners.c.workload == ItemRow.workload) & (owners.c.owner == ItemRow.owner),
                )
                .where(ItemRow.status.in_((FAILED, STARTED)))
                .group_by(ItemRow.workload, ItemRow.owner, ItemRow.status)
            ).all()
            units = s.execute(
                select(Unit.workload, Unit.owner, Unit.path, Unit.last_error)
                .join(owners, (owners.c.workload == Unit.workload) & (owners.c.owner == Unit.owner))
                .where(Unit.status == FAILED)
                .order_by(Unit.workload, Unit.owner, Unit.path)
            ).all()
        for workload, owner, status, count in items:
            entry = found[workload]
            if status == FAILED:
                entry.failed_items += int(count)
                entry.owners.append(owner)
            else:
                entry.unsettled_items += int(count)
        for workload, owner, path, reason in units:
            found[workload].failed_units.append((owner, path, reason or "not finished"))
        for entry in found.values():
            entry.owners.sort()
        return dict(found)

    def of_run(self, run_id: int) -> list[JobState]:
        with self.store.session() as s:
            rows = s.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.id))
            return [_state(row) for row in rows]

    # -- dispatching (a cluster) ---------------------------------------------------

    def to_dispatch(self, run_id: int, limit: int, older_than: float) -> list[int]:
        """Up to `limit` claimable jobs not dispatched for `older_than` seconds, marked
        dispatched now: a task for them may have been lost (a broker restart) or their
        holder died."""
        if limit < 1:
            return []
        picked: list[int] = []
        with self.store.writing() as s, s.begin():
            at = now(s)
            rows = s.scalars(
                select(Job)
                .where(Job.run_id == run_id, Job.status.in_(OPEN_JOBS))
                .where((Job.dispatched_at.is_(None)) | (Job.dispatched_at < at - older_than))
                .order_by(Job.position, Job.id)
                .limit(CLAIM_WINDOW)
                .with_for_update(skip_locked=True)
            )
            leases = {row.key: row for row in s.scalars(select(Lease))}
            for job in rows:
                lease = leases.get(job.lease_key)
                if lease is not None and alive(lease, at):
                    continue  # held alive: its holder runs it, or runs its mailbox
                job.dispatched_at = at
                picked.append(job.id)
                if len(picked) >= limit:
                    break
        return picked

    def mark_dispatched(self, job_ids: Sequence[int]) -> None:
        with self.store.writing() as s, s.begin():
            at = now(s)
            s.execute(update(Job).where(Job.id.in_(list(job_ids))).values(dispatched_at=at))
