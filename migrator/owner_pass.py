"""One pass over one owner of one workload: its containers, page by page.

For each container it reads pages of changes from the stored cursor and hands each
to the container's `ContainerPass`, which marks the items to write `started`, writes
them, and commits their outcomes together with the next cursor. A `started` item is
looked up on the target before any write, so a killed pass resumes without loss and
without duplicates. Removals are settled at the end of the owner's pass, once every
container has been read, so a move between containers is never mistaken for a
deletion.

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

from ..state.records import ItemState, UnitState
from ..state.schema import (
    DELETED,
    DONE,
    FAILED,
    PENDING,
    RESYNC,
    Unit,
)
from .container_pass import ContainerPass
from .errors import CursorExpired, ItemError, Refused, Retriable
from .ledger import Ledger, ref_text
from .model import Container, Entry, Owner, TargetRef
from .protocols import TargetSession
from .session import OwnerSession, retrying
from .workload import Workload

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
            units = self.store.units_for(containers)
            # Well-known folders first: on a name collision they keep the special name.
            for container in sorted(containers, key=lambda c: c.role is None):
                # A container listed twice is read again the second time.
                key = (container.workload, container.owner, container.source_id)
                unit = units.pop(key, None) or self.store.unit_for(container)
                await self._unit(container, unit, mode)
            await self._settle_vanished()
        finally:
            await self.session.close()

    # -- one container --------------------------------------------------------

    async def _unit(self, container: Container, unit: UnitState, mode: Mode) -> None:
        if mode == "run" and unit.status == DONE:
            self.reporter.advance(self.workload.name, container.total_items, 0)
            return
        # A run's total is the containers' counts; a sync's (or an uncounted container's)
        # work is only known page by page.
        count_pages = mode == "sync" or not container.total_items
        resyncing = False
        try:
            folder = await self._target_folder(container, unit)
            part = ContainerPass(self, container, unit.id, folder)
            cursor = unit.next_link or unit.delta_link
            fresh = unit.status == PENDING and cursor is None
            adopt = fresh and await self._target_holds(container, folder)
            restart = _restart_reason(unit, cursor, self.store)
            if restart is not None:  # a re-enumeration did not end: start it over
                resyncing = True
                await self._resync(part, unit, count_pages, restart)
                return
            try:
                await self._pages(part, cursor, count_pages, adopt)
            except CursorExpired:
                log.info("cursor of %s expired: enumerating it again", container.display_path)
                resyncing = True
                await self._resync(part, unit, count_pages, "cursor-expired")
        except (Retriable, ItemError, CursorExpired) as exc:
            # A re-enumeration that fails (its own link expired too) is not continued from
            # where it stopped: the next pass lists the container from the start again,
            # so what it removes rests on a whole listing.
            reason = f"{type(exc).__name__}: {exc}"
            values = {"next_link": None} if resyncing else {}
            self.store.set_unit(unit.id, status=FAILED, last_error=reason, **values)
            self.ledger.unit_failed(container, reason)

    async def _resync(
        self, part: ContainerPass, unit: UnitState, count_pages: bool, why: str
    ) -> None:
        """Enumerate the container again from the start, as when it was first read.

        What the state holds and the new listing lacks was removed at the source while
        the cursor could not say so: it is settled as a removal with the listing's last
        page (when the workload's listing is complete, not a window). The unit stays
        `resync` until then, so a re-enumeration cut short starts over rather than
        continue with ids it never saw.
        """
        container = part.container
        self.ledger.audit.record(
            "resync", why, owner=container.owner, container=container.display_path
        )
        self.store.set_unit(unit.id, status=RESYNC, next_link=None, delta_link=None)
        seen: set[str] | None = set() if self.workload.complete_listing else None
        await self._pages(part, None, count_pages, seen=seen)

    async def _target_folder(self, container: Container, unit: UnitState) -> str:
        """The container's target folder, recorded as its unit's. When another folder of
        this owner was written there first (two source names that clean up to one target
        name), the next free name with " (2)", " (3)"...: both are kept, in the order they
        were first written, and the audit log says so."""
        wanted = container
        for number in range(2, 100):
            folder = await self.session.call(partial(_ensure, wanted))
            other = self.store.claim_folder(unit, container, folder)
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
                    other,
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
        part: ContainerPass,
        cursor: str | None,
        count_pages: bool,
        adopt: bool = False,
        seen: set[str] | None = None,
    ) -> None:
        async for page in self.workload.source.changes(part.container, cursor):
            if count_pages:
                self.reporter.add_total(self.workload.name, len(page.items))
            await part.page(page, adopt, seen)
            if page.unchecked:
                self.ledger.unit_unchecked(part.container, page.unchecked)

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
            await ContainerPass(self, container, unit.id, unit.target_folder or "").retry(rows)


def _ensure(container: Container, session: TargetSession) -> str:
    return session.ensure_container(container)


def _listing(folder: str, session: TargetSession) -> list[Entry]:
    return session.listing(folder)


def _remove(ref: TargetRef, session: TargetSession) -> None:
    session.remove(ref)
