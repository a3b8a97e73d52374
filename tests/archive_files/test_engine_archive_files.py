"""The engine carrying a drive into the files archive: run, then sync a rename, a content
change and a deletion, then verify. The drive is an in-memory source that pages its
items like Graph's delta (a renamed folder comes back alone, its children do not)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hirondelle.connectors.archive_files import FilesArchiveTarget
from hirondelle.mappings.files import map_drive_item
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.model import Blob, Container, Item, Owner, Page
from hirondelle.migrator.verify import compare
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.store import open_store
from hirondelle.tests.memory_source import MemorySource

OWNER = Owner("alice@contoso.test", "u-1", "Alice")
DRIVE = Container("files", OWNER.upn, "drive-1", ("OneDrive",), "personal")


class MemoryDrive(MemorySource):
    """A drive whose items change between enumerations; paths computed by the test."""

    owner = OWNER
    held = (DRIVE,)

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.items: dict[str, dict[str, Any]] = {}
        self.content: dict[str, bytes] = {}
        self.changed: list[str] = []
        self.removed: list[str] = []
        self.round = 0

    def set(self, source_id: str, kind: str, path: str, content: bytes = b"") -> None:
        version = f"{source_id}-{self.round}"
        meta = {"kind": kind, "path": path, "size": len(content), "cTag": version}
        self.items[source_id] = {**meta, "mtime": "2020-02-02T10:00:00Z", "eTag": version}
        self.content[source_id] = content
        self.changed.append(source_id)

    def delete(self, source_id: str) -> None:
        del self.items[source_id]
        self.removed.append(source_id)

    def _item(self, source_id: str) -> Item:
        meta = dict(self.items[source_id])
        return Item(source_id, meta.pop("eTag"), meta)

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        ids = list(self.items) if cursor is None else list(dict.fromkeys(self.changed))
        page = Page(
            tuple(self._item(i) for i in ids if i in self.items),
            removed=tuple(self.removed),
            delta_link=f"token-{self.round}",
        )
        self.changed, self.removed = [], []
        self.round += 1
        yield page

    async def fetch(self, container: Container, item: Item) -> bytes | Blob:
        if item.meta["kind"] == "folder":
            return b""
        content = self.content[item.source_id]
        path = self.spool / f"{item.source_id}-{item.version}"
        path.write_bytes(content)
        return Blob(path, len(content), {"sha256": hashlib.sha256(content).hexdigest()})

    async def listing(self, container: Container) -> list[Item]:
        return [self._item(i) for i in self.items]


def test_run_sync_verify(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    drive = MemoryDrive(spool)
    drive.set("f1", "folder", "Projet")
    drive.set("f2", "folder", "Projet/Plans")
    drive.set("i1", "file", "Projet/Plans/plan.pdf", b"%PDF plan")
    drive.set("i2", "file", "Projet/notes: v1?.txt", b"notes")
    drive.set("i3", "file", "old.txt", b"old")

    target = FilesArchiveTarget(tmp_path / "archive", durable=False)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    workload = Workload("files", drive, map_drive_item, target, None, hierarchical_refs=True)
    options = RunOptions(retry_pause=0.01)

    def engine_run(mode: str) -> None:
        engine = Engine(store, [workload], options, AuditLog(None, 1))
        asyncio.run(engine.run("sync" if mode == "sync" else "run"))

    engine_run("run")
    base = target.payload / OWNER.upn / "OneDrive"
    assert (base / "Projet" / "Plans" / "plan.pdf").read_bytes() == b"%PDF plan"
    assert (base / "Projet" / "notes: v1?.txt").read_bytes() == b"notes"

    drive.round = 1
    drive.set("f1", "folder", "Projet 2025")  # renamed: children keep their ids and eTags
    drive.items["f2"]["path"] = "Projet 2025/Plans"
    drive.items["i1"]["path"] = "Projet 2025/Plans/plan.pdf"
    drive.items["i2"]["path"] = "Projet 2025/notes: v1?.txt"
    drive.set("i2", "file", "Projet 2025/notes: v1?.txt", b"notes, version 2")
    drive.delete("i3")
    engine_run("sync")

    assert not (base / "Projet").exists()
    assert (base / "Projet 2025" / "Plans" / "plan.pdf").read_bytes() == b"%PDF plan"
    assert (base / "Projet 2025" / "notes: v1?.txt").read_bytes() == b"notes, version 2"
    assert not (base / "old.txt").exists()

    unit = store.unit_for(DRIVE)
    session = target.open(OWNER)
    check = compare(
        DRIVE,
        asyncio.run(drive.listing(DRIVE)),
        store.items_of_unit(unit.id),
        session.listing(unit.target_folder or ""),
    )
    assert check.differences == [], check.differences
    assert check.source_count == check.target_count == 4
