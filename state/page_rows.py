"""The statements of a page's two transactions, as Core statements built once.

A page is read and marked `started` in one write transaction (`PageStart`), then settled
in another (`settle`): the fence, the rows' lookup and the marks share the first, the
outcomes, the removals and the cursor the second. Statements run on the transaction's
connection, not through the ORM session, and are built once per shape and cached (the
ORM's machinery per statement cost more CPU than the statements themselves, in the mail
benchmark's profile, where pages are small: a folder of a few dozen messages is a page).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any, cast

from sqlalchemy import Connection, Insert, Select, Table, Update, bindparam, func, select
from sqlalchemy.orm import Session

from ..migrator.model import Container, Item
from .database import upsert_insert
from .outcome_rows import apply_outcome, existing_rows
from .records import ITEM_COLUMNS, ItemState, Outcome, item_state
from .schema import DONE, STARTED, VANISHED, ItemRow, Link, utcnow
from .unit_rows import update_unit

ITEMS = cast(Table, ItemRow.__table__)  # typed FromClause; it is the Table
CHUNK = 500  # ids per IN (...): SQLite's bound-parameter limit stays far away


@functools.cache
def _by_owner() -> Select[Any]:
    """Rows of an owner's items by source id, in every unit of the owner (the index on
    workload, owner and source id): the page's own unit's rows and, when the target can
    move copies, those another container holds, read at once."""
    return select(*ITEM_COLUMNS).where(
        ITEMS.c.workload == bindparam("workload"),
        ITEMS.c.owner == bindparam("owner"),
        ITEMS.c.source_id.in_(bindparam("ids", expanding=True)),
    )


@functools.cache
def _restart() -> Update:
    return (
        ITEMS.update()
        .where(ITEMS.c.id == bindparam("row_id"))
        .values(
            status=STARTED,
            version=bindparam("new_version"),
            meta=bindparam("new_meta"),
            attempts=func.coalesce(ITEMS.c.attempts, 0) + 1,
        )
    )


@functools.cache
def _insert_started() -> Insert:
    return ITEMS.insert().returning(ITEMS.c.id, ITEMS.c.source_id)


@functools.cache
def _update_columns(columns: tuple[str, ...]) -> Update:
    """An UPDATE of `columns` of one row by id, each from a `new_<column>` parameter."""
    return (
        ITEMS.update()
        .where(ITEMS.c.id == bindparam("row_id"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )


@functools.cache
def _vanish() -> Update:
    return (
        ITEMS.update()
        .where(ITEMS.c.unit_id == bindparam("unit"))
        .where(ITEMS.c.source_id.in_(bindparam("ids", expanding=True)))
        .values(status=VANISHED)
    )


def _updated_all(connection: Connection, statement: Update, rows: list[dict[str, Any]]) -> bool:
    """Run `statement` once per row (an executemany); whether each row matched one row
    (False when the driver cannot tell: the caller then checks which rows exist)."""
    result = connection.execute(statement, rows)
    if not connection.dialect.supports_sane_multi_rowcount:
        return False
    return bool(result.rowcount == len(rows))


class PageStart:
    """A page's first transaction: its items' rows read, then those to write marked
    `started` (committed by `Store.page_start` before any target write)."""

    def __init__(self, connection: Connection, unit_id: int, container: Container) -> None:
        self.connection, self.unit_id, self.container = connection, unit_id, container
        self._read: set[int | None] = set()  # rows read here: they exist until the commit

    def rows(
        self, source_ids: Sequence[str], elsewhere: bool
    ) -> tuple[dict[str, ItemState], dict[str, ItemState]]:
        """The unit's rows of `source_ids`; and, if `elsewhere`, for those it has none,
        rows of the owner's other units that the target holds (as `Store.items_elsewhere`)."""
        container = self.container
        here: dict[str, ItemState] = {}
        there: dict[str, ItemState] = {}
        for start in range(0, len(source_ids), CHUNK):
            chunk = list(source_ids[start : start + CHUNK])
            found = self.connection.execute(
                _by_owner(),
                {"workload": container.workload, "owner": container.owner, "ids": chunk},
            )
            for row in found:
                if row.unit_id == self.unit_id:
                    here[row.source_id] = item_state(row)
                elif elsewhere and row.status in (DONE, VANISHED) and row.target_ref is not None:
                    there[row.source_id] = item_state(row)
        self._read.update(row.id for row in here.values())
        for source_id in here:
            there.pop(source_id, None)
        return here, there

    def mark_started(self, items: Iterable[tuple[Item, int | None]]) -> dict[str, int]:
        """Record the items about to be written; their row ids (as `Store.mark_started`)."""
        return mark(self.connection, self.unit_id, self.container, list(items), self._read)


