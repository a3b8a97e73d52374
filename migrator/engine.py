"""The engine: moves every workload's items from its source to its target, resumably.

It knows nothing about mail or files. For each owner it walks the containers;
for each container it reads pages of changes from the stored cursor, marks the
items to write `started`, writes them, and commits their outcomes together with
the next cursor. A `started` item is looked up on the target before any write,
so a killed run resumes without loss and without duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from ..state.schema import DELETED, DONE, FAILED, SKIPPED, STARTED, VANISHED
from ..state.store import ItemState, Outcome, Store, UnitState
from .audit import AuditLog
from .errors import CursorExpired, FatalError, Retriable, SkipItem
from .model import Container, Item, Owner, Page, Payload, TargetRef
from .protocols import TargetSession
from .workload import Reporter, RunOptions, SilentReporter, Workload, select_owners

log = logging.getLogger(__name__)
T = TypeVar("T")
Mode = Literal["run", "sync"]


@dataclass
class Tally:
    """What one workload's pass did; the summary of `run` and `sync`."""

    copied: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    failed_units: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "copied": self.copied,
            "updated": self.updated,
            "moved": self.moved,
            "removed": self.removed,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "failed_units": list(self.failed_units),
        }


class OwnerSession:
    """One owner's target session, used by one thread at a time, reopened after a reset."""

    def __init__(self, workload: Workload, owner: Owner, pool: ThreadPoolExecutor) -> None:
        self.workload, self.owner, self.pool = workload, owner, pool
        self.lock = asyncio.Lock()
        self._session: TargetSession | None = None

    async def call(self, fn: Callable[[TargetSession], T]) -> T:
        """Run `fn(session)` in the pool, holding the session for this call only."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            if self._session is None:
                self._session = await loop.run_in_executor(
                    self.pool, self.workload.target.open, self.owner
                )
            session = self._session
            try:
                return await loop.run_in_executor(self.pool, fn, session)
            except Retriable:
                self._session = None  # the connection may be dead: reopen on the next call
                await loop.run_in_executor(self.pool, _close_quietly, session)
                raise

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.get_running_loop().run_in_executor(self.pool, _close_quietly, session)


def _close_quietly(session: TargetSession) -> None:
    try:
        session.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may fail in many ways
        log.debug("closing a target session failed", exc_info=True)


class Engine:
    """Runs `run`, `sync` and `retry-failed` over the registered workloads."""

    def __init__(
        self,
        store: Store,
        workloads: list[Workload],
        options: RunOptions,
        audit: AuditLog,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.workloads = workloads
        self.options = options
        self.audit = audit
        self.reporter = reporter or SilentReporter()
        self.tallies: dict[str, Tally] = {w.name: Tally() for w in workloads}
        self.pool = ThreadPoolExecutor(
            max_workers=max(4, options.owner_concurrency * len(workloads)),
            thread_name_prefix="target",
        )

    # -- entry points -------------------------------------------------------

    async def run(self, mode: Mode) -> dict[str, Tally]:
        """Copy (`run`) or carry changes (`sync`) for every workload and owner."""
        try:
            for workload in self.workloads:
                owners = select_owners(await workload.source.owners(), self.options)
                gate = asyncio.Semaphore(self.options.owner_concurrency)
                async with asyncio.TaskGroup() as group:
                    for owner in owners:
                        group.create_task(self._owner(workload, owner, mode, gate))
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None
        finally:
            self.pool.shutdown(wait=False)
        return self.tallies

    async def _owner(
        self, workload: Workload, owner: Owner, mode: Mode, gate: asyncio.Semaphore
    ) -> None:
        async with gate:
            containers = await workload.source.containers(owner)
            self.reporter.add_total(workload.name, sum(c.total_items for c in containers))
            session = OwnerSession(workload, owner, self.pool)
            try:
                for container in containers:
                    await self._unit(workload, container, session, mode)
                await self._settle_vanished(workload, owner, session)
            finally:
                await session.close()

    # -- one container --------------------------------------------------------

    async def _unit(
        self, workload: Workload, container: Container, session: OwnerSession, mode: Mode
    ) -> None:
        unit = self.store.unit_for(container)
        if mode == "run" and unit.status == DONE:
            self.reporter.advance(workload.name, container.total_items, 0)
            return
        try:
            folder = await session.call(lambda s: s.ensure_container(container))
            self.store.set_unit(unit.id, target_folder=folder, last_error=None)
            cursor = unit.next_link or unit.delta_link
            try:
                await self._pages(workload, container, unit, folder, session, cursor)
            except CursorExpired:
                log.info("cursor of %s expired: enumerating it again", container.display_path)
                self.audit.record(
                    "resync",
                    "cursor-expired",
                    owner=container.owner,
                    container=container.display_path,
                )
                self.store.set_unit(unit.id, next_link=None, delta_link=None)
                await self._pages(workload, container, unit, folder, session, None)
        except (Retriable, SkipItem) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.store.set_unit(unit.id, status=FAILED, last_error=reason)
            self.tallies[workload.name].failed_units.append(
                f"{container.owner}:{container.display_path}"
            )
            self.audit.record(
                "unit",
                "failed",
                owner=container.owner,
                container=container.display_path,
                reason=reason,
            )

    async def _pages(
        self,
        workload: Workload,
        container: Container,
        unit: UnitState,
        folder: str,
        session: OwnerSession,
        cursor: str | None,
    ) -> None:
        async for page in workload.source.changes(container, cursor):
            await self._page(workload, container, unit, folder, session, page)

    async def _page(
        self,
        workload: Workload,
        container: Container,
        unit: UnitState,
        folder: str,
        session: OwnerSession,
        page: Page,
    ) -> None:
        ids = [item.source_id for item in page.items]
        known = self.store.items_by_source(unit.id, ids)
        moved_from = self.store.items_elsewhere(
            workload.name, container.owner, unit.id, [i for i in ids if i not in known]
        )
        writes: list[tuple[Item, ItemState | None]] = []
        updates: list[tuple[Item, ItemState]] = []
        moves: list[tuple[Item, ItemState]] = []
        unchanged = 0
        for item in page.items:
            row = known.get(item.source_id)
            if row is not None and row.status in (DONE, SKIPPED, VANISHED):
                if row.version == item.version and row.status != VANISHED:
                    unchanged += 1
                elif row.status == SKIPPED:
                    writes.append((item, row))
                else:
                    updates.append((item, row))
            elif row is None and item.source_id in moved_from:
                moves.append((item, moved_from[item.source_id]))
            else:
                writes.append((item, row))
        self.reporter.advance(workload.name, unchanged, 0)

        row_ids = self.store.mark_started(
            unit.id, container, [(item, row.id if row else None) for item, row in writes]
        )
        claimed = _Claims(self.store, unit.id)
        outcomes: list[Outcome] = []
        for item, row in moves:
            outcomes.append(await self._move(workload, container, folder, session, item, row))
        for item, row in updates:
            outcomes.append(await self._update(workload, container, session, item, row))
        fetch_gate = asyncio.Semaphore(self.options.fetch_concurrency)
        results = await asyncio.gather(
            *(
                self._write(
                    workload,
                    container,
                    folder,
                    session,
                    item,
                    resume=row is not None and row.status in (STARTED, FAILED),
                    row_id=row_ids[item.source_id],
                    claims=claimed,
                    gate=fetch_gate,
                )
                for item, row in writes
            )
        )
        outcomes.extend(results)
        vanished = [i for i in page.removed if i not in ids]
        self.store.settle_page(
            unit.id, container, outcomes, vanished, page.next_link, page.delta_link
        )

    async def _write(
        self,
        workload: Workload,
        container: Container,
        folder: str,
        session: OwnerSession,
        item: Item,
        *,
        resume: bool,
        row_id: int,
        claims: _Claims,
        gate: asyncio.Semaphore,
    ) -> Outcome:
        """Fetch, map and store one item; look for an earlier copy first when resuming."""
        tally = self.tallies[workload.name]
        async with gate:
            try:
                content = await workload.source.fetch(container, item)
                payload = workload.mapper(item, content)
                ref = await self._store_payload(session, folder, payload, resume, claims)
            except SkipItem as exc:
                tally.skipped += 1
                self.reporter.advance(workload.name, 1, 0)
                self._audit_item("put", "skipped", container, item, reason=str(exc))
                return Outcome(item, SKIPPED, error=str(exc), row_id=row_id)
            except Retriable as exc:
                tally.failed += 1
                self.reporter.advance(workload.name, 1, 0)
                self._audit_item("put", "failed", container, item, reason=str(exc))
                return Outcome(item, FAILED, error=str(exc), row_id=row_id)
        tally.copied += 1
        tally.bytes += payload.size
        self.reporter.advance(workload.name, 1, payload.size)
        self._audit_item("put", "done", container, item, ref=ref, size=payload.size)
        return Outcome(
            item,
            DONE,
            ref=ref,
            fingerprint=payload.fingerprint,
            size=payload.size,
            checksum="sha256:" + hashlib.sha256(payload.content).hexdigest(),
            row_id=row_id,
        )

    async def _store_payload(
        self, session: OwnerSession, folder: str, payload: Payload, resume: bool, claims: _Claims
    ) -> TargetRef:
        """find-then-put with retries; claims keep two equal payloads from sharing a copy."""
        pause = self.options.retry_pause
        for attempt in range(1, self.options.item_attempts + 1):
            try:
                async with claims.lock:
                    ref = None
                    if resume:
                        exclude = claims.refs()
                        ref = await session.call(lambda s, x=exclude: s.find(folder, payload, x))
                    if ref is None:
                        ref = await session.call(lambda s: s.put(folder, payload))
                    claims.add(ref)
                    return ref
            except Retriable as exc:
                if attempt == self.options.item_attempts:
                    raise
                resume = True  # the write may have landed before the failure
                await asyncio.sleep(exc.retry_after or pause)
                pause *= 2
        raise AssertionError("unreachable")

    async def _update(
        self,
        workload: Workload,
        container: Container,
        session: OwnerSession,
        item: Item,
        row: ItemState,
    ) -> Outcome:
        ref = row.ref
        payload = await self._attrs_payload(workload, container, item)
        if ref is not None:
            ref = await _retrying(
                lambda: session.call(lambda s: s.update(ref, payload)),
                self.options.item_attempts,
                self.options.retry_pause,
            )
        self.tallies[workload.name].updated += 1
        self.reporter.advance(workload.name, 1, 0)
        self._audit_item("update", "done", container, item, ref=ref)
        return Outcome(item, DONE, ref=ref, row_id=row.id)

    async def _move(
        self,
        workload: Workload,
        container: Container,
        folder: str,
        session: OwnerSession,
        item: Item,
        row: ItemState,
    ) -> Outcome:
        ref = row.ref
        if ref is None:
            raise AssertionError(f"item {item.source_id} is done without a target ref")
        moved = await _retrying(
            lambda: session.call(lambda s: s.move(ref, folder)),
            self.options.item_attempts,
            self.options.retry_pause,
        )
        if row.version != item.version:
            payload = await self._attrs_payload(workload, container, item)
            moved = await session.call(lambda s: s.update(moved, payload))
        self.tallies[workload.name].moved += 1
        self.reporter.advance(workload.name, 1, 0)
        self._audit_item("move", "done", container, item, ref=moved)
        return Outcome(item, DONE, ref=moved, row_id=row.id)

    async def _attrs_payload(self, workload: Workload, container: Container, item: Item) -> Payload:
        if workload.attrs_mapper is not None:
            return workload.attrs_mapper(item)
        return workload.mapper(item, await workload.source.fetch(container, item))

    async def _settle_vanished(
        self, workload: Workload, owner: Owner, session: OwnerSession
    ) -> None:
        """Items the source removed and that did not reappear elsewhere: mirror or keep."""
        for row in self.store.vanished(workload.name, owner.upn):
            ref = row.ref
            if self.options.deletions == "mirror" and ref is not None:
                await _retrying(
                    lambda r=ref: session.call(lambda s: s.remove(r)),
                    self.options.item_attempts,
                    self.options.retry_pause,
                )
                self.tallies[workload.name].removed += 1
                result = "removed"
            else:
                result = "kept"
            self.store.set_status([row.id], DELETED)
            self.audit.record(
                "remove",
                result,
                workload=workload.name,
                owner=owner.upn,
                source_id=row.source_id,
                ref=_ref_text(ref),
            )

    # -- retry-failed -----------------------------------------------------------

    async def retry_failed(self) -> dict[str, Tally]:
        """Write again every item marked failed, looking for an earlier copy first."""
        try:
            for workload in self.workloads:
                await self._retry_workload(workload)
        finally:
            self.pool.shutdown(wait=False)
        return self.tallies

    async def _retry_workload(self, workload: Workload) -> None:
        by_owner: dict[str, list[tuple[Container, str, ItemState]]] = {}
        for unit, row in self.store.failed(workload.name):
            container = Container(
                workload.name, unit.owner, unit.container_id, tuple(unit.path.split("/"))
            )
            by_owner.setdefault(unit.owner, []).append((container, unit.target_folder or "", row))
        for upn, rows in by_owner.items():
            login = self.options.target_logins.get(upn.lower(), "")
            session = OwnerSession(workload, Owner(upn, "", "", login), self.pool)
            try:
                for container, folder, row in rows:
                    item = Item(row.source_id, row.version, row.meta)
                    outcome = await self._write(
                        workload,
                        container,
                        folder,
                        session,
                        item,
                        resume=True,
                        row_id=row.id,
                        claims=_Claims(self.store, row.unit_id),
                        gate=asyncio.Semaphore(1),
                    )
                    self.store.settle_page(row.unit_id, container, [outcome], [], None, None)
            finally:
                await session.close()

    def _audit_item(
        self,
        action: str,
        result: str,
        container: Container,
        item: Item,
        ref: TargetRef | None = None,
        size: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.audit.record(
            action,
            result,
            workload=container.workload,
            owner=container.owner,
            container=container.display_path,
            source_id=item.source_id,
            ref=_ref_text(ref),
            size=size,
            reason=reason,
        )


class _Claims:
    """Target refs owned by items of one unit, so `find` never hands one copy to two items."""

    def __init__(self, store: Store, unit_id: int) -> None:
        self.store, self.unit_id = store, unit_id
        self.lock = asyncio.Lock()
        self._refs: set[str] | None = None

    def refs(self) -> frozenset[str]:
        if self._refs is None:
            self._refs = self.store.unit_refs(self.unit_id)
        return frozenset(self._refs)

    def add(self, ref: TargetRef) -> None:
        if self._refs is not None:
            self._refs.add(ref.ref)


async def _retrying(call: Callable[[], Awaitable[T]], attempts: int, pause: float) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Retriable as exc:
            if attempt == attempts:
                raise
            await asyncio.sleep(exc.retry_after or pause)
            pause *= 2
    raise AssertionError("unreachable")


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The first fatal error of a task group (what the user must fix), else the group."""
    fatal = group.subgroup(FatalError)
    while fatal is not None:
        first = fatal.exceptions[0]
        if not isinstance(first, BaseExceptionGroup):
            return first
        fatal = first
    return group


def _ref_text(ref: TargetRef | None) -> str | None:
    return None if ref is None else f"{ref.folder}#{ref.ref}"
