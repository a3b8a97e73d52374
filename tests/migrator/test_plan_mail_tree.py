"""The mail plan walks each mailbox's folder tree once: the visible folders give the rows,
the hidden ones (listed with `includeHiddenFolders`,
https://learn.microsoft.com/en-us/graph/api/user-list-mailfolders) a finding each."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from hirondelle.migrator.model import Container, Owner
from hirondelle.workloads.mail_plan import MailPlanner

OWNER = Owner("ada@contoso.test", "id-ada")
INBOX = Container("mail", OWNER.upn, "f1", ("Inbox",), "inbox", total_items=3)


class TreeSource:
    """A mail source that counts its walks of the tree."""

    def __init__(self) -> None:
        self.walks = 0

    async def folder_tree(self, owner: Owner) -> tuple[list[Container], list[str]]:
        self.walks += 1
        return [INBOX], ["Sync Issues"]

    async def containers(self, owner: Owner) -> list[Container]:
        return (await self.folder_tree(owner))[0]

    async def hidden_folders(self, owner: Owner) -> list[str]:
        return (await self.folder_tree(owner))[1]


def test_one_walk_gives_the_rows_and_the_hidden_folders() -> None:
    source = TreeSource()
    target = SimpleNamespace(capabilities=SimpleNamespace(max_item_bytes=None))
    planner = MailPlanner(source, target, 16.0)  # type: ignore[arg-type]  # stand-ins for the planner's source and target

    async def plan() -> tuple[list[Container], list[str]]:
        containers = await planner.containers(OWNER)
        found = await planner.findings(OWNER, containers, deep=False)
        return containers, [f.container for f in found if f.kind == "hidden-folder"]

    assert asyncio.run(plan()) == ([INBOX], ["Sync Issues"])
    assert source.walks == 1
    # without a walk kept for it, the findings read the hidden folders themselves
    found = asyncio.run(planner.findings(OWNER, [INBOX], deep=False))
    assert [f.container for f in found if f.kind == "hidden-folder"] == ["Sync Issues"]
    assert source.walks == 2
