"""The commands' bodies: each opens what it needs, does one job and returns a result.

`cli.py` is a thin skin over these; the demo and the tests call them directly.
Runs that write (`run`, `sync`, `retry-failed`) hold the state lock and record
themselves in the `runs` table with their options (never a secret) and summary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..state.store import Store, open_store
from .audit import AuditLog
from .config import Config
from .engine import Engine, Tally
from .lock import state_lock
from .plan import Plan, make_plan
from .registry import Assembled, assemble
from .verify import VerifyReport, verify
from .workload import Reporter, RunOptions


def run_options(config: Config) -> RunOptions:
    return RunOptions(
        owner_concurrency=config.owner_concurrency,
        fetch_concurrency=config.fetch_concurrency,
        target_sessions=config.target_sessions,
        deletions="keep" if config.deletions == "keep" else "mirror",
        users=frozenset(config.users) if config.users else None,
        target_logins=dict(config.users),
    )


@dataclass
class RunResult:
    run_id: int
    tallies: dict[str, Tally]
    audit_path: str | None

    @property
    def ok(self) -> bool:
        return not any(t.failed or t.failed_units for t in self.tallies.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "audit_log": self.audit_path,
            "workloads": {k: v.as_dict() for k, v in self.tallies.items()},
        }


@dataclass
class _Recorded:
    store: Store
    audit: AuditLog
    assembled: Assembled
    summary: dict[str, Any]


@asynccontextmanager
async def _recorded(config: Config, command: str) -> AsyncIterator[_Recorded]:
    """Lock the state, record the run, open the workloads; close all in order."""
    with state_lock(config.lock_file):
        store = open_store(config.state_url)
        options = {
            "users": len(config.users),
            "deletions": config.deletions,
            "owner_concurrency": config.owner_concurrency,
            "targets": {w: t.kind for w, t in config.targets.items()},
        }
        run_id = store.start_run(command, options)
        audit = AuditLog(config.audit_dir, run_id)
        status = "failed"
        recorded: _Recorded | None = None
        try:
            async with assemble(config, store) as assembled:
                recorded = _Recorded(store, audit, assembled, {})
                yield recorded
                status = "done"
        finally:
            audit.close()
            store.finish_run(run_id, status, recorded.summary if recorded else {})
            store.engine.dispose()


async def migrate(config: Config, mode: str, reporter: Reporter | None = None) -> RunResult:
    """`run` (first copy) or `sync` (carry changes since the stored cursors)."""
    async with _recorded(config, mode) as rec:
        engine = Engine(
            rec.store, rec.assembled.workloads, run_options(config), rec.audit, reporter
        )
        tallies = await engine.run("sync" if mode == "sync" else "run")
        return _result(rec, tallies)


async def retry_failed(config: Config, reporter: Reporter | None = None) -> RunResult:
    """`retry-failed`: write again every failed item, looking for an earlier copy first."""
    async with _recorded(config, "retry-failed") as rec:
        engine = Engine(
            rec.store, rec.assembled.workloads, run_options(config), rec.audit, reporter
        )
        return _result(rec, await engine.retry_failed())


def _result(rec: _Recorded, tallies: dict[str, Tally]) -> RunResult:
    audit_path = str(rec.audit.path) if rec.audit.path else None
    result = RunResult(rec.audit.run_id, tallies, audit_path)
    rec.summary.update(result.as_dict())
    return result


async def check(config: Config) -> dict[str, VerifyReport]:
    """`verify`: compare source, state and target; read-only but locked against runs."""
    with state_lock(config.lock_file):
        store = open_store(config.state_url)
        try:
            async with assemble(config) as assembled:
                return await verify(store, assembled.workloads, run_options(config))
        finally:
            store.engine.dispose()


async def plan(config: Config) -> Plan:
    """`plan`: inventory and findings; touches neither the state nor the target's data."""
    async with assemble(config) as assembled:
        return await make_plan(assembled.planned, run_options(config))


async def doctor(config: Config) -> list[tuple[str, bool, str]]:
    """Reach Graph and every target; each line is (what, ok, detail)."""
    lines: list[tuple[str, bool, str]] = []
    async with assemble(config) as assembled:
        for workload in assembled.workloads:
            try:
                owners = await workload.source.owners()
                lines.append((f"graph: {workload.name}", True, f"{len(owners)} users readable"))
            except Exception as exc:  # noqa: BLE001 - doctor reports every failure
                lines.append((f"graph: {workload.name}", False, str(exc)))
            problems = workload.target.check()
            detail = "; ".join(problems) if problems else "reachable, capabilities complete"
            lines.append((f"target: {workload.name}", not problems, detail))
    return lines


def status(config: Config) -> dict[str, Any]:
    """`status`: what the state says, per workload, and the last runs."""
    store = open_store(config.state_url)
    try:
        report: dict[str, Any] = {"workloads": {}, "runs": []}
        for workload in config.targets:
            counts = store.counts(workload)
            report["workloads"][workload] = {
                "units": counts.units,
                "items": counts.items,
                "bytes_done": counts.bytes_done,
            }
        for run in store.last_runs(5):
            report["runs"].append(
                {
                    "id": run.id,
                    "command": run.command,
                    "status": run.status,
                    "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                }
            )
        return report
    finally:
        store.engine.dispose()
