"""One pass over one owner of one workload: its containers, page by page.

For each container it reads pages of changes from the stored cursor, marks the
items to write `started`, writes them, and commits their outcomes together with
the next cursor. A `started` item is looked up on the target before any write,
so a killed pass resumes without loss and without duplicates. Removals are
settled at the end of the owner's pass, once every container has been read, so
a move between containers is never mistaken for a deletion.

The pass records what it did in its own `Ledger`: the tally of this owner, which
the worker that ran it stores with its job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Literal, Protocol

from sqlalchemy.orm import Session

from ..state.schema import (
    DELETED,
    DONE,
    FAILED,
    PENDING,
    RESYNC,
    SKIPPED,
    STARTED,
    VANISHED,
    Unit,
)
from ..state.store import ItemState, Outcome, UnitState
from .errors import CursorExpired, ItemError, Refused, Retriable
from .ledger import Ledger, ref_text
from .model import Container, Entry, Item, Owner, Page, Payload, TargetRef
from .protocols import TargetSession
from .session import OwnerSession, retrying
from .workload import Workload
from .writer import Claims, Pending, Writer, checksum

if TYPE_CHECKING:
    from ..state.store import Store
    from .engine import Engine

log = logging.getLogger(__name__)
Mode = Literal["run", "sync"]


class Fence(Protocol):
    """Raises `LeaseLost` when this process no longer holds the owner (checked before every
    target call, and inside the transactions that record a page), with `session` when
    called within one."""

    def __call__(self, session: Session | None = None) -> None: ...


def _restart_reason(unit: UnitState, cursor: str | None, store: Store) -> str | None:
    """Why the container must be listed again from the start, or None: a re-enumeration
    cut short by a dead process (`resync`), or one that failed, leaving no cursor over
    a unit that holds items."""
    if unit.status == RESYNC:
        return "interrupted"
    if unit.status == FAILED and cursor is None and store.settled_ids(unit.id):
        return "failed-before"
    return None


def _no_fence(session: Session | None = None) -> None:
    return None


class OwnerPass:
    """Moves one owner of one workload (`run` or `sync`), or retries its failed items."""

    def __init__(
        self,
        engine: Engine,
        workload: Workload,
        owner: Owner,
        ledger: Ledger,
        fence: Fence | None = None,
    ) -> None:
        self.engine, self.workload, self.owner, self.ledger = engine, workload, owner, ledger
        self.store, self.options = engine.store, engine.options
        self.reporter = ledger.reporter
        self.fence: Fence = fence or _no_fence
        self.session = OwnerSession(
            workload,
            owner,
            engine.pool,
            engine.sessions(workload),
            self.fence,
            engine.outage(workload),
        )
        self._claims: Claims | None = None  # the refs of the unit being written

    async def run(self, mode: Mode) -> None:
        workload, owner = self.workload, self.owner
        try:
            containers = await workload.source.containers(owner)
        except (ItemError, Retriable) as exc:
            mailbox = Container(workload.name, owner.upn, "", ("(all)",))
            self.ledger.unit_failed(mailbox, f"{type(exc).__name__}: {exc}")
            return
        if mode == "run":  # a sync's work is only known page by page
            self.reporter.add_total(workload.name, sum(c.total_items for c in containers))
        try:
            # What earlier passes could not write is tried again first: a failure stays
            # counted until a pass writes it, it is never left behind by a later one.
            await self._write_failed(containers)
            # Well-known folders first: on a name collision they keep the special name.
            for container in sorted(containers, key=lambda c: c.role is None):
                await self._unit(container, mode)
            await self._settle_vanished()
        finally:
            await self.session.close()

    # -- one container --------------------------------------------------------

    async def _unit(self, container: Container, mode: Mode) -> None:
        unit = self.store.unit_for(container)
        if mode == "run" and unit.status == DONE:
            self.reporter.advance(self.workload.name, container.total_items, 0)
            return
        # A run's total is the containers' counts; a sync's (or an uncounted container's)
        # work is only known page by page.
        count_pages = mode == "sync" or not container.total_items
        resyncing = False
        try:
            folder = await self._target_folder(container, unit)
            self.store.set_unit(unit.id, target_folder=folder, last_error=None)
            cursor = unit.next_link or unit.delta_link
            fresh = unit.status == PENDING and cursor is None
            adopt = fresh and await self._target_holds(container, folder)
            restart = _restart_reason(unit, cursor, self.store)
            if restart is not None:  # a re-enumeration did not end: start it over
                resyncing = True
                await self._resync(container, unit, folder, count_pages, restart)
                return
            try:
                await self._pages(container, unit, folder, cursor, count_pages, adopt)
            except CursorExpired:
                log.info("cursor of %s expired: enumerating it again", container.display_path)
                resyncing = True
                await self._resync(container, unit, folder, count_pages, "cursor-expired")
        except (Retriable, ItemError, CursorExpired) as exc:
            # A re-enumeration that fails (its own link expired too) is not continued from
            # where it stopped: the next pass lists the container from the start again,
            # so what it removes rests on a whole listing.
            reason = f"{type(exc).__name__}: {exc}"
            values = {"next_link": None} if resyncing else {}
            self.store.set_unit(unit.id, status=FAILED, last_error=reason, **values)
            self.ledger.unit_failed(container, reason)

    async def _resync(
        self, container: Container, unit: UnitState, folder: str, count_pages: bool, why: str
    ) -> None:
        """Enumerate the container again from the start, as when it was first read.

        What the state holds and the new listing lacks was removed at the source while
        the cursor could not say so: it is settled as a removal with the listing's last
        page (when the workload's listing is complete, not a window). The unit stays
        `resync` until then, so a re-enumeration cut short starts over rather than
        continue with ids it never saw.
        """
        self.ledger.audit.record(
            "resync", why, owner=container.owner, container=container.display_path
        )
        self.store.set_unit(unit.id, status=RESYNC, next_link=None, delta_link=None)
        seen: set[str] | None = set() if self.workload.complete_listing else None
        await self._pages(container, unit, folder, None, count_pages, seen=seen)

    async def _target_folder(self, container: Container, unit: UnitState) -> str:
        """The container's target folder. When another folder of this owner was written
        there first (two source names that clean up to one target name), the next free
        name with " (2)", " (3)"...: both are kept, in the order they were first written,
        and the audit log says so."""
        wanted = container
        for number in range(2, 100):
            folder = await self.session.call(partial(_ensure, wanted))
            other = self.store.unit_with_folder(
                container.workload, container.owner, folder, excluding=unit.id
            )
            if other is None:
                break
            last = container.path[-1] if container.path else container.workload
            wanted = replace(
                container,
                path=(*container.path[:-1], f"{last} ({number})"),
                role=None,
                path_roles=(*container.path_roles[:-1], None) if container.path_roles else (),
            )
            if number == 2:
                log.warning(
                    "%s: %s and %s would both be written to %s: the second one is renamed",
                    container.owner,
                    other.path,
                    container.display_path,
                    folder,
                )
        else:
            raise Refused(f"{container.display_path}: no free target name near {folder!r}")
        if wanted is not container:
            self.ledger.audit.record(
                "rename",
                "collision",
                workload=container.workload,
                owner=container.owner,
                container=container.display_path,
                ref=folder,
                reason="another source folder has the same target name",
            )
        return folder

    async def _target_holds(self, container: Container, folder: str) -> bool:
        """Whether the target already holds items in the folder of a container the state
        has never seen (a state deleted or replaced after a run, a second tool): then each
        item is looked up before it is written, so what is there is adopted, not doubled."""
        entries = await self.session.call(partial(_listing, folder))
        if entries:
            log.warning(
                "%s %s: the target already holds %d items in %s: each item is looked up "
                "before it is written",
                container.owner,
                container.display_path,
                len(entries),
                folder,
            )
            self.ledger.audit.record(
                "adopt",
                "lookup",
                workload=container.workload,
                owner=container.owner,
                container=container.display_path,
                size=len(entries),
            )
        return bool(entries)

    async def _pages(
        self,
        container: Container,
        unit: UnitState,
        folder: str,
        cursor: str | None,
        count_pages: bool,
        adopt: bool = False,
        seen: set[str] | None = None,
    ) -> None:
        async for page in self.workload.source.changes(container, cursor):
            if count_pages:
                self.reporter.add_total(self.workload.name, len(page.items))
            await self._page(container, unit, folder, page, adopt, seen)
            if page.unchecked:
                self.ledger.unit_unchecked(container, page.unchecked)

    async def _page(
        self,
        container: Container,
        unit: UnitState,
        folder: str,
        page: Page,
        adopt: bool = False,
        seen: set[str] | None = None,
    ) -> None:
        """Write one page and settle it with the unit's cursor; `seen` gathers the ids of a
        re-enumeration, whose last page also removes what it never listed."""
        workload = self.workload
        # An item listed twice in one page (OneDrive repeats parent folders) counts once, in
        # its latest state, at the place of its first mention (parents before children).
        latest = {item.source_id: item for item in page.items}
        items = [latest.pop(item.source_id) for item in page.items if item.source_id in latest]
        ids = [item.source_id for item in items]
        known = self.store.items_by_source(unit.id, ids)
        moved_from = self.store.items_elsewhere(
            workload.name, container.owner, unit.id, [i for i in ids if i not in known]
        )
        writes: list[tuple[Item, ItemState | None]] = []
        updates: list[tuple[Item, ItemState]] = []
        moves: list[tuple[Item, ItemState]] = []
        unchanged = 0
        for item in items:
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
            unit.id,
            container,
            [(item, row.id if row else None) for item, row in writes],
            guard=self.fence,
        )
        outcomes: list[Outcome] = []
        if workload.update_order is not None:
            order = workload.update_order
            updates.sort(key=lambda pair: order(pair[0]))
        for item, row in moves:
            outcomes.append(await self._move(container, folder, item, row))
        for item, row in updates:
            outcomes.append(await self._update(container, item, row))
        claims = self._claims_of(unit.id)
        for outcome in outcomes:  # moved in or rewritten: owned before any lookup below
            if outcome.ref is not None:
                claims.add(outcome.ref)
        pending = [
            Pending(
                item,
                row_ids[item.source_id],
                adopt or (row is not None and row.status in (STARTED, FAILED)),
            )
            for item, row in writes
        ]
        outcomes.extend(await self._writer(container, unit.id, folder).write_all(pending))
        vanished = [i for i in page.removed if i not in ids]
        if seen is not None:
            seen.update(ids)
            if page.delta_link is not None:
                unlisted = self.store.settled_ids(unit.id) - seen - set(vanished)
                vanished += sorted(unlisted)
        self.store.settle_page(
            unit.id,
            container,
            outcomes,
            vanished,
            page.next_link,
            page.delta_link,
            guard=self.fence,
        )
        if workload.link_of is not None:
            self._record_links(container, outcomes)

    def _writer(self, container: Container, unit_id: int, folder: str) -> Writer:
        return Writer(
            self.workload,
            container,
            folder,
            self.session,
            self._claims_of(unit_id),
            self.options,
            self.ledger,
            self.engine.memory,
        )

    def _claims_of(self, unit_id: int) -> Claims:
        """The unit's claims, read from the state at most once while its pages are written."""
        if self._claims is None or self._claims.unit_id != unit_id:
            self._claims = Claims(self.store, unit_id)
        return self._claims

    def _record_links(self, container: Container, outcomes: list[Outcome]) -> None:
        link_of = self.workload.link_of
        assert link_of is not None
        links = {}
        for outcome in outcomes:
            if outcome.status == DONE and outcome.ref is not None:
                link = link_of(container, outcome.item, outcome.ref)
                if link is not None and link[0]:
                    links[link[0]] = link[1]
        if links:
            self.store.set_links(self.workload.name, links)

    async def _update(self, container: Container, item: Item, row: ItemState) -> Outcome:
        workload, session = self.workload, self.session
        if workload.hierarchical_refs:
            # An earlier update of this page may have moved a parent folder and rebased
            # this item's ref: read it again.
            row = self.store.item(row.id) or row
        ref = old = row.ref
        payload: Payload | None = None
        with_content = workload.attrs_mapper is None or (
            workload.content_changed is not None and workload.content_changed(row.meta, item)
        )
        try:
            payload = await self._attrs_payload(container, item, with_content)
            if ref is not None:
                ref = await retrying(
                    lambda: session.call(lambda s: s.update(ref, payload)),
                    self.options.item_attempts,
                    self.options.retry_pause,
                )
        except (ItemError, Retriable) as exc:
            status = exc.status if isinstance(exc, ItemError) else FAILED
            self.ledger.item("update", status, container, item, ref=ref, reason=str(exc))
            return Outcome(item, status, error=str(exc), row_id=row.id)
        finally:
            if payload is not None and payload.blob is not None:
                payload.blob.discard()
        if workload.hierarchical_refs and old is not None and ref is not None and ref != old:
            self.store.rebase_refs(row.unit_id, old.ref + "/", ref.ref + "/")
            self._claims = None  # refs rewritten in the state: read them again
        remark = payload.remark if payload is not None else None
        self.ledger.item("update", "done", container, item, ref=ref, remark=remark)
        if not with_content or payload is None:
            return Outcome(item, DONE, ref=ref, row_id=row.id)  # attributes only
        return Outcome(
            item,
            DONE,
            ref=ref,
            row_id=row.id,
            size=payload.size,
            fingerprint=payload.fingerprint,
            checksum=checksum(payload),
        )

    async def _move(self, container: Container, folder: str, item: Item, row: ItemState) -> Outcome:
        session = self.session
        ref = row.ref
        assert ref is not None  # items_elsewhere only finds rows with a target ref
        try:
            moved = await retrying(
                lambda: session.call(lambda s: s.move(ref, folder)),
                self.options.item_attempts,
                self.options.retry_pause,
            )
            if row.version != item.version:
                payload = await self._attrs_payload(container, item)
                try:
                    moved = await session.call(lambda s: s.update(moved, payload))
                finally:
                    if payload.blob is not None:
                        payload.blob.discard()
        except (ItemError, Retriable) as exc:
            # The copy is gone or unreachable: write the item afresh on the next pass.
            self.ledger.item("move", "failed", container, item, ref=ref, reason=str(exc))
            return Outcome(item, FAILED, error=str(exc), row_id=row.id)
        self.ledger.item("move", "done", container, item, ref=moved)
        return Outcome(item, DONE, ref=moved, row_id=row.id)

    async def _attrs_payload(
        self, container: Container, item: Item, with_content: bool = False
    ) -> Payload:
        workload = self.workload
        if workload.attrs_mapper is not None and not with_content:
            return workload.attrs_mapper(item)
        return workload.mapper(item, await workload.source.fetch(container, item))

    async def _settle_vanished(self) -> None:
        """Items the source removed and that did not reappear elsewhere: mirror or keep."""
        workload, owner = self.workload, self.owner
        for row in self.store.vanished(workload.name, owner.upn):
            ref = row.ref
            result = "kept"
            if self.options.deletions == "mirror" and ref is not None:
                await retrying(
                    partial(self.session.call, partial(_remove, ref)),
                    self.options.item_attempts,
                    self.options.retry_pause,
                )
                self.ledger.tallies[workload.name].removed += 1
                result = "removed"
            self.store.set_status([row.id], DELETED)
            self.ledger.audit.record(
                "remove",
                result,
                workload=workload.name,
                owner=owner.upn,
                source_id=row.source_id,
                ref=ref_text(ref),
            )

    # -- retry-failed -----------------------------------------------------------

    async def retry_failed(self) -> None:
        """Write again every item of this owner marked failed, looking for an earlier copy."""
        try:
            await self._write_failed(())  # the state's record of each container serves
        finally:
            await self.session.close()

    async def _write_failed(self, containers: Sequence[Container]) -> None:
        """Write again the items marked failed, each in its container as the source listed
        it in this pass (`containers`, with its role), else as the state recorded it."""
        failed = self.store.failed(self.workload.name, self.owner.upn)
        if failed:
            self.reporter.add_total(self.workload.name, len(failed))
        by_unit: dict[int, tuple[Unit, list[ItemState]]] = {}
        for unit, row in failed:
            by_unit.setdefault(unit.id, (unit, []))[1].append(row)
        listed = {c.source_id: c for c in containers}
        for unit, rows in by_unit.values():
            container = listed.get(unit.container_id) or Container(
                self.workload.name, unit.owner, unit.container_id, tuple(unit.path.split("/"))
            )
            writer = self._writer(container, unit.id, unit.target_folder or "")
            pending = [Pending(Item(r.source_id, r.version, r.meta), r.id, True) for r in rows]
            outcomes = await writer.write_all(pending)
            self.store.apply_outcomes(unit.id, container, outcomes, guard=self.fence)


def _ensure(container: Container, session: TargetSession) -> str:
    return session.ensure_container(container)


def _listing(folder: str, session: TargetSession) -> list[Entry]:
    return session.listing(folder)


def _remove(ref: TargetRef, session: TargetSession) -> None:
    session.remove(ref)
