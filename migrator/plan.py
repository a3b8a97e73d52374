"""`plan`: a dry run. Inventory, findings and a time estimate; nothing is written.

Two tiers. The inventory (the default) costs a few requests per owner: counts and
sizes come from container calls (a mail folder's totalItemCount and size) or from one
listing per container (calendars, address books, drives, channels; a recurring series
counts as one item, never expanded), and findings are those the listings already show.
`deep` adds each workload's item-by-item checks (every message listed for oversize
items and missing Message-IDs, every event read with its occurrences), which cost
requests in proportion to the items; `sample` = N runs them for one owner in N only
(the first, the N+1th...): a view of what the deep checks find at a fraction of it.

With the tenant's usage reports (`reports`: Microsoft 365's mailbox and OneDrive usage
reports, read in a few requests for the whole tenant), the inventory takes each user's
mail and OneDrive counts and sizes from them, one row per mailbox or OneDrive marked
`counted` = "report" (figures as of the reports' refresh date, a few days old), and makes
no per-owner mail, drive, calendar or contacts request: calendars and contacts are then
counted, and folder and file names checked, only for the owners `deep` or `sample` check
in full (`Plan.not_counted` says so). Owners the reports do not name are assessed per owner.

Owners are assessed `owner_concurrency` at a time and handed to a `PlanSink` in the
tenant's order as they finish, so outputs can be written while the plan goes on and
memory stays flat whatever the tenant's size. The estimate is bound by Graph's
per-owner request budget: owners' jobs (one per owner and workload, as in a run) run
`owner_concurrency` at a time, each at most at its workload's budget rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

from ..workloads import BY_NAME
from ..workloads import WORKLOADS as WORKLOAD_SPECS
from .model import Container, Owner
from .selection import UsersFile, owners_of
from .workload import RunOptions, Workload

if TYPE_CHECKING:
    from ..connectors.graph.reports import Usage, UsageReports

T = TypeVar("T")
K = TypeVar("K")

# Where a row's `items` and `bytes` come from: "inventory", the container's own
# counters as Graph reports them (a mail folder's totalItemCount and size), or
# "listing", counted from a listing of the container read by the plan, or "report", a
# whole mailbox or OneDrive as the tenant's usage report gave it (a few days old).
Counted = Literal["inventory", "listing", "report"]
# The workloads the usage reports count, the name of their one row per owner, and those
# the inventory then leaves to the fully checked owners, as each workload declares them.
REPORTED = {spec.name: spec.report_row for spec in WORKLOAD_SPECS if spec.usage_report}
LEFT_TO_CHECKS = tuple(spec.name for spec in WORKLOAD_SPECS if spec.left_to_checks)


# A blocker is something the run will leave unwritten unless someone acts first (an item
# over the target's size limit, a path the target refuses); a warning, something carried
# differently (renamed, merged) or declared not carried; info, something worth knowing.
SEVERITIES = ("blocker", "warning", "info")


@dataclass(frozen=True)
class Finding:
    severity: str  # one of SEVERITIES
    kind: str  # "oversize", "renamed", "hidden-folder", ...
    owner: str
    container: str
    detail: str
    # Where it lands on the target, when the finding's own path is renamed there (a file's
    # mapped path under its drive's target folder); "" when the container's target name says it.
    target: str = ""
    # The bytes of the file a finding is about when its size is the point (a drive's largest
    # files), for the plan's page to rank them; not an output column (the detail says it).
    size: int = field(default=0, metadata={"listed": False})


FINDING_COLUMNS = [f.name for f in fields(Finding) if f.metadata.get("listed", True)]


def finding_record(finding: Finding) -> dict[str, object]:
    """A finding as the CSV and JSON outputs list it."""
    return {name: getattr(finding, name) for name in FINDING_COLUMNS}


@dataclass(frozen=True)
class PlanRow:
    workload: str
    owner: str
    container: str
    target: str
    items: int
    bytes: int
    requests: int  # an estimate: what the run will ask of Graph for this container
    counted: Counted = "listing"


class PlanSink(Protocol):
    """Where each owner's rows and findings go once the owner is assessed."""

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None: ...


