"""How the state store reads and writes units in bulk: an owner's units made and read in
one go, a target folder claimed, a unit's columns set with a Core statement."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    Connection,
    FromClause,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    insert,
    select,
    update,
)

from ..migrator.model import Container
from .records import UnitState, unit_state
from .schema import Unit

UNITS = cast(Table, Unit.__table__)  # typed FromClause; it is the Table
UnitKey = tuple[str, str, str]  # (workload, owner, container id)


def update_unit(connection: Connection, unit_id: int, values: Mapping[str, Any]) -> None:
    """Set one unit's columns with a Core statement built once per set of columns: the
    ORM's bulk UPDATE (which synchronizes a session that holds no unit) cost more CPU
    than the write itself, and so did building the statement anew for every page."""
    parameters = {f"b_{name}": value for name, value in values.items()}
    connection.execute(_unit_columns(tuple(values)), {"b_id": unit_id, **parameters})


@functools.cache
def _unit_columns(columns: tuple[str, ...]) -> Update:
    return (
        update(UNITS)
        .where(UNITS.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )


def units_of(connection: Connection, containers: Sequence[Container]) -> dict[UnitKey, UnitState]:
    """The units of `containers`, made on first sight, each with the container's path and
    counts (in a write transaction): the owner's units read in one query, the new ones
    inserted and the changed ones updated each in one statement (an executemany), where
    the ORM's flush sent one INSERT per new unit."""
    listed = {(c.workload, c.owner, c.source_id): c for c in containers}  # the last wins
    rows: dict[UnitKey, Any] = {}
    for workload, owner in {(c.workload, c.owner) for c in containers}:
        found = connection.execute(_of_owner(), {"b_workload": workload, "b_owner": owner})
        rows.update(((workload, owner, r.container_id), r) for r in found)
    changed = [
        {"b_id": rows[key].id, **_listed_values(container)}
        for key, container in listed.items()
        if key in rows
        and (rows[key].path, rows[key].source_count, rows[key].source_bytes)
        != (container.display_path, container.total_items, container.size_bytes)
    ]
    if changed:
        connection.execute(_relist(), changed)
    new = [key for key in listed if key not in rows]
    states = {key: unit_state(row) for key, row in rows.items()}
    if new:
        made = connection.execute(
            insert(UNITS).returning(*_STATE, UNITS.c.workload, UNITS.c.owner, UNITS.c.container_id),
            [
                {"workload": w, "owner": o, "container_id": c}
                | {
                    name.removeprefix("b_"): v
                    for name, v in _listed_values(listed[w, o, c]).items()
                }
                for w, o, c in new
            ],
        )
        states.update(((r.workload, r.owner, r.container_id), unit_state(r)) for r in made)
    return {
        (c.workload, c.owner, c.source_id): states[c.workload, c.owner, c.source_id]
        for c in containers
    }


_STATE = (
    UNITS.c.id,
    UNITS.c.status,
    UNITS.c.next_link,
    UNITS.c.delta_link,
    UNITS.c.target_folder,
    UNITS.c.last_error,
)


def _listed_values(container: Container) -> dict[str, Any]:
    return {
        "b_path": container.display_path,
        "b_source_count": container.total_items,
        "b_source_bytes": container.size_bytes,
    }


@functools.cache
def _of_owner() -> Select[Any]:
    listed = (UNITS.c.container_id, UNITS.c.path, UNITS.c.source_count, UNITS.c.source_bytes)
    return select(*_STATE, *listed).where(
        UNITS.c.workload == bindparam("b_workload"), UNITS.c.owner == bindparam("b_owner")
    )


@functools.cache
def _relist() -> Update:
    return (
        update(UNITS)
        .where(UNITS.c.id == bindparam("b_id"))
        .values(
            path=bindparam("b_path"),
            source_count=bindparam("b_source_count"),
            source_bytes=bindparam("b_source_bytes"),
        )
    )


def claim(connection: Connection, unit: UnitState, container: Container, folder: str) -> str | None:
    """Record `folder` as `unit`'s (its last error cleared) unless another unit of the owner
    has it: then that unit's path, and nothing is recorded (in a write transaction). One
    UPDATE conditioned on no other unit having the folder, then a read only when it was
    taken, where a read came before every write."""
    values = {
        "b_unit": unit.id,
        "b_workload": container.workload,
        "b_owner": container.owner,
        "b_folder": folder,
    }
    if connection.execute(_claim(), values).rowcount:
        return None
    other = connection.scalar(_taken(UNITS), values)
    return None if other is None else str(other)


@functools.cache
def _claim() -> Update:
    other = UNITS.alias("other")
    return (
        update(UNITS)
        .where(UNITS.c.id == bindparam("b_unit"), ~exists(_taken(other)))
        .values(target_folder=bindparam("b_folder"), last_error=None)
    )


def _taken(units: FromClause) -> Select[Any]:
    """The path of another unit of the owner whose target folder is `folder`."""
    return (
        select(units.c.path)
        .where(units.c.workload == bindparam("b_workload"), units.c.owner == bindparam("b_owner"))
        .where(units.c.target_folder == bindparam("b_folder"), units.c.id != bindparam("b_unit"))
        .limit(1)
    )
