"""`verify`: compare, per container, the source as it is now with what the target holds.

Three views meet here: the source listing (ids), the state (which target ref and
size each id was written as) and the target listing (refs, fingerprints, sizes).
Every disagreement becomes a `Difference`; items the tool declared it could not
carry (skipped, with their reason) are listed apart, they are not differences.
"""

from __future__ import annotations

import asyncio
import hashlib
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import TypeVar

from ..state.records import ItemState
from ..state.schema import DONE, FAILED, SKIPPED
from ..state.store import Store
from .model import Container, Entry, Item, Owner, TargetRef
from .protocols import PagedListing, Source, StreamedListing, TargetSession
from .selection import UsersFile, owners_of
from .session import Outage, OwnerSession
from .sorted_runs import SortedRuns
from .workload import RunOptions, VerifyNote, Workload

T = TypeVar("T")
SOURCE_CHUNK = 1000  # source ids looked up in the state at once


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


class Comparison:
    """One container's comparison, fed in two passes so that memory stays flat.

    1. `listed`: the source listing, a page at a time, with the state's rows of those
       ids (a keyed query): what was never copied, skipped or failed is known at once.
    2. `joined`: the state's rows that name a target ref and the target's listing, both
       in ascending ref order, walked side by side (a merge join).

    Between the passes it holds one bit per state row (whether its item is still listed)
    and the notes of listed items; the second pass holds one 8-byte digest per carried
    copy. Differences, notes and skipped items are kept whole: they are the report.
    """

    def __init__(self, container: Container, note: VerifyNote | None = None) -> None:
        self.container, self.note = container, note
        self.check = ContainerCheck(container.owner, container.display_path, 0, 0)
        self._listed = bytearray()  # bit per state row id: its item is in the source
        self._notes: dict[int, str] = {}  # row id -> note, said if found as written

    def _differ(self, kind: str, source_id: str | None, ref: str | None, detail: str) -> None:
        self.check.differences.append(
            Difference(
                kind, self.container.owner, self.container.display_path, source_id, ref, detail
            )
        )

    def _mark(self, row_id: int) -> None:
        byte = row_id >> 3
        if byte >= len(self._listed):
            self._listed.extend(bytes(max(byte + 1 - len(self._listed), len(self._listed))))
        self._listed[byte] |= 1 << (row_id & 7)

    def _is_listed(self, row_id: int) -> bool:
        byte = row_id >> 3
        return byte < len(self._listed) and bool(self._listed[byte] & (1 << (row_id & 7)))

    def listed(self, items: Iterable[Item], rows: Mapping[str, ItemState]) -> None:
        """Pass 1, for a page of the source listing and the state's rows of its ids."""
        check = self.check
        for item in items:
            check.source_count += 1
            row = rows.get(item.source_id)
            if row is None:
                self._differ("missing", item.source_id, None, "never copied (run sync)")
                continue
            self._mark(row.id)
            if row.status == SKIPPED:
                check.skipped.append((item.source_id, row.last_error or "skipped"))
            elif row.status == FAILED:
                check.failed += 1
                self._differ("missing", item.source_id, None, f"failed: {row.last_error}")
            elif row.status != DONE or row.target_ref is None:
                self._differ("missing", item.source_id, None, f"not copied yet ({row.status})")
            elif self.note is not None and (said := self.note(item, row.meta, row.checksum)):
                self._notes[row.id] = said

    def joined(self, rows: Iterable[ItemState], entries: Iterable[Entry]) -> None:
        """Pass 2: rows with a target ref and the target's entries, both in ref order."""
        carried = array("Q")  # digests of the fingerprints of claimed copies
        unclaimed: list[tuple[Entry, ItemState | None]] = []
        for group, entry in _merge(rows, entries):
            claims = [r for r in group if r.status == DONE and self._is_listed(r.id)]
            for row in claims:
                self._claimed(row, entry)
            if entry is None:
                continue
            self.check.target_count += 1
            if not claims:
                unclaimed.append((entry, group[-1] if group else None))
            elif entry.fingerprint:
                carried.append(_digest(entry.fingerprint))
        # A copy nobody claims is a duplicate when its fingerprint is also carried by a
        # claimed one; those are few, so the carried digests are scanned once for them.
        suspects = {_digest(e.fingerprint) for e, _ in unclaimed if e.fingerprint}
        doubled = {d for d in carried if d in suspects} if suspects else set()
        for entry, owner_row in unclaimed:
            ref = entry.ref.ref
            if owner_row is not None and not self._is_listed(owner_row.id):
                self._differ(
                    "extra", owner_row.source_id, ref, "removed at source since the last sync"
                )
            elif entry.fingerprint and _digest(entry.fingerprint) in doubled:
                self._differ("duplicate", None, ref, f"second copy of {entry.fingerprint}")
            else:
                self._differ("extra", None, ref, "on the target only")

    def _claimed(self, row: ItemState, entry: Entry | None) -> None:
        """A listed item written as `row`, against the target's entry of its ref."""
        if entry is None:
            self._differ("missing", row.source_id, row.target_ref, "no longer on the target")
        elif row.size is not None and entry.size >= 0 and entry.size != row.size:
            self._differ(
                "differs", row.source_id, row.target_ref, f"size {entry.size} != {row.size}"
            )
        elif row.fingerprint and entry.fingerprint and entry.fingerprint != row.fingerprint:
            self._differ("differs", row.source_id, row.target_ref, "fingerprint differs")
        elif said := self._notes.get(row.id):
            self.check.notes.append((row.source_id, said))


