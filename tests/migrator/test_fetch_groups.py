"""The writer fetches small items in groups when the source can fetch several at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.mappings.mail import map_message, message_attrs
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.errors import ItemError, SkipItem
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.migrator.writer import FETCH_GROUP
from hirondelle.state.store import open_store
from hirondelle.tests.memory_source import ALICE, MemorySource

OWNER = ALICE
INBOX = Container("mail", OWNER.upn, "inbox-id", ("Inbox",), "inbox", ("inbox",), 47)
GONE = "m07"


def message(source_id: str, size: int | None) -> Item:
    meta = {
        "internetMessageId": f"<{source_id}@contoso.test>",
        "receivedDateTime": "2024-01-02T03:04:05Z",
        "isRead": True,
        "isDraft": False,
        "flagStatus": "notFlagged",
        "categories": [],
        "lastVerb": None,
        "size": size,
    }
    return Item(source_id, "ck1", meta)


def mime(source_id: str) -> bytes:
    return (
        f"Message-ID: <{source_id}@contoso.test>\r\nSubject: {source_id}\r\n"
        f"Date: Tue, 2 Jan 2024 03:04:05 +0000\r\n\r\nBody of {source_id}\r\n"
    ).encode()


class GroupingSource(MemorySource):
    """45 small messages (one of them gone), one large and one of unknown size."""

    held = (INBOX,)

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.alone: list[str] = []

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        small = [message(f"m{n:02d}", 2_000) for n in range(45)]
        yield Page((*small, message("big", 5_000_000), message("unknown", None)), delta_link="d1")

    async def fetch(self, container: Container, item: Item) -> bytes:
        self.alone.append(item.source_id)
        return mime(item.source_id)

    async def fetch_many(
        self, container: Container, items: Sequence[Item]
    ) -> list[bytes | ItemError]:
        self.groups.append([item.source_id for item in items])
        await asyncio.sleep(0)
        return [
            SkipItem("gone") if item.source_id == GONE else mime(item.source_id) for item in items
        ]


def test_small_items_are_fetched_in_groups_and_large_ones_alone(tmp_path: Path) -> None:
    source = GroupingSource()
    store = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    target = ArchiveTarget(tmp_path / "archive", durable=False)
    workload = Workload("mail", source, map_message, target, message_attrs)
    engine = Engine(store, [workload], RunOptions(memory_bytes=8_000_000), AuditLog(None, 1))
    tallies = asyncio.run(engine.run("run"))
    grouped = [source_id for group in source.groups for source_id in group]
    assert sorted(grouped) == [f"m{n:02d}" for n in range(45)]
    assert all(len(group) <= FETCH_GROUP for group in source.groups) and len(source.groups) == 3
    assert sorted(source.alone) == ["big", "unknown"]
    assert (tallies["mail"].copied, tallies["mail"].skipped) == (46, 1)
    assert engine.memory._used == 0  # every group's hold was given back
    rows = {row.source_id: row.status for row in store.items_of_unit(store.unit_for(INBOX).id)}
    assert rows[GONE] == "skipped" and sum(status == "done" for status in rows.values()) == 46
