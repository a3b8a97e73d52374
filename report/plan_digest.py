"""What the plan's page shows, gathered as owners finish in bounded memory.

`PlanDigest` is a `PlanSink`: it keeps one line of totals per owner and per workload, the
largest folders (a heap of `LARGEST`), and per kind of finding its count and its first
`EXAMPLES`; never every row or finding (the CSV and JSON outputs have them all).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..migrator.plan import SEVERITIES, Finding, Plan, PlanRow, estimate_seconds, job_seconds
from .waves import OwnerLoad, Wave, pack_waves

LARGEST = 20  # folders in the largest-folders table
EXAMPLES = 25  # findings shown per kind
OWNERS_SHOWN = 2000  # owners in the per-owner and login tables (the largest first)
SHARING_KINDS = ("shared", "remote-item")  # items shared from a drive, or from elsewhere
LARGEST_KIND = "largest"  # a drive's largest files (`mappings.files`), ranked by their size


@dataclass
class Totals:
    items: int = 0
    bytes: int = 0
    requests: int = 0
    containers: int = 0

    def add(self, row: PlanRow) -> None:
        self.items += row.items
        self.bytes += row.bytes
        self.requests += row.requests
        self.containers += 1


@dataclass
class OwnerTotals(Totals):
    owner: str = ""
    workloads: dict[str, Totals] = field(default_factory=dict)
    findings: Counter[str] = field(default_factory=Counter)  # per severity


@dataclass(frozen=True)
class Shown:
    """A finding as the page shows it, with where it lands on the target."""

    finding: Finding
    target: str


@dataclass
class FindingGroup:
    severity: str
    kind: str
    count: int = 0
    owners: set[str] = field(default_factory=set)
    examples: list[Shown] = field(default_factory=list)


class PlanDigest:
    """Totals per workload and per owner, the largest folders, findings grouped by kind."""

    def __init__(self) -> None:
        self.workloads: dict[str, Totals] = {}
        self.workload_owners: Counter[str] = Counter()
        self.owners: dict[str, OwnerTotals] = {}
        self.largest: list[tuple[int, int, PlanRow]] = []  # a min-heap of (bytes, n, row)
        self.groups: dict[tuple[str, str], FindingGroup] = {}
        self.largest_files: list[tuple[int, int, Shown]] = []  # a min-heap of (bytes, n, file)
        self._seen = 0

    def owner_done(self, rows: list[PlanRow], findings: list[Finding]) -> None:
        targets: dict[str, str] = {}
        for row in rows:
            self._row(row)
            targets[row.container] = row.target
        if rows:
            self.workload_owners[rows[0].workload] += 1
        for finding in findings:
            self._finding(finding, targets)

    def _row(self, row: PlanRow) -> None:
        self.workloads.setdefault(row.workload, Totals()).add(row)
        owner = self.owners.setdefault(row.owner, OwnerTotals(owner=row.owner))
        owner.add(row)
        owner.workloads.setdefault(row.workload, Totals()).add(row)
        if row.bytes:
            self._keep(self.largest, row.bytes, row)

    def _finding(self, finding: Finding, targets: dict[str, str]) -> None:
        group = self.groups.setdefault(
            (finding.severity, finding.kind), FindingGroup(finding.severity, finding.kind)
        )
        group.count += 1
        group.owners.add(finding.owner)
        shown = Shown(finding, finding.target or target_path(finding.container, targets))
        if len(group.examples) < EXAMPLES:
            group.examples.append(shown)
        if finding.kind == LARGEST_KIND:
            self._keep(self.largest_files, finding.size, shown)
        owner = self.owners.setdefault(finding.owner, OwnerTotals(owner=finding.owner))
        owner.findings[finding.severity] += 1

    def _keep(self, heap: list[tuple[int, int, Any]], size: int, entry: Any) -> None:
        """Keep `entry` among the `LARGEST` largest of `heap`."""
        self._seen += 1
        if len(heap) < LARGEST:
            heapq.heappush(heap, (size, self._seen, entry))
        elif size > heap[0][0]:
            heapq.heapreplace(heap, (size, self._seen, entry))

    def sorted_groups(self) -> list[FindingGroup]:
        """Blockers first, then warnings, then info; the most frequent kind first within."""
        return sorted(
            self.groups.values(),
            key=lambda g: (SEVERITIES.index(g.severity), -g.count, g.kind),
        )

    def sorted_owners(self) -> list[OwnerTotals]:
        """The largest owners first (by size, then items, then name)."""
        return sorted(self.owners.values(), key=lambda o: (-o.bytes, -o.items, o.owner))

    def largest_rows(self) -> list[PlanRow]:
        return [row for _, _, row in sorted(self.largest, key=lambda e: (-e[0], e[1]))]

    def largest_file_list(self) -> list[Shown]:
        return [f for _, _, f in sorted(self.largest_files, key=lambda e: (-e[0], e[1]))]

    def loads(self, rates: dict[str, float]) -> list[OwnerLoad]:
        """Each owner's jobs (a workload each) in seconds, at each workload's rate."""
        return [OwnerLoad(o.owner, _jobs(o, rates), o.items, o.bytes) for o in self.owners.values()]


def _jobs(owner: OwnerTotals, rates: dict[str, float]) -> tuple[float, ...]:
    return tuple(job_seconds(t.requests, rates.get(w, 0.0)) for w, t in owner.workloads.items())


def target_path(container: str, targets: dict[str, str]) -> str:
    """Where a finding's folder or file lands: its folder's target name and the rest of its
    path (files findings name `drive/path/in/drive`); "" when no folder of the owner is it."""
    head, rest = container, ""
    while head:
        if head in targets:
            return targets[head] + rest
        cut = head.rfind("/")
        if cut <= 0:
            break
        head, rest = head[:cut], head[cut:] + rest
    return ""


def plan_context(
    plan: Plan,
    digest: PlanDigest,
    logins: dict[str, str],
    window_seconds: float | None,
) -> dict[str, Any]:
    """Everything the plan template reads."""
    owners = digest.sorted_owners()
    concurrency = plan.owner_concurrency
    waves: list[Wave] = []
    if window_seconds:
        waves = pack_waves(digest.loads(plan.rates), window_seconds, concurrency)
    groups = digest.sorted_groups()
    return {
        "plan": plan,
        "summary": plan.summary(),
        "workloads": digest.workloads,
        "workload_owners": digest.workload_owners,
        "owner_count": len(owners),  # distinct owners (the plan's figure is per workload)
        "owners": owners[:OWNERS_SHOWN],
        "owners_left": max(0, len(owners) - OWNERS_SHOWN),
        "owner_seconds": {
            o.owner: estimate_seconds(_jobs(o, plan.rates), concurrency)
            for o in owners[:OWNERS_SHOWN]
        },
        "logins": [(o.owner, logins.get(o.owner.lower(), "")) for o in owners[:OWNERS_SHOWN]],
        "has_logins": bool(logins),
        "largest": digest.largest_rows(),
        "largest_files": digest.largest_file_list(),
        "largest_kind": LARGEST_KIND,
        "groups": groups,
        "sharing": [g for g in groups if g.kind in SHARING_KINDS],
        "window_seconds": window_seconds,
        "waves": waves,
        "examples": EXAMPLES,
    }
