"""The removal of the copy of an item gone at the source in substance (`GoneAtSource`).

One helper for both ways such an item reaches the engine: rewritten (the copy its row
names was written earlier) and written again (its row failed, when a removal was refused
once, or was interrupted): either way the copy goes, and only then is the item skipped.
"""

from __future__ import annotations

from ..state.records import Outcome
from ..state.schema import FAILED, SKIPPED
from .errors import GoneAtSource, ItemError, Retriable
from .ledger import Ledger
from .model import Container, Item, TargetRef
from .session import OwnerSession, retrying
from .workload import RunOptions


async def remove_gone(
    session: OwnerSession,
    options: RunOptions,
    ledger: Ledger,
    container: Container,
    item: Item,
    row_id: int,
    ref: TargetRef | None,
    gone: GoneAtSource,
) -> Outcome:
    """Remove `ref` (the item's copy, if any) and record the item skipped with the reason;
    a removal the target refuses is a failure, so that the next pass (or `retry-failed`)
    comes back here with the same ref."""
    if ref is not None:
        try:
            await retrying(
                lambda: session.call(lambda s: s.remove(ref)),
                options.item_attempts,
                options.retry_pause,
            )
        except (ItemError, Retriable) as exc:
            ledger.item("remove", FAILED, container, item, ref=ref, reason=str(exc))
            return Outcome(item, FAILED, error=str(exc), row_id=row_id)
    ledger.item("remove", SKIPPED, container, item, ref=ref, reason=str(gone))
    return Outcome(item, SKIPPED, error=str(gone), row_id=row_id)
