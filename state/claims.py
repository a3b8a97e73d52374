"""Claims on containers that several owners list (see `schema.Claim`).

`claim` inserts a row per container that has none (an insert that ignores a conflict, so
two processes claiming at once both get the one winner) and answers who holds each. `move`
hands a container over only if the holder is still the one the caller saw (an update
conditioned on the old owner), so two processes moving it at once agree too.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from .database import upsert_insert
from .schema import Claim
from .store import Store


class StoreClaims:
    """Claims kept in the state database: shared by every process of the run."""

    def __init__(self, store: Store, workload: str) -> None:
        self.store, self.workload = store, workload

    def claim(self, container_ids: Sequence[str], owner: str) -> dict[str, str]:
        """Claim the containers for `owner` where nobody holds them; container -> holder."""
        if not container_ids:
            return {}
        engine = self.store.engine
        insert = upsert_insert(engine)
        rows = [
            {"workload": self.workload, "container_id": cid, "owner": owner}
            for cid in sorted(set(container_ids))  # one order for all: no deadlock
        ]
        held: dict[str, str] = {}
        with self.store.writing() as s, s.begin():
            for start in range(0, len(rows), 500):
                part = rows[start : start + 500]
                s.execute(
                    insert(Claim)
                    .values(part)
                    .on_conflict_do_nothing(index_elements=[Claim.workload, Claim.container_id])
                )
                found = s.execute(
                    select(Claim.container_id, Claim.owner).where(
                        Claim.workload == self.workload,
                        Claim.container_id.in_([r["container_id"] for r in part]),
                    )
                )
                held.update((str(cid), str(who)) for cid, who in found)
        return held

    def held(self, container_ids: Sequence[str]) -> dict[str, str]:
        """Who holds those of the containers someone holds; nothing is claimed."""
        if not container_ids:
            return {}
        with self.store.session() as s:
            found = s.execute(
                select(Claim.container_id, Claim.owner).where(
                    Claim.workload == self.workload,
                    Claim.container_id.in_(list(container_ids)),
                )
            )
            return {str(cid): str(who) for cid, who in found}

    def move(self, container_id: str, old: str, new: str) -> str | None:
        """Give the container to `new` if `old` still holds it; who holds it afterwards."""
        where = (Claim.workload == self.workload, Claim.container_id == container_id)
        with self.store.writing() as s, s.begin():
            s.execute(update(Claim).where(*where, Claim.owner == old).values(owner=new))
            holder = s.execute(select(Claim.owner).where(*where)).scalar_one_or_none()
        return None if holder is None else str(holder)