@dataclass
class Plan:
    """The plan's totals; its rows and findings too when no other sink took them."""

    rows: list[PlanRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    owners: int = 0
    # Each workload's source budget: the requests per second one owner's job may make.
    rates: dict[str, float] = field(default_factory=dict)
    owner_concurrency: int = 1
    estimate_seconds: float = 0.0
    deep: bool = False
    sample: int = 0  # deep checks for one owner in this many; 0: none (or all when deep)
    items: int = 0
    bytes: int = 0
    requests: int = 0
    containers: int = 0
    finding_count: int = 0
    severities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    report_date: str = ""  # the usage reports' refresh date when they gave counts
    # Workloads whose rate is one tenant-wide cap (`TenantWidePlanner`): no owner
    # concurrency shortens them, their requests take requests / rate in all.
    tenant_wide: list[str] = field(default_factory=list)
    not_counted: list[str] = field(default_factory=list)  # workloads left to checked owners

    def count(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        self.items += sum(r.items for r in rows)
        self.bytes += sum(r.bytes for r in rows)
        self.requests += sum(r.requests for r in rows)
        self.containers += len(rows)
        self.finding_count += len(findings)
        for finding in findings:
            self.severities[finding.severity] += 1

    @property
    def blockers(self) -> int:
        return self.severities["blocker"]

    def summary(self) -> dict[str, object]:
        """Every figure but the rows and findings."""
        return {
            "owners": self.owners,
            "items": self.items,
            "bytes": self.bytes,
            "requests": self.requests,
            "estimate_seconds": round(self.estimate_seconds, 1),
            "findings_by_severity": dict(self.severities),
            "tier": "deep" if self.deep else "sampled" if self.sample else "inventory",
            **({"deep_one_owner_in": self.sample} if self.sample and not self.deep else {}),
            "assumptions": {
                "requests_per_second_per_owner": {
                    w: r for w, r in self.rates.items() if w not in self.tenant_wide
                },
                "requests_per_second_per_tenant": {
                    w: r for w, r in self.rates.items() if w in self.tenant_wide
                },
                "owner_concurrency": self.owner_concurrency,
            },
            "estimated": ["requests", "estimate_seconds"],
            **self._report_summary(),
        }

    def _report_summary(self) -> dict[str, object]:
        if not self.report_date:
            return {}
        return {
            "usage_reports": {
                "refreshed": self.report_date,
                "note": "mail and OneDrive counts of rows counted 'report' are the usage "
                "reports' figures as of that date, a few days old",
                "not_counted": self.not_counted,
                "not_checked": "folder and file names (renamed, hidden, colliding) of "
                "owners counted from the reports: use --deep or --sample N",
            }
        }

    def as_dict(self) -> dict[str, object]:
        return {
            **self.summary(),
            "containers": [asdict(r) for r in self.rows],
            "findings": [finding_record(f) for f in self.findings],
        }


class Planner(Protocol):
    """A workload's part of the plan."""

    requests_per_second: float  # the source budget's sustained rate per owner
    counted: Counted  # where its rows' counts come from

    def target_name(self, container: Container) -> str: ...

    def requests(self, container: Container) -> int: ...

    async def findings(
        self, owner: Owner, containers: list[Container], deep: bool
    ) -> list[Finding]: ...

    def forget(self, container: Container) -> None:
        """Drop what was read about the container: the plan is done with it."""
        ...


@runtime_checkable
class ListingPlanner(Protocol):
    """Optional: a planner that lists the owner's containers itself, reading more at once
    than the source's `containers` (the mail planner keeps the hidden folders)."""

    async def containers(self, owner: Owner) -> list[Container]: ...


@runtime_checkable
class CountingPlanner(Protocol):
    """Optional: a planner that counts a container's items when the source's
    `containers` could not count them cheaply."""

    async def count(self, container: Container) -> int: ...


@runtime_checkable
class TenantWidePlanner(Protocol):
    """Optional: a planner whose `requests_per_second` caps the whole tenant rather than
    each owner (Teams chat messages: 20 a second per app and tenant), when `tenant_wide`."""

    tenant_wide: bool


@runtime_checkable
class ReportPlanner(Protocol):
    """Optional: a planner of a workload the usage reports count (`REPORTED`), which
    estimates the requests of a whole owner from its item count."""

    def requests_for(self, items: int) -> int: ...


def estimate_seconds(jobs: Sequence[float], concurrency: int, tenant: float = 0.0) -> float:
    """Owners' jobs (each in seconds at its workload's rate, `job_seconds`) run
    `concurrency` at a time; `tenant`: the time a tenant-wide cap needs for all its
    workload's requests (total / rate), which running owners at once does not shorten."""
    if not jobs:
        return tenant
    return max(parallel_seconds(max(jobs), sum(jobs), concurrency), tenant)


def parallel_seconds(longest: float, total: float, concurrency: int) -> float:
    """Jobs run `concurrency` at a time take as long as the longest of them, or as their
    total shared out, whichever is more: the estimate's one formula."""
    return max(longest, total / max(1, concurrency))


def estimate_minutes(seconds: float) -> int:
    """An estimate in whole minutes, rounded up: an estimate must not promise less. The
    terminal and the plan's page both show durations so."""
    return int(seconds + 59) // 60


def job_seconds(requests: int, rate: float) -> float:
    """One owner's job of one workload at its budget's rate (0 when the rate is unknown)."""
    return requests / rate if rate > 0 else 0.0


def collisions(
    owner: Owner, containers: list[Container], target_name: Callable[[Container], str]
) -> list[Finding]:
    """Folders whose names clean up to a name another folder of the owner takes first:
    the run keeps both, the later one renamed " (2)", " (3)"... (well-known folders and
    then the source's order decide who comes first, as in the run)."""
    taken: dict[str, str] = {}
    found: list[Finding] = []
    for container in sorted(containers, key=lambda c: c.role is None):
        name = target_name(container)
        if name not in taken:
            taken[name] = container.display_path
            continue
        number = 2
        while f"{name} ({number})" in taken:
            number += 1
        renamed = f"{name} ({number})"
        taken[renamed] = container.display_path
        detail = (
            f"same target name {name!r} as {taken[name]!r}: written to {renamed!r} "
            "instead (both kept)"
        )
        found.append(
            Finding("warning", "name-collision", owner.upn, container.display_path, detail)
        )
    return found


async def in_order(
    owners: Iterable[K],
    assess: Callable[[K], Awaitable[T]],
    concurrency: int,
    emit: Callable[[T], None],
) -> None:
    """`assess` every owner, `concurrency` at a time; `emit` each result in the owners'
    order as soon as it and those before it are done (only results waiting for a slower
    owner before them are held)."""
    queue = iter(enumerate(owners))
    done: dict[int, T] = {}
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        for index, owner in queue:
            done[index] = await assess(owner)
            while next_index in done:
                emit(done.pop(next_index))
                next_index += 1

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


async def assess_owner(
    workload: Workload, planner: Planner, owner: Owner, deep: bool
) -> tuple[list[PlanRow], list[Finding]]:
    """One owner's rows and findings for one workload."""
    lister = planner if isinstance(planner, ListingPlanner) else workload.source
    containers = await lister.containers(owner)
    if isinstance(planner, CountingPlanner):  # sources that cannot count cheaply
        counter = planner
        containers = [
            c if c.total_items else replace(c, total_items=await counter.count(c))
            for c in containers
        ]
    rows = [
        PlanRow(
            workload.name,
            owner.upn,
            c.display_path,
            planner.target_name(c),
            c.total_items,
            c.size_bytes,
            planner.requests(c),
            planner.counted,
        )
        for c in containers
    ]
    found = collisions(owner, containers, planner.target_name)
    found += await planner.findings(owner, containers, deep)
    for container in containers:
        planner.forget(container)
    return rows, found


def report_row(workload: str, planner: Planner, owner: Owner, usage: Usage) -> PlanRow:
    """An owner's whole mailbox or OneDrive, as the usage report counts it."""
    name = REPORTED[workload]
    requests = planner.requests_for(usage.items) if isinstance(planner, ReportPlanner) else 0
    return PlanRow(workload, owner.upn, name, name, usage.items, usage.bytes, requests, "report")


def reported_usage(reports: UsageReports, workload: str, owner: Owner) -> Usage | None:
    """The owner's figures in the reports; None when they do not name it or do not count
    the workload."""
    if workload not in REPORTED:
        return None
    return reports.table(BY_NAME[workload].usage_report).get(owner.upn.lower())


async def make_plan(
    workloads: list[tuple[Workload, Planner]],
    options: RunOptions,
    users: UsersFile | None = None,
    *,
    deep: bool = False,
    sample: int = 0,
    sink: PlanSink | None = None,
    reports: UsageReports | None = None,
) -> Plan:
    """Assess every selected owner of every workload. Rows and findings go to `sink`
    as owners finish, or into the returned plan when there is none. With `reports`, the
    owners not checked in full take their mail and OneDrive figures from them."""
    plan = Plan(owner_concurrency=options.owner_concurrency, deep=deep, sample=sample)
    if reports is not None and not deep:
        plan.report_date = reports.refreshed
        names = {w.name for w, _ in workloads}
        plan.not_counted = [name for name in LEFT_TO_CHECKS if name in names]
    else:
        reports = None
    per_job: list[float] = []  # one owner's job of one workload, in seconds
    capped: dict[str, int] = {}  # tenant-wide workload -> its requests
    selected = await owners_of([w for w, _ in workloads], options, users)

    def emit(result: tuple[list[PlanRow], list[Finding]]) -> None:
        rows, findings = result
        plan.count(rows, findings)
        if rows:  # each workload at its own budget's rate
            rate = plan.rates.get(rows[0].workload, 0.0)
            per_job.append(job_seconds(sum(r.requests for r in rows), rate))
            if rows[0].workload in plan.tenant_wide:
                name = rows[0].workload
                capped[name] = capped.get(name, 0) + sum(r.requests for r in rows)
        if sink is None:
            plan.rows.extend(rows)
            plan.findings.extend(findings)
        else:
            sink.owner_done(rows, findings)

    for workload, planner in workloads:
        owners = selected[workload.name]
        plan.owners = max(plan.owners, len(owners))
        plan.rates[workload.name] = planner.requests_per_second
        if isinstance(planner, TenantWidePlanner) and planner.tenant_wide:
            plan.tenant_wide.append(workload.name)

        async def assess(
            numbered: tuple[int, Owner], workload: Workload = workload, planner: Planner = planner
        ) -> tuple[list[PlanRow], list[Finding]]:
            index, owner = numbered
            checked = deep or (sample > 0 and index % sample == 0)
            if not checked and reports is not None:
                if workload.name in LEFT_TO_CHECKS:
                    return [], []  # said in the summary's not_counted
                usage = reported_usage(reports, workload.name, owner)
                if usage is not None:
                    return [report_row(workload.name, planner, owner, usage)], []
            return await assess_owner(workload, planner, owner, checked)

        await in_order(enumerate(owners), assess, options.owner_concurrency, emit)
    tenant = max((job_seconds(n, plan.rates[w]) for w, n in capped.items()), default=0.0)
    plan.estimate_seconds = estimate_seconds(per_job, options.owner_concurrency, tenant)
    return plan
