"""What the state store hands the engine: a unit's and an item's state, a page's outcomes
and the status counts, as plain values read from (or to be written to) the state's rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row

from ..migrator.model import Item, TargetRef
from .schema import ItemRow, Unit


@dataclass(frozen=True, slots=True)
class UnitState:
    id: int
    status: str
    next_link: str | None
    delta_link: str | None
    target_folder: str | None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ItemState:
    id: int
    unit_id: int
    source_id: str
    version: str
    status: str
    target_folder: str | None
    target_ref: str | None
    fingerprint: str | None
    size: int | None
    meta: dict[str, Any]
    last_error: str | None = None
    checksum: str | None = None  # the digest recorded when it was written ("name:value")

    @property
    def ref(self) -> TargetRef | None:
        if self.target_folder is None or self.target_ref is None:
            return None
        return TargetRef(self.target_folder, self.target_ref)


@dataclass(slots=True)
class Outcome:
    """What happened to one item during a page; applied in the page's transaction."""

    item: Item
    status: str
    ref: TargetRef | None = None
    fingerprint: str | None = None
    size: int | None = None
    checksum: str | None = None
    error: str | None = None
    row_id: int | None = None  # an existing row (possibly in another unit: a move)


@dataclass(frozen=True, slots=True)
class StatusCounts:
    units: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    bytes_done: int = 0


def item_state(row: ItemRow | Row[Any]) -> ItemState:
    """An `ItemState` from an ORM row or, for reads in bulk, a row of `ITEM_COLUMNS`."""
    return ItemState(
        id=row.id,
        unit_id=row.unit_id,
        source_id=row.source_id,
        version=row.version,
        status=row.status,
        target_folder=row.target_folder,
        target_ref=row.target_ref,
        fingerprint=row.fingerprint,
        size=row.size,
        meta=dict(row.meta or {}),
        last_error=row.last_error,
        checksum=row.checksum,
    )


ITEM_COLUMNS = (
    ItemRow.id,
    ItemRow.unit_id,
    ItemRow.source_id,
    ItemRow.version,
    ItemRow.status,
    ItemRow.target_folder,
    ItemRow.target_ref,
    ItemRow.fingerprint,
    ItemRow.size,
    ItemRow.meta,
    ItemRow.last_error,
    ItemRow.checksum,
)


def unit_state(row: Unit | Row[Any]) -> UnitState:
    """A `UnitState` from an ORM row or a Core row with the same columns."""
    return UnitState(
        row.id, row.status, row.next_link, row.delta_link, row.target_folder, row.last_error
    )
