"""`plan`: a dry run. Inventory, findings and a time estimate; nothing is written.

Counts and sizes come from cheap container calls; findings come from each
workload's planner (oversize items, renamed folders, what will not be carried).
The estimate is bound by Graph's per-owner request budget: owners run
`owner_concurrency` at a time, each at most at its budget's request rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from .model import Container, Owner
from .selection import UsersFile, owners_of
from .workload import RunOptions, Workload


@dataclass(frozen=True)
class Finding:
    severity: str  # "blocker" | "warning" | "info"
    kind: str  # "oversize", "renamed", "hidden-folder", ...
    owner: str
    container: str
    detail: str


@dataclass(frozen=True)
class PlanRow:
    workload: str
    owner: str
    container: str
    target: str
    items: int
    bytes: int
    requests: int


@dataclass
class Plan:
    rows: list[PlanRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    owners: int = 0
    requests_per_second: float = 0.0
    owner_concurrency: int = 1
    estimate_seconds: float = 0.0

    @property
    def items(self) -> int:
        return sum(r.items for r in self.rows)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "owners": self.owners,
            "items": self.items,
            "bytes": self.bytes,
            "requests": sum(r.requests for r in self.rows),
            "estimate_seconds": round(self.estimate_seconds, 1),
            "assumptions": {
                "requests_per_second_per_owner": self.requests_per_second,
                "owner_concurrency": self.owner_concurrency,
            },
            "containers": [asdict(r) for r in self.rows],
            "findings": [asdict(f) for f in self.findings],
        }


class Planner(Protocol):
    """A workload's part of the plan."""

    requests_per_second: float  # the source budget's sustained rate per owner

    def target_name(self, container: Container) -> str: ...

    def requests(self, container: Container) -> int: ...

    async def findings(self, owner: Owner, containers: list[Container]) -> list[Finding]: ...


def estimate_seconds(owner_requests: list[int], rate: float, concurrency: int) -> float:
    """Owners run `concurrency` at a time, each bound by `rate` requests per second."""
    if not owner_requests or rate <= 0:
        return 0.0
    times = [n / rate for n in owner_requests]
    return max(max(times), sum(times) / max(1, concurrency))


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


async def make_plan(
    workloads: list[tuple[Workload, Planner]],
    options: RunOptions,
    users: UsersFile | None = None,
) -> Plan:
    plan = Plan(owner_concurrency=options.owner_concurrency)
    per_owner: list[int] = []
    selected = await owners_of([w for w, _ in workloads], options, users)
    for workload, planner in workloads:
        owners = selected[workload.name]
        plan.owners = max(plan.owners, len(owners))
        plan.requests_per_second = planner.requests_per_second
        gate = asyncio.Semaphore(options.owner_concurrency)

        async def assess(
            owner: Owner,
            workload: Workload = workload,
            planner: Planner = planner,
            gate: asyncio.Semaphore = gate,
        ) -> tuple[list[PlanRow], list[Finding]]:
            async with gate:
                containers = await workload.source.containers(owner)
                count = getattr(planner, "count", None)
                if count is not None:  # sources that cannot count cheaply in containers()
                    containers = [
                        c if c.total_items else replace(c, total_items=await count(c))
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
                    )
                    for c in containers
                ]
                clashes = collisions(owner, containers, planner.target_name)
                return rows, clashes + await planner.findings(owner, containers)

        for rows, findings in await asyncio.gather(*(assess(o) for o in owners)):
            plan.rows.extend(rows)
            plan.findings.extend(findings)
            per_owner.append(sum(r.requests for r in rows))
    plan.estimate_seconds = estimate_seconds(
        per_owner, plan.requests_per_second, options.owner_concurrency
    )
    return plan
