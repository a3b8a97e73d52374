"""How the state store reads and writes units in bulk: an owner's units made and read in
one go, a target folder claimed, a unit's columns set with a Core statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, Update, select, update
from sqlalchemy.orm import Session

from ..migrator.model import Container
from .records import UnitState, unit_state
from .schema import Unit

UNITS = cast(Table, Unit.__table__)  # typed FromClause; it is the Table
UnitKey = tuple[str, str, str]  # (workload, owner, container id)


def unit_update(unit_id: int, values: Mapping[str, Any]) -> Update:
    """An UPDATE of one unit's columns, as a Core statement: the ORM's bulk UPDATE (which
    synchronizes a session that holds no unit) cost more CPU than the write itself."""
    return update(UNITS).where(UNITS.c.id == unit_id).values(**values)


def units_of(s: Session, containers: Sequence[Container]) -> dict[UnitKey, UnitState]:
    """The units of `containers`, made on first sight, each with the container's path and
    counts (in `s`'s write transaction)."""
    rows: dict[UnitKey, Unit] = {}
    for workload, owner in {(c.workload, c.owner) for c in containers}:
        query = select(Unit).where(Unit.workload == workload, Unit.owner == owner)
        rows.update(((workload, owner, r.container_id), r) for r in s.scalars(query))
    keys = [(c.workload, c.owner, c.source_id) for c in containers]
    for key, container in zip(keys, containers, strict=True):
        row = rows.get(key)
        if row is None:
            row = rows[key] = Unit(workload=key[0], owner=key[1], container_id=key[2])
            s.add(row)
        row.path = container.display_path
        row.source_count = container.total_items
        row.source_bytes = container.size_bytes
    s.flush()
    return {key: unit_state(rows[key]) for key in keys}


def claim(connection: Connection, unit: UnitState, container: Container, folder: str) -> str | None:
    """Record `folder` as `unit`'s (its last error cleared) unless another unit of the owner
    has it: then that unit's path, and nothing is recorded (in a write transaction)."""
    others = (
        select(UNITS.c.path)
        .where(UNITS.c.workload == container.workload, UNITS.c.owner == container.owner)
        .where(UNITS.c.target_folder == folder, UNITS.c.id != unit.id)
        .limit(1)
    )
    other = connection.scalar(others)
    if other is None:
        connection.execute(unit_update(unit.id, {"target_folder": folder, "last_error": None}))
    return other
