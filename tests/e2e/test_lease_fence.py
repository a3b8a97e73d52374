"""The lease fence, end to end: a worker whose owner's lease another process took records
nothing more of that owner, says so, and the owner ends exact once the lease is free.

What the fence guarantees (`Worker._fence`, `leases.holds`, `Store.mark_started` and
`Store.settle_page`): both page transactions read the lease first, in the transaction,
by the database's clock, and commit nothing unless this process holds the owner with a
quarter of a lease to spare. Once a steal has committed, no transaction of the robbed
worker marks an item of the owner `started` or settles a page of it: the owner's item
rows and its units' cursors stay as the steal found them. Target calls between two
transactions may reuse a check that passed less than an eighth of a lease ago (a second
at most), so the page in flight may still reach the target; its items stay `started`,
and the pass that takes the owner back looks each of them up before writing it.

The lease here lasts ten minutes, so the heartbeat renews it only every 150 s: within
the test only the fence can notice the steal (the heartbeat's failed renewal would
notice it too, later, and it is what a test with a short lease would see).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from harness import assert_same, environment, write_config
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_workers import poll, workers_of

from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.state import leases
from hirondelle.state.schema import (
    DONE,
    QUEUED,
    RUNNING,
    STARTED,
    ItemRow,
    Job,
    Lease,
    Unit,
    WorkerRow,
)
from hirondelle.state.store import Store, open_store
from hirondelle.tests.servers import DovecotServer

LEASE_SECONDS = 600
THIEF = "another run@another-machine#1"  # another machine: its process cannot be checked
LOSS = "this worker no longer holds it"  # the fence's report
RENEWAL = "lost its lease"  # the heartbeat's

Snapshot = tuple[list[tuple[int, str, str | None]], list[tuple[int, str, str | None, str | None]]]


def owner_rows(s: Session, owner: str) -> Snapshot:
    """What the state records of an owner's mail: each item's status and target copy, and
    each unit's status and cursors."""
    items = s.execute(
        select(ItemRow.id, ItemRow.status, ItemRow.target_ref)
        .where(ItemRow.workload == "mail", ItemRow.owner == owner)
        .order_by(ItemRow.id)
    )
    units = s.execute(
        select(Unit.id, Unit.status, Unit.next_link, Unit.delta_link)
        .where(Unit.workload == "mail", Unit.owner == owner)
        .order_by(Unit.id)
    )
    return (
        [(row_id, status, ref) for row_id, status, ref in items],
        [(row_id, status, next_link, delta) for row_id, status, next_link, delta in units],
    )


def summary(rows: Snapshot) -> str:
    items = Counter(status for _, status, _ in rows[0])
    units = Counter(status for _, status, _, _ in rows[1])
    return f"items {dict(items)}, units {dict(units)}"


def steal_a_page_in_flight(store: Store) -> tuple[Job, str, Snapshot] | None:
    """In one write transaction: a running job whose owner has a page marked `started`
    and not settled yet, held by a worker whose heartbeat renewed its leases already (the
    next renewal is 150 s away), gets its lease given to another holder for ten minutes.
    Returns the job, the robbed holder and what the state recorded of the owner at the
    steal; None when no such page is in flight at this instant."""
    with store.writing() as s, s.begin():
        for job in s.scalars(select(Job).where(Job.status == RUNNING, Job.workload == "mail")):
            in_flight = s.scalar(
                select(ItemRow.id)
                .where(ItemRow.owner == job.owner, ItemRow.status == STARTED)
                .limit(1)
            )
            lease = s.get(Lease, job.lease_key)
            if in_flight is None or lease is None or lease.holder != job.holder:
                continue
            worker = s.get(WorkerRow, lease.holder)
            if worker is None or worker.heartbeat_at <= worker.started_at:
                continue  # its first beat renews every lease it holds: not before it
            robbed = lease.holder
            lease.holder, lease.host, lease.pid, lease.pid_start = THIEF, "another-machine", 1, None
            lease.expires_at = leases.now(s) + LEASE_SECONDS
            s.expunge(job)
            return job, robbed, owner_rows(s, job.owner)
    return None


def test_a_worker_whose_lease_is_taken_records_nothing_more_of_its_owner(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    tenant = Tenant.generate(TenantSpec(seed=53, users=3, messages=100, large_messages=0))
    faults = Faults(slow_seconds=0.05)  # a page in flight lasts long enough to be caught
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        logins = {user.upn: dovecot.new_user() for user in tenant.users}
        config = write_config(
            tmp_path,
            sandbox,
            dovecot,
            logins,
            run_extra=f"workers = 2\nlease_seconds = {LEASE_SECONDS}",
        )
        config.write_text(
            config.read_text().replace("owner_concurrency = 4", "owner_concurrency = 1")
        )
        log = tmp_path / "run.log"
        with log.open("wb") as err:
            run = subprocess.Popen(
                [sys.executable, "-m", "hirondelle.cli", "-c", str(config), "run"],
                env={**os.environ, **environment(sandbox, dovecot)},
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        store: Store | None = None
        try:
            poll(lambda: len(workers_of(run)) == 2, "two worker processes")
            store = open_store(load_config(config).state_url)
            stolen: list[tuple[Job, str, Snapshot]] = []

            def steal() -> bool:
                assert run.poll() is None, "the run ended before a page could be caught"
                found = steal_a_page_in_flight(store)
                if found is not None:
                    stolen.append(found)
                return found is not None

            poll(steal, "a page of an owner in flight")
            job, robbed, at_steal = stolen[0]
            owner = job.owner
            assert any(status == STARTED for _, status, _ in at_steal[0])

            def settled_or_given_back() -> bool:
                with store.session() as s:
                    changed = owner_rows(s, owner) != at_steal
                    running = s.scalar(select(Job.status).where(Job.id == job.id)) == RUNNING
                return changed or not running or RENEWAL in log.read_text()

            # The fence answers at the robbed worker's next page transaction (its page in
            # flight's settling), which then gives the job back; the heartbeat would not
            # notice before 150 s.
            poll(settled_or_given_back, "the robbed worker to give its job back", 30)
            with store.session() as s:
                after = owner_rows(s, owner)
                assert after == at_steal, (
                    f"{robbed} recorded items of {owner} after its lease was taken: "
                    f"{summary(at_steal)} at the steal, {summary(after)} now"
                )
                given_back = s.get(Job, job.id)
                assert given_back is not None and given_back.status == QUEUED, given_back
            lines = [line for line in log.read_text().splitlines() if LOSS in line]
            assert len(lines) == 1 and owner in lines[0], log.read_text()[-3000:]

            # The lease runs out: a worker of the run claims the owner again and ends it,
            # looking up the items of the page that was in flight before writing them.
            with store.writing() as s, s.begin():
                lease = s.get(Lease, job.lease_key)
                assert lease is not None and lease.holder == THIEF
                lease.expires_at = leases.now(s)
            run.wait(timeout=120)
            assert run.returncode == 0, log.read_text()[-3000:]
            with store.session() as s:
                again = s.get(Job, job.id)
                assert again is not None and again.attempts == 2, again
                statuses = {status for _, status, _ in owner_rows(s, owner)[0]}
                assert statuses == {DONE}, statuses
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=30)
            if store is not None:
                store.engine.dispose()
        sandbox.set_faults(Faults())
        expected = sum(
            len(tenant.messages(u.id, f.id))
            for u in tenant.users
            for f in tenant.folders(u.id)
            if not f.hidden
        )
        assert assert_same(tenant, config, dovecot, logins) == expected
