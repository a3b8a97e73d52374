"""The state store: every read and write of the engine's progress goes through here.

One transaction per page: items are marked `started` before the target writes,
then their outcomes and the unit's cursor are committed together, so a cursor
never runs ahead of what the target holds. Transactions that write begin as
writers (`state.database.writer`), so several processes can share one SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..migrator.errors import FatalError
from ..migrator.model import Container, Item
from .database import open_engine, writer
from .migrate import upgrade
from .outcome_rows import apply_outcome
from .page_rows import PageStart, record_links, settle
from .records import (
    ITEM_COLUMNS,
    ItemState,
    Outcome,
    StatusCounts,
    UnitState,
    item_state,
)
from .schema import (
    DONE,
    FAILED,
    SKIPPED,
    VANISHED,
    ItemRow,
    Link,
    Run,
    StateIdentity,
    Unit,
    utcnow,
)
from .unit_rows import UnitKey, claim, units_of, update_unit

Guard = Callable[[Session], None]
"""Run first in a transaction that records writes; raises if they must not be recorded."""


class Store:
    """The engine's view of the state database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writers = sessionmaker(writer(engine), expire_on_commit=False)

    def session(self) -> Session:
        """A session for reading (and for writes that do not read first)."""
        return self._sessions()

    def writing(self) -> Session:
        """A session whose transaction writes: it holds the write lock from its start."""
        return self._writers()

    def identity(self) -> str:
        """This state's own id (see `StateIdentity`)."""
        with self.session() as s:
            return str(s.scalar(select(StateIdentity.id)))

    # -- runs -------------------------------------------------------------

    def start_run(self, command: str, options: dict[str, Any]) -> int:
        with self.writing() as s, s.begin():
            run = Run(command=command, options=options)
            s.add(run)
            s.flush()
            return run.id

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self.writing() as s, s.begin():
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, summary=summary, finished_at=utcnow())
            )

    def last_runs(self, limit: int = 10) -> list[Run]:
        with self.session() as s:
            return list(s.scalars(select(Run).order_by(Run.id.desc()).limit(limit)))

    # -- units ------------------------------------------------------------

    def unit_for(self, container: Container) -> UnitState:
        """The unit of `container`, created on first sight (as by `units_for`)."""
        units = self.units_for([container])
        return units[container.workload, container.owner, container.source_id]

    def units_for(self, containers: Sequence[Container]) -> dict[UnitKey, UnitState]:
        """The units of an owner's `containers` by (workload, owner, container id), made on
        first sight, each with its container's path and counts: one transaction for them
        all (`unit_rows.units_of`)."""
        if not containers:
            return {}
        with self.writing() as s, s.begin():
            return units_of(s.connection(), containers)

    def set_unit(self, unit_id: int, **values: Any) -> None:
        with self.writing() as s, s.begin():
            update_unit(s.connection(), unit_id, values)

    def claim_folder(self, unit: UnitState, container: Container, folder: str) -> str | None:
        """Record `folder` as the target folder of `unit` (clearing its last error), unless
        another unit of the owner was written there first: then that unit's path, and
        nothing is recorded. One transaction, where a read and a write took two."""
        if unit.target_folder == folder and unit.last_error is None:
            return None  # claimed by this unit before: no other one can have taken it since
        with self.writing() as s, s.begin():
            return claim(s.connection(), unit, container, folder)

    def target_folders(self, workload: str, owner: str) -> dict[str, str]:
        """Container id -> the target folder its unit was written to, for one owner of one
        workload (read by another workload that names those folders: inbox rules)."""
        with self.session() as s:
            rows = s.execute(
                select(Unit.container_id, Unit.target_folder).where(
                    Unit.workload == workload, Unit.owner == owner, Unit.target_folder.is_not(None)
                )
            )
            return {container: str(folder) for container, folder in rows}

    def units(self, workload: str | None = None) -> list[Unit]:
        with self.session() as s:
            query = select(Unit).order_by(Unit.owner, Unit.path)
            if workload:
                query = query.where(Unit.workload == workload)
            return list(s.scalars(query))

    # -- items ------------------------------------------------------------

    def items_of_unit(self, unit_id: int) -> list[ItemState]:
        with self.session() as s:
            rows = s.scalars(select(ItemRow).where(ItemRow.unit_id == unit_id))
            return [item_state(r) for r in rows]

    def items_by_ref(self, unit_id: int, batch: int = 2000) -> Iterator[ItemState]:
        """The unit's rows that name a target ref, in ascending ref order (as Python
        compares strings; SQLite's BINARY collation of UTF-8 gives it), streamed in
        batches of `batch`: memory stays flat whatever the unit's size (the database
        sorts, SQLite spilling to temporary files)."""
        ref = ItemRow.target_ref
        if self.engine.dialect.name == "postgresql":  # code point order, as Python sorts
            ref = ref.collate("C")  # type: ignore[assignment]  # a column expression where the attribute stood
        query = (
            select(*ITEM_COLUMNS)
            .where(ItemRow.unit_id == unit_id, ItemRow.target_ref.is_not(None))
            .order_by(ref, ItemRow.id)
            .execution_options(yield_per=batch)
        )
        with self.session() as s:
            for row in s.execute(query):
                yield item_state(row)

    def item(self, row_id: int) -> ItemState | None:
        with self.session() as s:
            row = s.get(ItemRow, row_id)
            return None if row is None else item_state(row)

    def items_by_source(self, unit_id: int, source_ids: Sequence[str]) -> dict[str, ItemState]:
        found: dict[str, ItemState] = {}
        with self.session() as s:
            for start in range(0, len(source_ids), 500):
                chunk = source_ids[start : start + 500]
                rows = s.execute(
                    select(*ITEM_COLUMNS).where(
                        ItemRow.unit_id == unit_id, ItemRow.source_id.in_(chunk)
                    )
                )
                found.update((r.source_id, item_state(r)) for r in rows)
        return found

    def settled_ids(self, unit_id: int) -> set[str]:
        """Source ids of the unit's items the target holds or that were settled (done,
        skipped or failed): what a complete listing of the container must name again."""
        with self.session() as s:
            rows = s.scalars(
                select(ItemRow.source_id).where(
                    ItemRow.unit_id == unit_id, ItemRow.status.in_((DONE, SKIPPED, FAILED))
                )
            )
            return set(rows)

    def items_elsewhere(
        self, workload: str, owner: str, unit_id: int, source_ids: Sequence[str]
    ) -> dict[str, ItemState]:
        """Rows of the same owner in other units that the target holds: the item moved
        between containers. A row without a target ref (skipped, never written) is no
        copy to move: the item is written afresh where it now is."""
        found: dict[str, ItemState] = {}
        with self.session() as s:
            for start in range(0, len(source_ids), 500):
                chunk = source_ids[start : start + 500]
                rows = s.scalars(
                    select(ItemRow).where(
                        ItemRow.workload == workload,
                        ItemRow.owner == owner,
                        ItemRow.unit_id != unit_id,
                        ItemRow.source_id.in_(chunk),
                        ItemRow.status.in_((DONE, VANISHED)),
                        ItemRow.target_ref.is_not(None),
                    )
                )
                found.update((r.source_id, item_state(r)) for r in rows)
        return found

    def unit_refs(self, unit_id: int) -> set[str]:
        with self.session() as s:
            refs = s.scalars(
                select(ItemRow.target_ref).where(
                    ItemRow.unit_id == unit_id, ItemRow.target_ref.is_not(None)
                )
            )
            return {r for r in refs if r}

    @contextmanager
    def page_start(
        self, unit_id: int, container: Container, guard: Guard | None = None
    ) -> Iterator[PageStart]:
        """A page's first transaction: its rows read and the items to write marked
        `started` (`PageStart`), committed on leaving the block, before any target write.

        `guard(session)` runs first in the transaction: it raises (and nothing is
        recorded) when this process no longer holds the owner.
        """
        with self.writing() as s, s.begin():
            if guard is not None:
                guard(s)
            yield PageStart(s.connection(), unit_id, container)

    def mark_started(
        self,
        unit_id: int,
        container: Container,
        items: Iterable[tuple[Item, int | None]],
        guard: Guard | None = None,
    ) -> dict[str, int]:
        """Record the items about to be written (one transaction); return their row ids
        (`guard` as for `page_start`)."""
        items = list(items)
        if not items:  # nothing to record: no transaction (the page's settling fences)
            return {}
        with self.page_start(unit_id, container, guard) as page:
            return page.mark_started(items)

    def settle_page(
        self,
        unit_id: int,
        container: Container,
        outcomes: Sequence[Outcome],
        vanished: Sequence[str],
        next_link: str | None,
        delta_link: str | None,
        guard: Guard | None = None,
        links: Mapping[str, str] | None = None,
    ) -> None:
        """Apply a page's outcomes and advance the unit's cursor in one transaction
        (`guard` as for `page_start`), with the `links` of the page's items (recorded as
        by `set_links`, under the container's workload)."""
        cursor: dict[str, Any] = {"next_link": next_link}
        if delta_link is not None:
            cursor.update(delta_link=delta_link, next_link=None, status=DONE)
        with self.writing() as s, s.begin():
            if guard is not None:
                guard(s)
            settle(s, unit_id, container, outcomes, vanished, cursor)
            if links:
                record_links(s.connection(), container.workload, links)

    def apply_outcomes(
        self,
        unit_id: int,
        container: Container,
        outcomes: Sequence[Outcome],
        guard: Guard | None = None,
    ) -> None:
        """Apply outcomes without touching the unit's cursor (retry-failed)."""
        with self.writing() as s, s.begin():
            if guard is not None:
                guard(s)
            for outcome in outcomes:
                apply_outcome(s, unit_id, container, outcome)

    def rebase_refs(self, unit_id: int, old_prefix: str, new_prefix: str) -> int:
        """A renamed or moved folder moved its subtree: rewrite the stored refs under it."""
        with self.writing() as s, s.begin():
            rows = s.scalars(
                select(ItemRow).where(
                    ItemRow.unit_id == unit_id, ItemRow.target_ref.startswith(old_prefix)
                )
            ).all()
            for row in rows:
                assert row.target_ref is not None
                row.target_ref = new_prefix + row.target_ref[len(old_prefix) :]
            return len(rows)

    def set_links(self, workload: str, links: Mapping[str, str]) -> None:
        """Record where source items went (drive item id -> migrated URL...); an upsert, so
        two processes recording the same link never collide (a page's go with its
        outcomes: `settle_page`)."""
        if not links:
            return
        with self.writing() as s, s.begin():
            record_links(s.connection(), workload, links)

    def all_links(self, workload: str) -> dict[str, str]:
        with self.session() as s:
            rows = s.scalars(select(Link).where(Link.workload == workload))
            return {r.source_id: r.target for r in rows}

    def links(self, workload: str, source_ids: Sequence[str]) -> dict[str, str]:
        with self.session() as s:
            rows = s.scalars(
                select(Link).where(Link.workload == workload, Link.source_id.in_(list(source_ids)))
            )
            return {r.source_id: r.target for r in rows}

    def vanished(self, workload: str, owner: str) -> list[ItemState]:
        with self.session() as s:
            rows = s.scalars(
                select(ItemRow).where(
                    ItemRow.workload == workload,
                    ItemRow.owner == owner,
                    ItemRow.status == VANISHED,
                )
            )
            return [item_state(r) for r in rows]

    def set_status(self, row_ids: Sequence[int], status: str, error: str | None = None) -> None:
        if not row_ids:
            return
        with self.writing() as s, s.begin():
            s.execute(
                update(ItemRow)
                .where(ItemRow.id.in_(list(row_ids)))
                .values(status=status, last_error=error, updated_at=utcnow())
            )

    def failed(
        self, workload: str | None = None, owner: str | None = None
    ) -> list[tuple[Unit, ItemState]]:
        with self.session() as s:
            query = select(Unit, ItemRow).join(Unit, Unit.id == ItemRow.unit_id)
            query = query.where(ItemRow.status == FAILED)
            if workload:
                query = query.where(ItemRow.workload == workload)
            if owner is not None:
                query = query.where(ItemRow.owner == owner)
            return [(u, item_state(r)) for u, r in s.execute(query.order_by(ItemRow.id)).all()]

    def failed_owners(self, workload: str) -> list[str]:
        """The owners of `workload` with items marked failed."""
        with self.session() as s:
            query = select(ItemRow.owner).where(
                ItemRow.workload == workload, ItemRow.status == FAILED
            )
            return sorted(set(s.scalars(query.distinct())))

    def counts(self, workload: str | None = None) -> StatusCounts:
        with self.session() as s:
            unit_q = select(Unit.status, func.count()).group_by(Unit.status)
            item_q = select(ItemRow.status, func.count()).group_by(ItemRow.status)
            bytes_q = select(func.coalesce(func.sum(ItemRow.size), 0)).where(ItemRow.status == DONE)
            if workload:
                unit_q = unit_q.where(Unit.workload == workload)
                item_q = item_q.where(ItemRow.workload == workload)
                bytes_q = bytes_q.where(ItemRow.workload == workload)
            units = {k: int(v) for k, v in s.execute(unit_q).all()}
            items = {k: int(v) for k, v in s.execute(item_q).all()}
            return StatusCounts(units, items, int(s.scalar(bytes_q) or 0))


class LinkMap(Mapping[str, str]):
    """A live, read-only view of one workload's links: a lookup reads the state, so links
    recorded earlier in the same run (files before chat) are already seen."""

    def __init__(self, store: Store, workload: str) -> None:
        self.store, self.workload = store, workload

    def __getitem__(self, key: str) -> str:
        found = self.store.links(self.workload, [key])
        if key not in found:
            raise KeyError(key)
        return found[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.store.links(self.workload, [key]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.store.all_links(self.workload))

    def __len__(self) -> int:
        return len(self.store.all_links(self.workload))


def open_store(url: str) -> Store:
    """Open (creating or upgrading) the state database at an SQLAlchemy URL."""
    engine = open_engine(url)
    try:
        upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        where = engine.url.render_as_string(hide_password=True)
        detail = " ".join(str(exc.orig).split())
        raise FatalError(f"cannot use the state database {where}: {detail}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)
