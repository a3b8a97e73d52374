"""How an outcome is written onto the state's item rows one by one (looked up by id, then by
source id, else a new row), where a page's go in bulk onto rows that exist (`page_rows`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select
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
    row (`page_rows.settle` records a page's outcomes on rows that exist in bulk)."""
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


def existing_rows(s: Session | Connection, row_ids: Sequence[int | None]) -> set[int | None]:
    """Which of `row_ids` are rows of the state (their ids only, a query per 500)."""
    wanted = [i for i in row_ids if i is not None]
    found: set[int | None] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(s.scalars(select(ItemRow.id).where(ItemRow.id.in_(chunk))))
    return found
