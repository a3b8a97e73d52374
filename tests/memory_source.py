"""The in-memory source the engine tests give a workload: the owner and the containers it
holds, no listing and nothing to close. Each test's source adds its own `changes` and
`fetch` (what the test is about)."""

from __future__ import annotations

from collections.abc import Sequence

from hirondelle.migrator.model import Container, Item, Owner

ALICE = Owner("alice@contoso.test", "u1", "Alice")


class MemorySource:
    """One owner (`owner`) holding `held`; subclasses write `changes` and `fetch`."""

    owner: Owner = ALICE
    held: Sequence[Container] = ()

    async def owners(self) -> list[Owner]:
        return [self.owner]

    async def containers(self, owner: Owner) -> list[Container]:
        return list(self.held)

    async def listing(self, container: Container) -> list[Item]:
        return []

    async def aclose(self) -> None:
        return None
