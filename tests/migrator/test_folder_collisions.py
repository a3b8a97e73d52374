"""Two source folders whose names clean up to one target name: both kept, never merged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.mappings.mail import map_message, message_attrs
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.store import open_store
from hirondelle.tests.memory_source import ALICE, MemorySource

OWNER = ALICE
DOTTED = Container("mail", OWNER.upn, "f-dot", ("Archive.",), total_items=2)
LEADER = Container("mail", OWNER.upn, "f-leader", ("Archive\u2024",), total_items=2)


class TwoFolders(MemorySource):
    """A mailbox whose folders "Archive." and "Archive\u2024" clean up to one name."""

    held = (DOTTED, LEADER)

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        items = tuple(Item(f"{container.source_id}-{n}", "v1", {}) for n in range(2))
        yield Page(items, delta_link="delta")

    async def fetch(self, container: Container, item: Item) -> bytes:
        return (
            f"Message-ID: <{item.source_id}@example.test>\r\nSubject: {item.source_id}\r\n\r\n"
            "body\r\n"
        ).encode()


def run(tmp_path: Path, mode: str = "run") -> dict[str, int]:
    store = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    workload = Workload("mail", TwoFolders(), map_message, ArchiveTarget(tmp_path / "archive"))
    workload.attrs_mapper = message_attrs
    engine = Engine(store, [workload], RunOptions(), AuditLog(tmp_path / "audit", 1))
    tally = asyncio.run(engine.run("sync" if mode == "sync" else "run"))["mail"]
    store.engine.dispose()
    maildir = tmp_path / "archive" / "data" / OWNER.upn / "Maildir"
    return {
        folder.name: len(list((folder / "cur").iterdir()))
        for folder in maildir.iterdir()
        if (folder / "cur").is_dir() and folder.name.startswith(".")
    } | {"copied": tally.copied}


def test_both_folders_are_kept_and_the_second_is_renamed(tmp_path: Path) -> None:
    # Maildir++ names are modified UTF-7: "\u2024" is "&ICQ-".
    assert run(tmp_path) == {".Archive&ICQ-": 2, ".Archive&ICQ- (2)": 2, "copied": 4}
    audit = [json.loads(line) for line in (tmp_path / "audit").glob("*.jsonl").__next__().open()]
    (renamed,) = [line for line in audit if line["action"] == "rename"]
    assert renamed["container"] == "Archive\u2024" and renamed["result"] == "collision"
    # The next run finds each folder where it was written: nothing more, nothing merged.
    assert run(tmp_path, "sync") == {".Archive&ICQ-": 2, ".Archive&ICQ- (2)": 2, "copied": 0}


def test_the_plan_names_the_collision_and_the_name_the_run_gives() -> None:
    from hirondelle.mappings.mail_folders import target_folder
    from hirondelle.migrator.plan import collisions

    def name(container: Container) -> str:
        return "/".join(target_folder(container.path, (None,) * len(container.path), {}))

    (finding,) = collisions(OWNER, [DOTTED, LEADER], name)
    assert finding.kind == "name-collision" and finding.container == "Archive\u2024"
    assert "written to 'Archive\u2024 (2)'" in finding.detail
