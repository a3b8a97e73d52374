"""The engine on a hand-made source and the real archive target: page-level rules."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hirondelle.connectors.archive_files import FilesArchiveTarget
from hirondelle.mappings.files import attrs_only, content_changed, map_drive_item
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.model import Blob, Container, Item, Page
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.store import open_store
from hirondelle.tests.memory_source import ALICE, MemorySource

OWNER = ALICE
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


class RepeatingSource(MemorySource):
    """One page listing the same folder twice, as OneDrive's delta repeats parents."""

    held = (DRIVE,)

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        items = (
            folder("f1", "Docs", "e1"),
            folder("f2", "Docs/2024", "e1"),
            folder("f1", "Docs", "e1"),
        )
        yield Page(items, delta_link="delta-1")

    async def fetch(self, container: Container, item: Item) -> bytes | Blob:
        return b""


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


class SlowSource(RepeatingSource):
    """Thirty files whose downloads take uneven times, as a flaky network would."""

    def __init__(self, spool: Path) -> None:
        self.delays = random.Random(5)
        self.spool = spool

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        yield Page(tuple(file_item(n) for n in range(30)), delta_link="delta-1")

    async def fetch(self, container: Container, item: Item) -> Blob:
        await asyncio.sleep(self.delays.uniform(0, 0.01))
        path = self.spool / item.source_id
        path.write_bytes(item.source_id.encode())
        return Blob(path, path.stat().st_size, {"sha256": "x"})


def file_item(n: int) -> Item:
    item = folder(f"f{n:02d}", f"file {n:02d}.txt", "e1")
    return Item(item.source_id, "e1", {**item.meta, "kind": "file", "size": 400_000})


def put_order(audit: Path) -> list[str]:
    lines = [json.loads(line) for p in sorted(audit.glob("*.jsonl")) for line in p.open()]
    return [line["source_id"] for line in lines if line["action"] == "put"]


@pytest.mark.parametrize("ordered", [True, False])
def test_an_ordered_workload_is_written_in_the_sources_order(tmp_path: Path, ordered: bool) -> None:
    """Uneven downloads and a tight memory budget must not reorder an ordered workload."""
    source = SlowSource(tmp_path / "spool")
    source.spool.mkdir()
    store = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    target = FilesArchiveTarget(tmp_path / "archive", durable=False)
    workload = Workload("files", source, map_drive_item, target, ordered=ordered)
    options = RunOptions(fetch_concurrency=4, memory_bytes=2_000_000)
    engine = Engine(store, [workload], options, AuditLog(tmp_path / "audit", 1))
    asyncio.run(engine.run("run"))
    order = put_order(tmp_path / "audit")
    assert sorted(order) == [f"f{n:02d}" for n in range(30)]
    assert (order == sorted(order)) is ordered  # unordered: the fastest download goes first
