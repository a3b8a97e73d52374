"""The engine: moves every workload's items from its source to its target, resumably.

It knows nothing about mail or files. An `Engine` holds what one process shares
between the owners it moves at once (the state, the target thread pool, the memory
gate, the audit log); each owner of each workload is one `OwnerPass`, which keeps
its own tally. A worker (`migrator.worker`) runs the owners the state hands it;
`run` and `retry_failed` here move every owner in this process, for tests and tools
that need no scheduling.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from ..state.store import Store
from .audit import AuditLog
from .errors import FatalError, OwnerFailed
from .ledger import Ledger, Tally
from .memory import MemoryGate
from .model import Owner
from .owner_pass import Fence, OwnerPass
from .selection import select_owners
from .session import Outage, OwnerSession
from .workload import Reporter, RunOptions, SilentReporter, Workload

log = logging.getLogger(__name__)
Mode = Literal["run", "sync"]

__all__ = ["Engine", "Mode", "OwnerSession", "Tally"]


class Engine:
    """What one process shares between the owners it moves at once."""

    def __init__(
        self,
        store: Store,
        workloads: list[Workload],
        options: RunOptions,
        audit: AuditLog,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.workloads = workloads
        self.options = options
        self.audit = audit
        self.reporter = reporter or SilentReporter()
        self.memory = MemoryGate(options.memory_bytes)
        self.pool = ThreadPoolExecutor(
            max_workers=max(4, options.owner_concurrency * max(2, options.target_sessions)),
            thread_name_prefix="target",
        )
        self.outages: dict[str, Outage] = {}

    def outage(self, workload: Workload) -> Outage:
        """The one view of `workload`'s target reachability that its owners here share."""
        if workload.name not in self.outages:
            self.outages[workload.name] = Outage(workload.name, self.options.target_wait)
        return self.outages[workload.name]

    def sessions(self, workload: Workload) -> int:
        """Target connections one owner of `workload` uses at once."""
        return 1 if workload.ordered else self.options.target_sessions

    def close(self) -> None:
        self.pool.shutdown(wait=False)

    # -- one owner ------------------------------------------------------------

    async def owner(
        self,
        workload: Workload,
        owner: Owner,
        mode: Mode,
        reporter: Reporter | None = None,
        fence: Fence | None = None,
    ) -> Tally:
        """Copy (`run`) or carry the changes of (`sync`) one owner; its tally."""
        return await self._pass(workload, owner, mode, reporter, fence)

    async def retry_owner(
        self,
        workload: Workload,
        owner: Owner,
        reporter: Reporter | None = None,
        fence: Fence | None = None,
    ) -> Tally:
        """Write again the owner's failed items, looking for an earlier copy first."""
        return await self._pass(workload, owner, "retry-failed", reporter, fence)

    async def _pass(
        self,
        workload: Workload,
        owner: Owner,
        mode: Mode | Literal["retry-failed"],
        reporter: Reporter | None,
        fence: Fence | None,
    ) -> Tally:
        """One pass over one owner; an owner that cannot go on fails alone, in its tally."""
        ledger = Ledger([workload.name], self.audit, reporter or self.reporter)
        one = OwnerPass(self, workload, owner, ledger, fence)
        try:
            await (one.retry_failed() if mode == "retry-failed" else one.run(mode))
        except OwnerFailed as exc:
            ledger.owner_failed(workload.name, owner.upn, str(exc))
        return ledger.tallies[workload.name]

    # -- every owner, in this process -------------------------------------------

    async def run(self, mode: Mode) -> dict[str, Tally]:
        """Copy (`run`) or carry changes (`sync`) for every workload and owner."""
        tallies = {w.name: Tally() for w in self.workloads}
        gate = asyncio.Semaphore(self.options.owner_concurrency)

        async def one(workload: Workload, owner: Owner) -> None:
            async with gate:
                tallies[workload.name].add(await self.owner(workload, owner, mode))

        try:
            async with asyncio.TaskGroup() as group:
                for workload in self.workloads:
                    for owner in select_owners(await workload.source.owners(), self.options):
                        group.create_task(one(workload, owner))
        except BaseExceptionGroup as group:
            raise unwrap(group) from None
        finally:
            self.close()
        return tallies

    async def retry_failed(self) -> dict[str, Tally]:
        """Write again every item marked failed, looking for an earlier copy first."""
        tallies = {w.name: Tally() for w in self.workloads}
        try:
            for workload in self.workloads:
                for upn in self.store.failed_owners(workload.name):
                    login = self.options.target_logins.get(upn.lower(), "")
                    owner = Owner(upn, "", "", login)
                    tallies[workload.name].add(await self.retry_owner(workload, owner))
        finally:
            self.close()
        return tallies


def unwrap(group: BaseExceptionGroup) -> BaseException:
    """The first fatal error of a task group (what the user must fix), else the group."""
    fatal = group.subgroup(FatalError)
    while fatal is not None:
        first = fatal.exceptions[0]
        if not isinstance(first, BaseExceptionGroup):
            return first
        fatal = first
    return group
