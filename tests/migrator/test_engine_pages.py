"""The engine on a hand-made source and the real archive target: page-level rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from hirondelle.connectors.archive_files import FilesArchiveTarget
from hirondelle.mappings.files import attrs_only, content_changed, map_drive_item
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.model import Container, Item, Owner, Page
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.store import open_store

OWNER = Owner("alice@contoso.test", "u1", "Alice")
DRIVE = Container("files", OWNER.upn, "d1", ("OneDrive",), "personal")


def folder(source_id: str, path: str, etag: str) -> Item:
    meta = {
        "kind": "folder",
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "parentId": "",
        "size": 0,
        "mtime": "2024-01-02T03:04:05Z",
        "cTag": None,
        "quickXorHash": None,
        "mimeType": None,
        "packageType": None,
        "webUrl": None,
    }
    return Item(source_id, etag, meta)


class RepeatingSource:
    """One page listing the same folder twice, as OneDrive's delta repeats parents."""

    async def owners(self) -> list[Owner]:
        return [OWNER]

    async def containers(self, owner: Owner) -> list[Container]:
        return [DRIVE]

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        items = (
            folder("f1", "Docs", "e1"),
            folder("f2", "Docs/2024", "e1"),
            folder("f1", "Docs", "e1"),
        )
        yield Page(items, delta_link="delta-1")

    async def fetch(self, container: Container, item: Item) -> bytes:
        return b""

    async def listing(self, container: Container) -> list[Item]:
        return []

    async def aclose(self) -> None:
        return None


def test_an_item_listed_twice_in_a_page_is_written_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    target = FilesArchiveTarget(tmp_path / "archive", durable=False)
    workload = Workload(
        "files",
        RepeatingSource(),
        map_drive_item,
        target,
        attrs_only,
        content_changed=content_changed,
        hierarchical_refs=True,
    )
    engine = Engine(store, [workload], RunOptions(), AuditLog(None, 1))
    tallies = asyncio.run(engine.run("run"))
    assert tallies["files"].copied == 2
    unit = store.unit_for(DRIVE)
    assert sorted(r.source_id for r in store.items_of_unit(unit.id)) == ["f1", "f2"]
