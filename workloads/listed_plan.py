"""What the chat and files planners share: each container counted by listing it.

Graph gives neither a cheap count of a channel's messages nor of a drive's items, so
these planners read each container's listing once and keep it for the estimate and the
findings, until the plan forgets the container.
"""

from __future__ import annotations

from ..migrator.model import Container, Item, Owner
from ..migrator.plan import Counted, Finding
from ..migrator.protocols import Source


class ListedPlanner:
    counted: Counted = "listing"

    def __init__(self, source: Source) -> None:
        self.source = source
        self._listings: dict[str, list[Item]] = {}

    async def _listing(self, container: Container) -> list[Item]:
        if container.source_id not in self._listings:
            self._listings[container.source_id] = await self.source.listing(container)
        return self._listings[container.source_id]

    def _listed(self, container: Container) -> list[Item]:
        """The container's listing if it was read, else nothing."""
        return self._listings.get(container.source_id, [])

    async def count(self, container: Container) -> int:
        return len(await self._listing(container))

    def forget(self, container: Container) -> None:
        self._listings.pop(container.source_id, None)

    async def findings(
        self, owner: Owner, containers: list[Container], deep: bool
    ) -> list[Finding]:
        """The same in both tiers: they come from the listing the counts need."""
        found: list[Finding] = []
        for container in containers:
            found += self._findings(owner, container, await self._listing(container))
        return found

    def _findings(self, owner: Owner, container: Container, items: list[Item]) -> list[Finding]:
        """What the listing of one container tells the plan."""
        raise NotImplementedError
