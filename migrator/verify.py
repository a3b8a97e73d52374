"""`verify`: compare, per container, the source as it is now with what the target holds.

Three views meet here: the source listing (ids), the state (which target ref and
size each id was written as) and the target listing (refs, fingerprints, sizes).
Every disagreement becomes a `Difference`; items the tool declared it could not
carry (skipped, with their reason) are listed apart, they are not differences.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from ..state.schema import DONE, FAILED, SKIPPED
from ..state.store import ItemState, Store
from .model import Container, Entry, Item, Owner
from .protocols import TargetSession
from .selection import UsersFile, owners_of
from .session import Outage, OwnerSession
from .workload import RunOptions, VerifyNote, Workload


@dataclass(frozen=True)
class Difference:
    kind: str  # "missing" | "extra" | "duplicate" | "differs"
    owner: str
    container: str
    source_id: str | None
    ref: str | None
    detail: str


@dataclass
class ContainerCheck:
    owner: str
    container: str
    source_count: int
    target_count: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source id, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (source id, note): no difference
    differences: list[Difference] = field(default_factory=list)
    failed: int = 0  # items a pass tried and could not write (each is a difference too)

    def as_dict(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "container": self.container,
            "source_count": self.source_count,
            "target_count": self.target_count,
            "skipped": [{"source_id": s, "reason": r} for s, r in self.skipped],
            "notes": [{"source_id": s, "note": n} for s, n in self.notes],
            "failed": self.failed,
            "differences": [d.__dict__ for d in self.differences],
        }


@dataclass
class VerifyReport:
    workload: str
    containers: list[ContainerCheck] = field(default_factory=list)

    @property
    def differences(self) -> list[Difference]:
        return [d for c in self.containers for d in c.differences]

    @property
    def verified(self) -> bool:
        return not self.differences

    @property
    def skipped(self) -> int:
        """Items not carried for a reason the plan announces (listed, not differences)."""
        return sum(len(c.skipped) for c in self.containers)

    @property
    def notes(self) -> int:
        """Items written as the workload expects, with something to say (not differences)."""
        return sum(len(c.notes) for c in self.containers)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.containers)

    def as_dict(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "verified": self.verified,
            "differences": len(self.differences),
            "failed": self.failed,
            "skipped": self.skipped,
            "notes": self.notes,
            "containers": [c.as_dict() for c in self.containers],
        }


def compare(
    container: Container,
    source: list[Item],
    rows: list[ItemState],
    target: list[Entry],
    note: VerifyNote | None = None,
) -> ContainerCheck:
    """Pure comparison of the three views of one container; `note` says what to note about
    an item found as written (the workload's `verify_note`)."""
    check = ContainerCheck(container.owner, container.display_path, len(source), len(target))
    by_ref = {e.ref.ref: e for e in target}
    rows_by_id = {r.source_id: r for r in rows}
    rows_by_ref = {r.target_ref: r for r in rows if r.target_ref is not None}
    source_ids = {i.source_id for i in source}

    def differ(kind: str, source_id: str | None, ref: str | None, detail: str) -> None:
        check.differences.append(
            Difference(kind, container.owner, container.display_path, source_id, ref, detail)
        )

    claimed: set[str] = set()
    for item in source:
        row = rows_by_id.get(item.source_id)
        if row is None:
            differ("missing", item.source_id, None, "never copied (run sync)")
            continue
        if row.status == SKIPPED:
            check.skipped.append((item.source_id, row.last_error or "skipped"))
            continue
        if row.status == FAILED:
            check.failed += 1
            differ("missing", item.source_id, None, f"failed: {row.last_error}")
            continue
        if row.status != DONE or row.target_ref is None:
            differ("missing", item.source_id, None, f"not copied yet ({row.status})")
            continue
        entry = by_ref.get(row.target_ref)
        if entry is None:
            differ("missing", item.source_id, row.target_ref, "no longer on the target")
            continue
        claimed.add(row.target_ref)
        if row.size is not None and entry.size >= 0 and entry.size != row.size:
            differ("differs", item.source_id, row.target_ref, f"size {entry.size} != {row.size}")
        elif row.fingerprint and entry.fingerprint and entry.fingerprint != row.fingerprint:
            differ("differs", item.source_id, row.target_ref, "fingerprint differs")
        elif note is not None and (said := note(item, row.meta, row.checksum)):
            check.notes.append((item.source_id, said))

    carried = Counter(by_ref[r].fingerprint for r in claimed)
    for entry in target:
        if entry.ref.ref in claimed:
            continue
        row = rows_by_ref.get(entry.ref.ref)
        if row is not None and row.source_id not in source_ids:
            differ("extra", row.source_id, entry.ref.ref, "removed at source since the last sync")
        elif entry.fingerprint and carried[entry.fingerprint]:
            differ("duplicate", None, entry.ref.ref, f"second copy of {entry.fingerprint}")
        else:
            differ("extra", None, entry.ref.ref, "on the target only")
    return check


async def verify(
    store: Store,
    workloads: list[Workload],
    options: RunOptions,
    users: UsersFile | None = None,
) -> dict[str, VerifyReport]:
    """Compare every container of every selected owner; the report lists every difference."""
    reports: dict[str, VerifyReport] = {}
    selected = await owners_of(workloads, options, users)
    for workload in workloads:
        report = reports[workload.name] = VerifyReport(workload.name)
        owners = selected[workload.name]
        gate = asyncio.Semaphore(options.owner_concurrency)
        outage = Outage(workload.name, options.target_wait)  # as a run waits for its target
        with ThreadPoolExecutor(max_workers=max(2, options.owner_concurrency)) as pool:
            results = await asyncio.gather(
                *(_owner_checks(store, workload, o, pool, gate, outage) for o in owners)
            )
        for checks in results:
            report.containers.extend(checks)
    return reports


async def _owner_checks(
    store: Store,
    workload: Workload,
    owner: Owner,
    pool: ThreadPoolExecutor,
    gate: asyncio.Semaphore,
    outage: Outage,
) -> list[ContainerCheck]:
    async with gate:
        return await _checks(store, workload, owner, pool, outage)


async def _checks(
    store: Store, workload: Workload, owner: Owner, pool: ThreadPoolExecutor, outage: Outage
) -> list[ContainerCheck]:
    session = OwnerSession(workload, owner, pool, outage=outage)
    checks = []
    try:
        for container in await workload.source.containers(owner):
            unit = store.unit_for(container)
            source = await workload.source.listing(container)
            rows = store.items_of_unit(unit.id)
            folder = unit.target_folder
            target: list[Entry] = []
            if folder is not None:
                target = await session.call(partial(_listing, folder))
            checks.append(compare(container, source, rows, target, workload.verify_note))
    finally:
        await session.close()
    return checks


def _listing(folder: str, session: TargetSession) -> list[Entry]:
    return session.listing(folder)