def _digest(text: str) -> int:
    """64 bits of BLAKE2b: a collision among a folder's fingerprints is not to be expected."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _ascending(refs: Iterable[T], ref_of: Callable[[T], str], what: str) -> Iterator[T]:
    """`refs` unchanged, checked to come in ascending order (a merge join relies on it)."""
    last = ""
    for record in refs:
        ref = ref_of(record)
        if ref < last:
            raise RuntimeError(f"verify: the {what} is not in ascending ref order at {ref!r}")
        last = ref
        yield record


def _merge(
    rows: Iterable[ItemState], entries: Iterable[Entry]
) -> Iterator[tuple[list[ItemState], Entry | None]]:
    """Pairs of (the rows of one ref, the target's entry of that ref or None)."""
    groups = groupby(_ascending(rows, _row_ref, "state"), key=_row_ref)
    listing = iter(_ascending(entries, _entry_ref, "target listing"))
    group, entry = next(groups, None), next(listing, None)
    while group is not None or entry is not None:
        if entry is None or (group is not None and group[0] < entry.ref.ref):
            assert group is not None
            yield list(group[1]), None
            group = next(groups, None)
        elif group is None or entry.ref.ref < group[0]:
            yield [], entry
            entry = next(listing, None)
        else:
            yield list(group[1]), entry
            group, entry = next(groups, None), next(listing, None)


def _row_ref(row: ItemState) -> str:
    return row.target_ref or ""


def _entry_ref(entry: Entry) -> str:
    return entry.ref.ref


def compare(
    container: Container,
    source: list[Item],
    rows: list[ItemState],
    target: list[Entry],
    note: VerifyNote | None = None,
) -> ContainerCheck:
    """Pure comparison of the three views of one container held in memory; `note` says
    what to note about an item found as written (the workload's `verify_note`)."""
    numbered = [replace(r, id=n) for n, r in enumerate(rows)]  # any ids: a bit each
    comparison = Comparison(container, note)
    comparison.listed(source, {r.source_id: r for r in numbered})
    with_ref = sorted((r for r in numbered if r.target_ref is not None), key=_row_ref)
    comparison.joined(with_ref, sorted(target, key=_entry_ref))
    return comparison.check


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
    loop = asyncio.get_running_loop()
    checks = []
    try:
        for container in await workload.source.containers(owner):
            unit = store.unit_for(container)
            comparison = Comparison(container, workload.verify_note)
            async for page in _source_pages(workload.source, container):
                for start in range(0, len(page), SOURCE_CHUNK):
                    chunk = page[start : start + SOURCE_CHUNK]
                    ids = [item.source_id for item in chunk]
                    rows = await loop.run_in_executor(pool, store.items_by_source, unit.id, ids)
                    comparison.listed(chunk, rows)
            folder = unit.target_folder
            target: SortedRuns[Listed] = SortedRuns([], key=itemgetter(0))
            if folder is not None:
                target = await session.call(partial(_sorted_listing, folder))
            with target:
                entries = (Entry(TargetRef(folder or "", r), f, n) for r, f, n in target)
                rows_by_ref = store.items_by_ref(unit.id)
                await loop.run_in_executor(pool, comparison.joined, rows_by_ref, entries)
            checks.append(comparison.check)
    finally:
        await session.close()
    return checks


async def _source_pages(source: Source, container: Container) -> AsyncIterator[Sequence[Item]]:
    """The container's source listing a page at a time when the source can, else whole."""
    if isinstance(source, PagedListing):
        async for page in source.listing_pages(container):
            yield page
    else:
        yield await source.listing(container)


Listed = tuple[str, str, int]  # an entry as sorted: ref, fingerprint, size


def _sorted_listing(folder: str, session: TargetSession) -> SortedRuns[Listed]:
    """The folder's entries in ref order, streamed from the target when it can."""
    if isinstance(session, StreamedListing):
        entries: Iterable[Entry] = session.listing_stream(folder)
    else:
        entries = session.listing(folder)
    return SortedRuns(((e.ref.ref, e.fingerprint, e.size) for e in entries), key=itemgetter(0))
