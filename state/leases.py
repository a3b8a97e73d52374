"""Who holds what in the state: the one-run lock, owner leases and the workers' liveness.

Every hold is a row naming its holder (an id, the machine and the process) with an
expiry by the database's clock; the holder's heartbeat pushes the expiry forward.
A hold is lost when its expiry passes, or at once when the holder ran on this very
machine and its process is gone (a kill -9 then costs no wait). Taking a hold is one
write transaction that reads the row and replaces it only if it is free, so two
processes or machines never both believe they hold it (SQLite: the transaction holds
the write lock; PostgreSQL: the row is read `FOR UPDATE`, and two inserts of a new
key collide on its primary key, the loser retrying).
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import Float, Select, bindparam, delete, select, update
from sqlalchemy.orm import Session

from .database import clock
from .schema import INTERRUPTED, OPEN_JOBS, Job, Lease, Run, StateLock, WorkerRow

LOCK_NAME = "state"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def this_machine() -> str:
    """This machine as holders record it: its host name and boot, so that two machines
    cloned with one host name are still told apart."""
    boot = _boot_id()
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), to tell it from a reused pid;
    None when there is no such process, or only its zombie (it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Holder:
    """A process that holds locks and leases."""

    id: str
    host: str
    pid: int
    pid_start: int | None

    @classmethod
    def here(cls, name: str, host: str | None = None) -> Holder:
        """This process, named `name`; `host` stands for this machine when given (a cluster
        node's name says which machine it is)."""
        pid = os.getpid()
        machine = host or this_machine()
        return cls(f"{name}@{machine}#{pid}", machine, pid, process_start(pid))


class Held(Protocol):
    holder: str
    host: str
    pid: int
    pid_start: int | None
    expires_at: float


def process_may_run(host: str, pid: int, pid_start: int | None) -> bool:
    """False when the process ran on this machine and is gone (or its pid was reused);
    a process of another machine may run, as far as this one can tell."""
    if host != this_machine() or pid_start is None:
        return True
    return process_start(pid) == pid_start


def alive(held: Held, now: float) -> bool:
    """Whether the hold still stands: unexpired, and its process alive if it ran here."""
    return held.expires_at > now and process_may_run(held.host, held.pid, held.pid_start)


def now(s: Session) -> float:
    """The database's clock, in the session's transaction."""
    return float(s.scalar(select(clock(s.get_bind().dialect.name))) or 0.0)


def _fill(row: StateLock | Lease, holder: Holder, at: float, seconds: float) -> None:
    row.holder, row.host, row.pid, row.pid_start = (
        holder.id,
        holder.host,
        holder.pid,
        holder.pid_start,
    )
    row.acquired_at, row.expires_at = at, at + seconds


# -- the state lock ----------------------------------------------------------------------


@dataclass(frozen=True)
class LockView:
    """Who holds the state lock, for messages."""

    command: str
    run_id: int | None
    holder: str
    held_for: float
    renewed_ago: float

    def describe(self) -> str:
        run = f" (run {self.run_id})" if self.run_id is not None else ""
        return (
            f"`{self.command}`{run} by {self.holder}, for {_span(self.held_for)}, "
            f"last renewed {_span(self.renewed_ago)} ago"
        )


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def take_lock(
    s: Session, holder: Holder, command: str, seconds: float
) -> tuple[LockView | None, int | None]:
    """Take the state lock in `s`'s write transaction.

    Returns (the live holder's view, None) when another process holds it; else
    (None, the run id a dead holder left interrupted, if any).
    """
    at = now(s)
    row = s.get(StateLock, LOCK_NAME, with_for_update=True, populate_existing=True)
    if row is not None and row.holder != holder.id and alive(row, at):
        renewed = at - (row.expires_at - seconds)
        return LockView(row.command, row.run_id, row.holder, at - row.acquired_at, renewed), None
    stale = row.run_id if row is not None and row.holder != holder.id else None
    if row is None:
        row = StateLock(name=LOCK_NAME)
        s.add(row)
    _fill(row, holder, at, seconds)
    row.command, row.run_id = command, None
    if stale is not None:
        s.execute(
            update(Run).where(Run.id == stale, Run.status == "running").values(status="interrupted")
        )
        s.execute(
            update(Job)
            .where(Job.run_id == stale, Job.status.in_(OPEN_JOBS))
            .values(status=INTERRUPTED)
        )
    s.flush()
    return None, stale


def detach_lock(s: Session, holder: Holder, run_id: int, seconds: float) -> None:
    """Leave the lock to a detached run: no process of this machine holds it any more,
    the run's workers renew it, and it lasts `seconds` unless they do."""
    s.execute(
        update(StateLock)
        .where(StateLock.name == LOCK_NAME, StateLock.holder == holder.id)
        .values(
            holder=f"detached run {run_id} (kept by its workers)",
            host="",
            pid=0,
            pid_start=None,
            expires_at=now(s) + seconds,
        )
    )


def lock_view(s: Session, seconds: float) -> tuple[LockView | None, bool]:
    """The state lock as it stands (None if never taken), and whether it is alive."""
    row = s.get(StateLock, LOCK_NAME)
    if row is None:
        return None, False
    at = now(s)
    view = LockView(
        row.command, row.run_id, row.holder, at - row.acquired_at, at - (row.expires_at - seconds)
    )
    return view, alive(row, at)


def renew_lock(s: Session, holder: Holder, seconds: float, run_ids: Sequence[int] = ()) -> bool:
    """Push the lock's expiry forward if `holder` holds it or it belongs to one of
    `run_ids` (workers keep a detached run's lock alive); False if the lock is not ours."""
    at = now(s)
    mine = StateLock.holder == holder.id
    condition = mine if not run_ids else mine | StateLock.run_id.in_(list(run_ids))
    result = s.execute(
        update(StateLock)
        .where(StateLock.name == LOCK_NAME, condition)
        .values(expires_at=at + seconds)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult


def release_lock(s: Session, holder: Holder) -> None:
    s.execute(delete(StateLock).where(StateLock.name == LOCK_NAME, StateLock.holder == holder.id))


def attach_run(s: Session, holder: Holder, run_id: int) -> None:
    s.execute(
        update(StateLock)
        .where(StateLock.name == LOCK_NAME, StateLock.holder == holder.id)
        .values(run_id=run_id)
    )


def lock_run(s: Session) -> int | None:
    """The run the state lock belongs to now, if it is held by a live process."""
    row = s.get(StateLock, LOCK_NAME)
    if row is None or not alive(row, now(s)):
        return None
    return row.run_id


# -- owner leases ----------------------------------------------------------------------


def take_lease(
    s: Session, key: str, budget: str, run_id: int, holder: Holder, seconds: float, at: float
) -> bool:
    """Take (or keep) the lease on `key` in `s`'s write transaction; False if held alive
    by another. On PostgreSQL two first takes of one key collide on its primary key:
    the loser's transaction fails and the caller tries again."""
    row = s.get(Lease, key, with_for_update=True, populate_existing=True)
    if row is not None and row.holder != holder.id and alive(row, at):
        return False
    if row is None:
        row = Lease(key=key)
        s.add(row)
    elif row.holder == holder.id:
        row.expires_at = at + seconds
        row.run_id = run_id
        return True
    _fill(row, holder, at, seconds)
    row.budget, row.run_id = budget, run_id
    s.flush()
    return True


def renew_leases(s: Session, holder: Holder, seconds: float) -> set[str]:
    """Push the expiry of every lease `holder` still holds; those keys. A lease that ran
    out while the holder stalled is not revived: another process may take it."""
    at = now(s)
    mine = (Lease.holder == holder.id) & (Lease.expires_at > at)
    s.execute(update(Lease).where(mine).values(expires_at=at + seconds))
    return set(s.scalars(select(Lease.key).where(mine)))


def release_lease(s: Session, key: str, holder: Holder) -> None:
    s.execute(delete(Lease).where(Lease.key == key, Lease.holder == holder.id))


def holds(s: Session, key: str, holder: Holder, margin: float = 0.0) -> bool:
    """Whether `holder` holds `key` for `margin` seconds more at least (the fence): one
    query by the database's clock, run in every page's transactions (on the session's
    connection, in its transaction; the statement is built once per dialect)."""
    connection = s.connection()
    held = _held(connection.dialect.name)
    found = connection.scalar(held, {"key": key, "holder": holder.id, "margin": margin})
    return found is not None


@functools.cache
def _held(dialect: str) -> Select[tuple[str]]:
    leases = Lease.__table__.c
    return select(leases.key).where(
        leases.key == bindparam("key"),
        leases.holder == bindparam("holder"),
        leases.expires_at > clock(dialect) + bindparam("margin", type_=Float()),
    )


# -- workers -------------------------------------------------------------------------


def register_worker(
    s: Session, holder: Holder, kind: str, capacity: int, run_id: int | None = None
) -> None:
    """A worker starts: `run_id` names the run a local worker serves (cluster nodes serve
    whatever their broker brings)."""
    at = now(s)
    row = s.get(WorkerRow, holder.id)
    if row is None:
        row = WorkerRow(id=holder.id, started_at=at)
        s.add(row)
    row.kind, row.host, row.pid, row.pid_start = kind, holder.host, holder.pid, holder.pid_start
    row.capacity, row.busy, row.heartbeat_at, row.stopped_at = capacity, 0, at, None
    row.run_id = run_id


def live_workers(s: Session, kind: str, seconds: float, run_id: int | None = None) -> int:
    """Workers of `kind` (of run `run_id`, for local ones) alive now: heartbeats within
    `seconds`, and their process still there when they ran on this machine."""
    at = now(s)
    query = select(WorkerRow).where(
        WorkerRow.kind == kind,
        WorkerRow.stopped_at.is_(None),
        WorkerRow.heartbeat_at > at - seconds,
    )
    if run_id is not None:
        query = query.where(WorkerRow.run_id == run_id)
    rows = s.scalars(query)
    return sum(1 for row in rows if process_may_run(row.host, row.pid, row.pid_start))


def worker_heartbeat(s: Session, holder: Holder, busy: int) -> None:
    s.execute(
        update(WorkerRow).where(WorkerRow.id == holder.id).values(heartbeat_at=now(s), busy=busy)
    )


def worker_stopped(s: Session, holder: Holder) -> None:
    s.execute(update(WorkerRow).where(WorkerRow.id == holder.id).values(stopped_at=now(s), busy=0))
