"""The commands' bodies: each opens what it needs, does one job and returns a result.

`cli.py` is a thin skin over these; the demo and the tests call them directly.
Runs that write (`run`, `sync`, `retry-failed`) hold the state lock and record
themselves in the `runs` table with their options (never a secret) and summary;
their owners run as jobs (`migrator.coordinator`): in this process, in local
worker processes, or on a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ..state.jobs import Jobs
from ..state.leases import Holder
from ..state.schema import DONE, INCOMPLETE, Run
from ..state.store import Store, open_store
from .audit import write_verify_log
from .bags import seal_archives, unseal_archives
from .config import Config
from .coordinator import (
    RunResult,
    StateLockHold,
    audit_for,
    follow,
    job_specs,
    legacy_lock,
    raise_stopper,
    run_options,
    stop_run,
    worker_count,
)
from .errors import ConfigError, FatalError, HirondelleError
from .ledger import Tally
from .model import Owner
from .plan import REPORTED, Plan, PlanSink, make_plan
from .protocols import Discovery
from .registry import assemble
from .selection import owners_of
from .worker import Worker
from .workload import RunReporter, SilentReporter, Workload

if TYPE_CHECKING:
    from ..connectors.graph.client import GraphClient
    from ..connectors.graph.reports import UsageReports
    from .verify import VerifyReport

log = logging.getLogger(__name__)
PlanSource = Literal["auto", "reports", "graph"]

DoctorLine = tuple[str, bool, str]

__all__ = ["RunResult", "check", "doctor", "migrate", "plan", "retry_failed", "status"]


async def migrate(
    config: Config,
    mode: str,
    reporter: RunReporter | None = None,
    *,
    workers: int | None = None,
    detach: bool = False,
) -> RunResult:
    """`run` (first copy), `sync` (carry changes since the stored cursors) or
    `retry-failed`: one job per owner, run by `workers` processes (or the cluster)."""
    if detach and config.cluster is None:
        raise ConfigError("--detach", "needs a [cluster]: local workers stop with the command")
    if workers is not None and config.cluster is not None:
        raise ConfigError(
            "--workers",
            "applies to one machine: with a [cluster], the workers are the "
            "`hirondelle worker` processes",
        )
    count = worker_count(config, workers)
    with legacy_lock(config.state_url):
        store = open_store(config.state_url)
        lock = StateLockHold(store, Holder.here(f"run-{mode}"), mode, config.lease_seconds)
        try:
            _check_targets(store, config)  # reads finished runs only: no lock needed
            lock.acquire()
            return await _coordinate(config, store, lock, mode, reporter, count, detach)
        finally:
            store.engine.dispose()


async def _coordinate(
    config: Config,
    store: Store,
    lock: StateLockHold,
    mode: str,
    reporter: RunReporter | None,
    count: int,
    detach: bool,
) -> RunResult:
    reporter = reporter or SilentReporter()
    options = {
        "target_ids": {w: t.identity(config.base_dir) for w, t in config.targets.items()},
        "users": len(config.users),
        "deletions": config.deletions,
        "owner_concurrency": config.owner_concurrency,
        "workers": "cluster" if config.cluster else count,
        "detached": detach,
        "targets": {w: t.kind for w, t in config.targets.items()},
    }
    previous = store.last_runs(1)
    run_id = store.start_run(mode, options)
    reporter.begin(_phase(store, mode, run_id, previous[0] if previous else None))
    lock.attach(run_id)
    jobs = Jobs(store, config.lease_seconds)
    audit = audit_for(config, run_id)
    status, summary, handed_over = "failed", {}, False
    stopper = None
    try:
        await unseal_archives(config)  # before any worker writes: no manifest claims anything
        async with assemble(config, store) as assembled:
            specs = await job_specs(
                assembled.workloads, mode, run_options(config), store, config.users_file
            )
            queued = jobs.add(run_id, mode, specs)
            log.info("run %d (%s): %d owner jobs queued", run_id, mode, queued)
            # No more processes than owners that can move at once (a mailbox's workloads
            # share one lease): an idle worker would only cost its start.
            count = max(1, min(count, len({spec.lease_key for spec in specs})))
            if config.cluster is not None:
                from .cluster import dispatch_run

                await asyncio.to_thread(dispatch_run, config, store, run_id)
                if detach:
                    lock.hand_over(run_id, max(600.0, config.lease_seconds))
                    handed_over = True
                    return RunResult(run_id, {}, None, 0, detached=True, jobs=queued)
                stopper = await _follow_cluster(config, store, jobs, run_id, reporter, lock)
            elif count == 1:
                stopper = await _in_process(config, store, assembled, jobs, run_id, reporter, lock)
        if config.cluster is None and count > 1:
            stopper = await _local_pool(config, jobs, run_id, count, reporter, lock)
        if stopper is not None:
            stop_run(store, jobs, run_id, "failed")
            raise_stopper(stopper)
        tallies = jobs.tallies(run_id, list(config.targets))
        _raise_if_no_owner_moved(tallies, queued)
        await seal_archives(config)  # the workers are done: this process alone writes them
        audit_path = str(audit.path) if audit.path else None
        if config.cluster is not None:  # the cluster's workers that took part
            count = len({job.holder for job in jobs.of_run(run_id) if job.holder})
        outstanding = await asyncio.to_thread(jobs.outstanding, run_id)
        log_path = str(audit.log_path) if audit.log_path else None
        result = RunResult(
            run_id, tallies, audit_path, count, outstanding=outstanding, log_path=log_path
        )
        summary, status = result.as_dict(), "done" if result.ok else INCOMPLETE
        return result
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = "interrupted"
        raise
    finally:
        log.info("run %d (%s) ends: %s", run_id, mode, status)
        audit.close()
        if not handed_over:
            if status not in ("done", INCOMPLETE):
                await asyncio.to_thread(stop_run, store, jobs, run_id, status)
            store.finish_run(run_id, status, summary)
            lock.release()


def _phase(store: Store, mode: str, run_id: int, previous: Run | None) -> str:
    """ "run 12", and when the previous pass stopped midway, what this one resumes."""
    phase = f"{mode} {run_id}"
    if previous is None or previous.status in ("done", INCOMPLETE):
        return phase
    done = store.counts().items.get(DONE, 0)
    stopped = "was interrupted" if previous.status in ("running", "interrupted") else "failed"
    return (
        f"{phase}: resuming ({previous.command} {previous.id} {stopped}): {done} items already done"
    )


def _check_targets(store: Store, config: Config) -> None:
    """The targets are the ones the state's items were written to: pointed at another
    server or folder, a state would call done what the new target never received."""
    for run in store.last_runs(50):
        recorded = (run.options or {}).get("target_ids") or {}
        for workload, target in config.targets.items():
            was = recorded.get(workload)
            now = target.identity(config.base_dir)
            if was is not None and was != now:
                raise ConfigError(
                    f"targets.{workload}",
                    f"this state (state.url) was written to {was}, the configuration now "
                    f"names {now}: give the new target a state of its own, or restore the "
                    "old target settings",
                )
        if recorded:
            return  # the latest run that recorded its targets decides


def _raise_if_no_owner_moved(tallies: dict[str, Tally], jobs: int) -> None:
    """Owners fail one by one and the wave goes on; when every one of them failed, nothing
    at all could proceed: that is the run's failure (exit 3), with the first reason."""
    failed = [owner for tally in tallies.values() for owner in tally.failed_owners]
    if jobs and len(failed) >= jobs:
        more = f" (and {len(failed) - 1} more owners)" if len(failed) > 1 else ""
        raise FatalError(f"no owner could be moved: {failed[0]}{more}")


