"""One container within an owner's pass: its pages, each written and settled whole.

A `ContainerPass` is made once the container's target folder is known, and holds what
every page of that container shares: the folder, the refs the unit owns (`Claims`) and
the `Writer` of its new items. A page is sorted into items unchanged, rewritten, moved in
from another container of the owner, and new; the new ones are marked `started` before
any target write, and the outcomes are committed together with the page's cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..state.records import ItemState, Outcome
from ..state.schema import DELETED, DONE, FAILED, SKIPPED, STARTED, VANISHED
from .errors import GoneAtSource, ItemError, Retriable, SkipItem
from .gone import remove_gone
from .model import Container, Item, Page, Payload
from .session import retrying
from .writer import Claims, Pending, Writer, checksum

if TYPE_CHECKING:
    from .owner_pass import OwnerPass


@dataclass(slots=True)
class _Sorted:
    """A page's items by what they need."""

    writes: list[tuple[Item, ItemState | None]] = field(default_factory=list)
    updates: list[tuple[Item, ItemState]] = field(default_factory=list)
    moves: list[tuple[Item, ItemState]] = field(default_factory=list)
    unchanged: int = 0


class ContainerPass:
    """Writes the pages of one container of one owner into its target folder."""

    def __init__(
        self, owner_pass: OwnerPass, container: Container, unit_id: int, folder: str
    ) -> None:
        self.owner_pass, self.container = owner_pass, container
        self.unit_id, self.folder = unit_id, folder
        self.workload, self.store = owner_pass.workload, owner_pass.store
        self.session, self.ledger = owner_pass.session, owner_pass.ledger
        self.options = owner_pass.options
        self.claims = Claims(self.store, unit_id)  # read from the state at most once
        self.writer = Writer(
            self.workload,
            container,
            folder,
            self.session,
            self.claims,
            self.options,
            self.ledger,
            owner_pass.engine.memory,
        )

    async def page(self, page: Page, adopt: bool = False, seen: set[str] | None = None) -> None:
        """Write one page and settle it with the unit's cursor; `seen` gathers the ids of a
        re-enumeration, whose last page also removes what it never listed."""
        workload, container, unit_id = self.workload, self.container, self.unit_id
        # An item listed twice in one page (OneDrive repeats parent folders) counts once, in
        # its latest state, at the place of its first mention (parents before children).
        latest = {item.source_id: item for item in page.items}
        items = [latest.pop(item.source_id) for item in page.items if item.source_id in latest]
        ids = [item.source_id for item in items]
        fence = self.owner_pass.fence
        work, row_ids = _Sorted(), {}
        if items:  # one transaction reads the page's rows and marks those to write
            # `started`, committed before any target write (a page of removals only has none)
            with self.store.page_start(unit_id, container, guard=fence) as start:
                moves = workload.target.capabilities.moves
                work = self._sort(items, *start.rows(ids, elsewhere=moves))
                row_ids = start.mark_started(
                    [(item, row.id if row else None) for item, row in work.writes]
                )
        self.owner_pass.reporter.advance(workload.name, work.unchanged, 0)
        outcomes: list[Outcome] = []
        if workload.update_order is not None:
            order = workload.update_order
            work.updates.sort(key=lambda pair: order(pair[0]))
        left: list[tuple[Item, ItemState]] = []  # no copy in the old folder to move
        for item, row in work.moves:
            moved = await self._move(item, row)
            if moved is None:
                left.append((item, row))
            else:
                outcomes.append(moved)
        for item, row in work.updates:
            outcomes.append(await self._update(item, row))
        for outcome in outcomes:  # moved in or rewritten: owned before any lookup below
            if outcome.ref is not None:
                self.claims.add(outcome.ref)
        pending = [
            Pending(
                item,
                row_ids[item.source_id],
                adopt or (row is not None and _may_be_there(row)),
                row.target_ref if row is not None and row.status == DELETED else None,
                row.ref if row is not None and row.status != DELETED else None,
            )
            for item, row in work.writes
        ]
        # A pass killed between the target's move and its settling moved the copy already:
        # it is looked for here before anything is written (found: adopted, not doubled).
        # Not marked `started`: the row still names the old folder, so a pass that dies
        # before settling this one looks it up here again the same way.
        pending += [Pending(item, row.id, True) for item, row in left]
        outcomes.extend(await self.writer.write_all(pending))
        vanished = [i for i in page.removed if i not in ids]
        if seen is not None:
            seen.update(ids)
            if page.delta_link is not None:
                unlisted = self.store.settled_ids(unit_id) - seen - set(vanished)
                vanished += sorted(unlisted)
        self.store.settle_page(
            unit_id,
            container,
            outcomes,
            vanished,
            page.next_link,
            page.delta_link,
            guard=fence,
            links=self._links(outcomes),  # in the page's transaction: one fewer
        )

    def _sort(
        self,
        items: Sequence[Item],
        known: dict[str, ItemState],
        moved_from: dict[str, ItemState],
    ) -> _Sorted:
        """What each item of the page needs, from the state's rows of it.

        An item the state holds in another container of the owner moved here: the target
        moves its copy when it can (`Capabilities.moves`). A target that cannot move (its
        `move` would only refuse) gets the item written afresh here, as its connector
        declares; the copy left in the old folder is the source's removal from the old
        container, settled as any removal (`deletions`: `mirror` removes it, `keep` keeps
        it). The item is never recorded as a failure for a move the target cannot make.
        `known` holds the unit's rows of the page's items, `moved_from` the owner's other
        units' rows of the others (none when the target cannot move: `PageStart.rows`).
        """
        work = _Sorted()
        for item in items:
            row = known.get(item.source_id)
            if row is not None and row.status in (DONE, SKIPPED, VANISHED):
                if row.version == item.version and row.status != VANISHED:
                    work.unchanged += 1
                elif row.status == SKIPPED:
                    work.writes.append((item, row))
                else:
                    work.updates.append((item, row))
            elif row is None and item.source_id in moved_from:
                work.moves.append((item, moved_from[item.source_id]))
            else:
                work.writes.append((item, row))
        return work

    async def retry(self, rows: Sequence[ItemState]) -> None:
        """Write again items marked failed, each looked up first (`retry-failed`)."""
        pending = [
            Pending(Item(r.source_id, r.version, r.meta), r.id, True, copy=r.ref) for r in rows
        ]
        outcomes = await self.writer.write_all(pending)
        self.store.apply_outcomes(
            self.unit_id, self.container, outcomes, guard=self.owner_pass.fence
        )

    def _links(self, outcomes: list[Outcome]) -> dict[str, str]:
        """Where the items written went, for the workloads that record it (`link_of`)."""
        link_of = self.workload.link_of
        links: dict[str, str] = {}
        if link_of is None:
            return links
        for outcome in outcomes:
            if outcome.status == DONE and outcome.ref is not None:
                link = link_of(self.container, outcome.item, outcome.ref)
                if link is not None and link[0]:
                    links[link[0]] = link[1]
        return links

    async def _update(self, item: Item, row: ItemState) -> Outcome:
        workload, session, container = self.workload, self.session, self.container
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
            payload = await self._attrs_payload(item, with_content)
            if ref is not None:
                ref = await retrying(
                    lambda: session.call(lambda s: s.update(ref, payload)),
                    self.options.item_attempts,
                    self.options.retry_pause,
                )
        except GoneAtSource as gone:
            return await remove_gone(
                session, self.options, self.ledger, container, item, row.id, row.ref, gone
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
            self.claims.forget()  # refs rewritten in the state: read them again
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

    async def _move(self, item: Item, row: ItemState) -> Outcome | None:
        """The item's copy moved here from its row's folder; None when the target has no
        copy there to move (the caller looks for it here, then writes it)."""
        session, folder = self.session, self.folder
        ref = row.ref
        assert ref is not None  # items_elsewhere only finds rows with a target ref
        try:
            try:
                moved = await retrying(
                    lambda: session.call(lambda s: s.move(ref, folder)),
                    self.options.item_attempts,
                    self.options.retry_pause,
                )
            except SkipItem:
                return None
            if row.version != item.version:
                payload = await self._attrs_payload(item)
                try:
                    moved = await session.call(lambda s: s.update(moved, payload))
                finally:
                    if payload.blob is not None:
                        payload.blob.discard()
        except (ItemError, Retriable) as exc:
            # The copy is gone or unreachable: write the item afresh on the next pass.
            self.ledger.item("move", "failed", self.container, item, ref=ref, reason=str(exc))
            return Outcome(item, FAILED, error=str(exc), row_id=row.id)
        self.ledger.item("move", "done", self.container, item, ref=moved)
        return Outcome(item, DONE, ref=moved, row_id=row.id)

    async def _attrs_payload(self, item: Item, with_content: bool = False) -> Payload:
        workload = self.workload
        if workload.attrs_mapper is not None and not with_content:
            return workload.attrs_mapper(item)
        return workload.mapper(item, await workload.source.fetch(self.container, item))


def _may_be_there(row: ItemState) -> bool:
    """Whether an earlier copy of the item may be on the target, to be looked up before
    it is written: an interrupted or failed write, or a copy `deletions = keep` left when
    the item went elsewhere (moved back since, it must not be written twice)."""
    return row.status in (STARTED, FAILED) or (row.status == DELETED and row.ref is not None)
