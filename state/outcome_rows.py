"""How a page's outcomes are written onto the state's item rows: in bulk onto rows known to
exist, else one by one (looked up by id, then by source id, else a new row)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..migrator.model import Container
from .records import Outcome
from .schema import ItemRow


def apply_outcome(
    s: Session,
    unit_id: int,
    container: Container,
    outcome: Outcome,
) -> None:
    """Record one outcome on its row: looked up by id, else by source id, else a new
    row (`update_rows` records a page's outcomes on rows known to exist)."""
    row = None
    if outcome.row_id is not None:
        row = s.get(ItemRow, outcome.row_id)
    if row is None:
        row = s.scalar(
            select(ItemRow).where(
                ItemRow.unit_id == unit_id, ItemRow.source_id == outcome.item.source_id
            )
        )
    if row is None:
        row = ItemRow(
            workload=container.workload,
            owner=container.owner,
            source_id=outcome.item.source_id,
            attempts=0,
        )
        s.add(row)
    row.unit_id = unit_id
    row.status = outcome.status
    row.version = outcome.item.version
    row.meta = dict(outcome.item.meta)
    row.last_error = outcome.error
    if outcome.ref is not None:
        row.target_folder, row.target_ref = outcome.ref.folder, outcome.ref.ref
    for name in ("fingerprint", "size", "checksum"):
        value = getattr(outcome, name)
        if value is not None:
            setattr(row, name, value)


def existing_rows(s: Session, row_ids: Sequence[int | None]) -> set[int | None]:
    """Which of `row_ids` are rows of the state (their ids only, a query per 500)."""
    wanted = [i for i in row_ids if i is not None]
    found: set[int | None] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(s.scalars(select(ItemRow.id).where(ItemRow.id.in_(chunk))))
    return found


def update_rows(s: Session, unit_id: int, outcomes: Sequence[Outcome]) -> None:
    """Record outcomes on their existing rows with one UPDATE per set of columns (an
    executemany): what `apply_outcome` does for one row, without loading the rows as
    ORM objects, which cost more CPU than the statements (the mail benchmark's profile).
    A value the outcome lacks (no ref, no size) leaves the row's as it was."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        values: dict[str, Any] = {
            "unit_id": unit_id,
            "status": outcome.status,
            "version": outcome.item.version,
            "meta": outcome.item.meta,
            "last_error": outcome.error,
        }
        if outcome.ref is not None:
            values["target_folder"], values["target_ref"] = outcome.ref.folder, outcome.ref.ref
        for name in ("fingerprint", "size", "checksum"):
            value = getattr(outcome, name)
            if value is not None:
                values[name] = value
        groups.setdefault(tuple(values), []).append(
            {"row_id": outcome.row_id, **{f"new_{name}": v for name, v in values.items()}}
        )
    table = ItemRow.__table__
    for columns, rows in groups.items():
        statement = (
            update(table)  # type: ignore[arg-type]  # __table__ is typed FromClause; it is the Table
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(f"new_{name}") for name in columns})
        )
        s.execute(statement, rows)