def mark(
    connection: Connection,
    unit_id: int,
    container: Container,
    items: list[tuple[Item, int | None]],
    known: Set[int | None] = frozenset(),
) -> dict[str, int]:
    """Mark `items` started on their rows (`known` rows exist: read in this transaction),
    else on new rows; their row ids by source id."""
    ids: dict[str, int] = {}
    again = [(item, row_id) for item, row_id in items if row_id is not None]
    if again:
        rows = [
            {"row_id": row_id, "new_version": item.version, "new_meta": item.meta}
            for item, row_id in again
        ]
        if all(row_id in known for _, row_id in again):
            connection.execute(_restart(), rows)
        elif not _updated_all(connection, _restart(), rows):
            present = existing_rows(connection, [row_id for _, row_id in again])
            again = [(item, row_id) for item, row_id in again if row_id in present]
        ids.update((item.source_id, row_id) for item, row_id in again if row_id is not None)
    new = [item for item, _ in items if item.source_id not in ids]
    if new:
        # Multi-row INSERTs for the page (SQLAlchemy's "insertmanyvalues"); the ids come
        # back in no set order, so by source id, unique in a unit.
        created = connection.execute(
            _insert_started(),
            [
                {
                    "unit_id": unit_id,
                    "workload": container.workload,
                    "owner": container.owner,
                    "source_id": item.source_id,
                    "version": item.version,
                    "meta": item.meta,
                    "status": STARTED,
                    "attempts": 1,
                }
                for item in new
            ],
        )
        ids.update((source_id, row_id) for row_id, source_id in created)
    return {item.source_id: ids[item.source_id] for item, _ in items}


def settle(
    s: Session,
    unit_id: int,
    container: Container,
    outcomes: Sequence[Outcome],
    vanished: Sequence[str],
    cursor: dict[str, Any],
) -> None:
    """Apply a page's outcomes, its removals and the unit's new `cursor` values (in `s`'s
    write transaction). Outcomes on rows that exist are written in bulk; rows are never
    deleted, so that is all of them but for a state replaced under a run, whose outcomes
    are recorded one by one (`apply_outcome`), as when they name no row."""
    connection = s.connection()
    on_rows = [o for o in outcomes if o.row_id is not None]
    groups = _outcome_groups(unit_id, on_rows)
    matched = [_updated_all(connection, _update_columns(c), r) for c, r in groups.items()]
    if not all(matched):  # every group ran: only the rows that exist were written
        present = existing_rows(connection, [o.row_id for o in on_rows])
        on_rows = [o for o in on_rows if o.row_id in present]
    recorded = {id(o) for o in on_rows}
    for outcome in outcomes:
        if id(outcome) not in recorded:
            apply_outcome(s, unit_id, container, outcome)
    for start in range(0, len(vanished), CHUNK):
        chunk = list(vanished[start : start + CHUNK])
        connection.execute(_vanish(), {"unit": unit_id, "ids": chunk})
    update_unit(connection, unit_id, cursor)


def record_links(connection: Connection, workload: str, links: Mapping[str, str]) -> None:
    """Upsert `links` (source id -> target) of `workload`: one statement executed with the
    rows as its parameters (an executemany), compiled once and cached, where a multi-row
    VALUES of a page's links was compiled anew for every page (the files benchmark's
    profile)."""
    rows = [{"workload": workload, "source_id": k, "target": v} for k, v in links.items()]
    statement = _LINK_UPSERTS.get(connection.dialect.name)
    if statement is None:
        insert = upsert_insert(connection.engine)(Link.__table__)
        statement = _LINK_UPSERTS[connection.dialect.name] = insert.on_conflict_do_update(
            index_elements=["workload", "source_id"],
            set_={"target": insert.excluded.target},
        )
    connection.execute(statement, rows)


_LINK_UPSERTS: dict[str, Insert] = {}  # by dialect name


def _outcome_groups(
    unit_id: int, outcomes: Sequence[Outcome]
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """The rows' new values (`new_<column>`), grouped by the columns they set: a value the
    outcome lacks (no ref, no size) leaves the row's as it was (see `apply_outcome`)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    now = utcnow()
    for outcome in outcomes:
        row: dict[str, Any] = {
            "row_id": outcome.row_id,
            "new_unit_id": unit_id,
            "new_status": outcome.status,
            "new_version": outcome.item.version,
            "new_meta": outcome.item.meta,
            "new_last_error": outcome.error,
            "new_updated_at": now,
        }
        if outcome.ref is not None:
            row["new_target_folder"], row["new_target_ref"] = outcome.ref.folder, outcome.ref.ref
        if outcome.fingerprint is not None:
            row["new_fingerprint"] = outcome.fingerprint
        if outcome.size is not None:
            row["new_size"] = outcome.size
        if outcome.checksum is not None:
            row["new_checksum"] = outcome.checksum
        groups.setdefault(tuple(row), []).append(row)
    return {
        tuple(name.removeprefix("new_") for name in key[1:]): rows for key, rows in groups.items()
    }
