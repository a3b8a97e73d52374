"""The chat and files planners count a container by listing it once, and take the
estimate and the findings from that listing until the plan forgets the container."""

from __future__ import annotations

import asyncio

from hirondelle.migrator.model import Container, Item, Owner
from hirondelle.migrator.plan import Finding
from hirondelle.workloads.chat_plan import ChatPlanner

OWNER = Owner("team-1", "team-1", "Chantiers")
GENERAL = Container("chat", OWNER.upn, "c1", ("Chantiers", "Général"), None)
POSTS = [
    Item("1", "v", {"rootId": "1", "fromName": "Ada"}),
    Item("1/2", "v", {"rootId": "1", "fromName": "Lin"}),
    Item("3", "v", {"rootId": "3", "fromName": "Ada", "deleted": True}),
]


class ListingSource:
    """A source that counts the listings it is asked for."""

    def __init__(self) -> None:
        self.listings = 0

    async def listing(self, container: Container) -> list[Item]:
        self.listings += 1
        return POSTS


def test_one_listing_gives_the_count_the_estimate_and_the_findings() -> None:
    source = ListingSource()
    planner = ChatPlanner(source, 4.0)  # type: ignore[arg-type]  # a source that only lists

    async def plan() -> tuple[int, int, list[Finding]]:
        count = await planner.count(GENERAL)
        requests = planner.requests(GENERAL)
        return count, requests, await planner.findings(OWNER, [GENERAL], deep=False)

    count, requests, found = asyncio.run(plan())
    assert (count, requests, source.listings) == (3, 4, 1)  # 2 roots: 0 pages + 2 + 2
    assert [(f.kind, f.container) for f in found] == [
        ("channel", "Chantiers/Général"),
        ("deleted", "Chantiers/Général"),
    ]
    assert found[0].detail == "2 posts, 1 replies, 2 authors (Ada, Lin)"
    planner.forget(GENERAL)
    assert planner.requests(GENERAL) == 2  # nothing kept: no roots known
    assert asyncio.run(planner.count(GENERAL)) == 3 and source.listings == 2