async def _in_process(
    config: Config,
    store: Store,
    assembled: Any,
    jobs: Jobs,
    run_id: int,
    reporter: RunReporter,
    lock: StateLockHold,
) -> Any:
    """One worker, in this process, on the workloads already open."""
    worker = Worker(
        store,
        assembled.workloads,
        run_options(config),
        audit_for(config, run_id),
        Holder.here("local-0"),
        lease_seconds=config.lease_seconds,
        shared=assembled.shared,
        pool_run=run_id,
    )
    worker.start()
    drain = asyncio.create_task(worker.drain(run_id, wait=True))
    try:
        stopper = await follow(jobs, run_id, reporter, lock=lock)
        if stopper is None:
            await drain
        return stopper
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        await worker.stop()
        worker.engine.audit.close()


async def _local_pool(
    config: Config, jobs: Jobs, run_id: int, count: int, reporter: RunReporter, lock: StateLockHold
) -> Any:
    """`count` worker processes on this machine."""
    from .local_workers import LocalPool

    pool = LocalPool(config, run_id, count)
    pool.start()
    try:
        stopper = await follow(jobs, run_id, reporter, tick=pool.check, lock=lock, pause=pool.pause)
        if stopper is None:
            await asyncio.to_thread(pool.wait)
        return stopper
    finally:
        await asyncio.to_thread(pool.stop)


async def _follow_cluster(
    config: Config,
    store: Store,
    jobs: Jobs,
    run_id: int,
    reporter: RunReporter,
    lock: StateLockHold,
) -> Any:
    """Follow a run on the cluster; tasks lost with a broker or a worker are sent again."""
    from .cluster import Sweeper, warn_without_workers

    sweeper = Sweeper(config, store, jobs)

    def tick(_: int) -> None:
        sweeper.sweep(run_id)
        warn_without_workers(config, store)

    return await follow(jobs, run_id, reporter, tick=tick, lock=lock)


async def retry_failed(config: Config, reporter: RunReporter | None = None, **kw: Any) -> RunResult:
    """`retry-failed`: write again every failed item, looking for an earlier copy first."""
    return await migrate(config, "retry-failed", reporter, **kw)


