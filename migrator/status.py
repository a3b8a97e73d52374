"""`status`: what the state says: items per workload, the last runs, and the latest run's
jobs, per worker and per owner.

A run recorded as running whose state lock is no longer held by a live process (it was
killed, or crashed) is shown as `interrupted`: the next run resumes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..state import leases
from ..state.jobs import Jobs, JobState
from ..state.schema import INTERRUPTED, OPEN_JOBS, RUNNING, Run, WorkerRow
from ..state.store import Store


def state_report(store: Store, workloads: list[str], lease_seconds: float) -> dict[str, Any]:
    report: dict[str, Any] = {"workloads": {}, "runs": [], "run": None, "workers": []}
    for workload in workloads:
        counts = store.counts(workload)
        report["workloads"][workload] = {
            "units": counts.units,
            "items": counts.items,
            "bytes_done": counts.bytes_done,
        }
    with store.session() as s:
        lock, lock_alive = leases.lock_view(s, lease_seconds)
        live_run = lock.run_id if lock is not None and lock_alive else None
        at = leases.now(s)
        workers = list(s.scalars(select(WorkerRow).order_by(WorkerRow.started_at)))
    runs = store.last_runs(5)
    for run in runs:
        report["runs"].append(_run(run, live_run))
    if runs:
        report["run"] = _jobs(store, runs[0], live_run, lease_seconds)
    report["workers"] = [_worker(w, at, lease_seconds) for w in workers if _recent(w, at)]
    return report


def _status(run: Run, live_run: int | None) -> str:
    if run.status == "running" and run.id != live_run:
        return "interrupted"
    return run.status


def _run(run: Run, live_run: int | None) -> dict[str, Any]:
    return {
        "id": run.id,
        "command": run.command,
        "status": _status(run, live_run),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _jobs(store: Store, run: Run, live_run: int | None, lease_seconds: float) -> dict[str, Any]:
    jobs = Jobs(store, lease_seconds)
    states = jobs.of_run(run.id)
    by_status: dict[str, int] = {}
    for job in states:
        by_status[job.status] = by_status.get(job.status, 0) + 1
    progress = {
        name: {"items_total": p.total, "items_done": p.done, "bytes_done": p.bytes, "jobs": p.jobs}
        for name, p in jobs.progress(run.id).items()
    }
    ended = _status(run, live_run) != "running"
    if ended:  # what was still open when the run ended will not go on
        by_status = {}
        for job in states:
            shown = _job_status(job, ended)
            by_status[shown] = by_status.get(shown, 0) + 1
    return {
        **_run(run, live_run),
        "jobs": by_status,
        "workloads": progress,
        "owners": [_owner(job, ended) for job in states],
    }


def _job_status(job: JobState, ended: bool) -> str:
    return INTERRUPTED if ended and job.status in OPEN_JOBS else job.status


def _owner(job: JobState, ended: bool) -> dict[str, Any]:
    failed = int(job.tally.get("failed") or 0) + len(job.tally.get("failed_units") or [])
    return {
        "workload": job.workload,
        "owner": job.owner,
        "status": _job_status(job, ended),
        "worker": job.holder,
        "attempts": job.attempts,
        "items_total": job.items_total,
        "items_done": job.items_done,
        "bytes_done": job.bytes_done,
        "failed": failed,
        "error": job.error,
    }


def _recent(worker: WorkerRow, at: float) -> bool:
    """Workers seen in the last day (older rows are history, not the cluster)."""
    return worker.heartbeat_at > at - 86_400


def _worker(worker: WorkerRow, at: float, lease_seconds: float) -> dict[str, Any]:
    fresh = worker.stopped_at is None and worker.heartbeat_at > at - lease_seconds
    alive = fresh and leases.process_may_run(worker.host, worker.pid, worker.pid_start)
    return {
        "id": worker.id,
        "kind": worker.kind,
        "host": worker.host,
        "state": "alive" if alive else ("stopped" if worker.stopped_at else "gone"),
        "owners": worker.busy if alive else 0,
        "capacity": worker.capacity,
        "run": worker.run_id,
        "last_seen_s": round(at - worker.heartbeat_at, 1),
    }


def status_lines(report: dict[str, Any], all_owners: bool) -> list[str]:
    """The report as lines for a terminal."""
    lines: list[str] = []
    for name, counts in report["workloads"].items():
        items = ", ".join(f"{v} {k}" for k, v in sorted(counts["items"].items())) or "none"
        units = ", ".join(f"{v} {k}" for k, v in sorted(counts["units"].items())) or "none"
        mb = counts["bytes_done"] / 1e6
        lines.append(f"{name}: folders {units}; items {items}; {mb:.1f} MB copied")
    run = report["run"]
    if run is not None:
        jobs = ", ".join(f"{v} {k}" for k, v in sorted(run["jobs"].items())) or "no owners"
        lines.append(f"run {run['id']} ({run['command']}, {run['status']}): owners {jobs}")
        for name, p in run["workloads"].items():
            lines.append(
                f"  {name}: {p['items_done']}/{p['items_total']} items, "
                f"{p['bytes_done'] / 1e6:.1f} MB"
            )
        shown = [o for o in run["owners"] if all_owners or o["status"] == RUNNING or o["error"]]
        for owner in shown:
            where = f" on {owner['worker']}" if owner["status"] == RUNNING else ""
            error = f": {owner['error']}" if owner["error"] else ""
            lines.append(
                f"  {owner['status']:11} {owner['workload']:8} {owner['owner']}{where} "
                f"{owner['items_done']}/{owner['items_total']} items{error}"
            )
    for worker in report["workers"]:
        lines.append(
            f"worker {worker['id']} ({worker['kind']}): {worker['state']}, "
            f"{worker['owners']}/{worker['capacity']} owners, "
            f"last seen {worker['last_seen_s']} s ago"
        )
    for r in report["runs"]:
        lines.append(f"run {r['id']} {r['command']} {r['status']} {r['started_at']}")
    return lines