async def check(config: Config) -> dict[str, VerifyReport]:
    """`verify`: compare source, state and target; read-only but locked against runs. The
    outcome is also written to a verify log in the audit folder, for `report`."""
    from .verify import verify  # here: the processes of a run never load it

    with legacy_lock(config.state_url):
        store = open_store(config.state_url)
        lock = StateLockHold(store, Holder.here("verify"), "verify", config.lease_seconds)
        try:
            lock.acquire()
            try:
                # with the state: a container several owners list (a Teams chat) is
                # checked under the owner whose claim the run recorded
                async with assemble(config, store) as assembled:
                    reports = await verify(
                        store, assembled.workloads, run_options(config), config.users_file
                    )
                write_verify_log(config.audit_dir, reports)
                return reports
            finally:
                lock.release()
        finally:
            store.engine.dispose()


async def plan(
    config: Config,
    deep: bool = False,
    sink: PlanSink | None = None,
    sample: int = 0,
    source: PlanSource = "auto",
    notice: Callable[[str], None] = log.warning,
) -> Plan:
    """`plan`: inventory and findings; touches neither the state nor the target's data.
    `deep` adds the item-by-item findings (`sample` = N: for one owner in N); `sink` takes
    rows and findings as owners finish. `source`: where the inventory counts mail and
    OneDrive ("reports": the tenant's usage reports; "graph": each owner's folders and
    drives; "auto": the reports when Graph serves them, else per owner, after one
    `notice` saying why)."""
    async with assemble(config) as assembled:
        options, users = run_options(config), config.users_file
        reports = None
        if source != "graph" and not deep and assembled.graph is not None:
            if {w.name for w, _ in assembled.planned} & set(REPORTED):
                reports = await _usage_reports(assembled.graph, source, notice)
        return await make_plan(
            assembled.planned,
            options,
            users,
            deep=deep,
            sample=sample,
            sink=sink,
            reports=reports,
        )


async def _usage_reports(
    graph: GraphClient, source: PlanSource, notice: Callable[[str], None]
) -> UsageReports | None:
    """The tenant's usage reports, or None (after `notice`) when they cannot serve."""
    from ..connectors.graph.reports import ReportsUnavailable, read_reports

    try:
        reports = await read_reports(graph)
        if reports.concealed:
            raise ReportsUnavailable(
                "the tenant conceals user names in Microsoft 365 reports (admin center, "
                "Reports settings), so their rows match no user"
            )
    except ReportsUnavailable as exc:
        if source == "reports":
            raise ConfigError("--source", f"usage reports unavailable: {exc}") from None
        notice(f"usage reports unavailable ({exc}): counting each owner's mail and files")
        return None
    return reports


async def doctor(config: Config) -> list[tuple[str, bool, str]]:
    """Reach Graph and every target, and log in as every selected owner as a run would;
    each line is (what, ok, detail)."""
    lines: list[tuple[str, bool, str]] = []
    async with assemble(config) as assembled:
        try:
            selected = await owners_of(assembled.workloads, run_options(config), config.users_file)
        except ConfigError as exc:
            return [("users", False, str(exc))]
        except Exception as exc:  # noqa: BLE001 - doctor reports every failure
            return [("graph", False, str(exc))]
        for workload in assembled.workloads:
            owners = selected[workload.name]
            lines.append((f"graph: {workload.name}", True, f"{len(owners)} owners selected"))
            problems = workload.target.check()
            detail = "; ".join(problems) if problems else "reachable, capabilities complete"
            lines.append((f"target: {workload.name}", not problems, detail))
            if isinstance(workload.target, Discovery) and workload.target.found:
                found = "; ".join(workload.target.found)
                lines.append((f"target: {workload.name} found", True, found))
            if not problems:
                lines.append(await _logins(workload, owners, config.owner_concurrency))
    return lines


async def _logins(workload: Workload, owners: list[Owner], concurrency: int) -> DoctorLine:
    """Open the target as each owner (its login, its password, its space), `concurrency`
    at a time: what a run would meet at its first write, found before it starts."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(owner: Owner) -> str | None:
        async with gate:
            try:
                session = await asyncio.to_thread(workload.target.open, owner)
            except HirondelleError as exc:
                return f"{owner.upn}: {exc}"
            await asyncio.to_thread(session.close)
            return None

    failed = [f for f in await asyncio.gather(*(one(o) for o in owners)) if f]
    what = f"target logins: {workload.name}"
    if not failed:
        return (what, True, f"all {len(owners)} owners can log in")
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    shown = "; ".join(failed[:3])
    return (what, False, f"{len(failed)} of {len(owners)} owners cannot: {shown}{more}")


def status(config: Config) -> dict[str, Any]:
    """`status`: what the state says, per workload; the last runs; the latest run's jobs
    per owner and the workers."""
    from .status import state_report

    store = open_store(config.state_url)
    try:
        return state_report(store, list(config.targets), config.lease_seconds)
    finally:
        store.engine.dispose()
