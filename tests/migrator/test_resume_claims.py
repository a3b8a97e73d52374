"""Resuming a folder of interrupted items: each is looked up once, none is doubled, and the
folder's refs are read from the state once for the whole folder, not once per page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hirondelle.bench.verify import FOLDER, OWNER, message, source_id
from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.mappings.mail import map_message
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.store import Store, open_store
from hirondelle.tests.memory_source import MemorySource

PAGES, PER_PAGE = 3, 4


class PagedMail(MemorySource):
    """Twelve messages in three pages; messages 0 and 1 share one Message-ID."""

    owner = OWNER
    held = (FOLDER,)

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        for page in range(PAGES):
            numbers = range(page * PER_PAGE, (page + 1) * PER_PAGE)
            items = tuple(Item(source_id(n), "v1", {"flags": []}) for n in numbers)
            last = page == PAGES - 1
            yield Page(
                items, next_link=None if last else f"p{page + 1}", delta_link="d" if last else None
            )

    async def fetch(self, container: Container, item: Item) -> bytes:
        number = int(item.source_id[-12:])
        return message(max(number, 1))  # 0 is a copy of 1: same bytes, same Message-ID


def test_interrupted_items_resume_with_one_read_of_the_folder_refs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.sqlite")
    target = ArchiveTarget(tmp_path / "archive", durable=False)
    workload = Workload("mail", PagedMail(), map_message, target)
    # An earlier run marked every item started and wrote some of them, then was killed.
    unit = store.unit_for(FOLDER)
    items = [(Item(source_id(n), "v1", {"flags": []}), None) for n in range(PAGES * PER_PAGE)]
    store.mark_started(unit.id, FOLDER, items)
    session = target.open(OWNER)
    folder = session.ensure_container(FOLDER)
    for number in (1, 5, 9):
        payload = map_message(Item(source_id(number), "v1", {"flags": []}), message(number))
        session.put(folder, payload)
    reads: list[int] = []
    unit_refs = Store.unit_refs

    def counted(self: Store, unit_id: int) -> set[str]:
        reads.append(unit_id)
        return unit_refs(self, unit_id)

    monkeypatch.setattr(Store, "unit_refs", counted)

    tallies = asyncio.run(Engine(store, [workload], RunOptions(), AuditLog(None, 1)).run("run"))

    assert reads == [unit.id]
    assert tallies["mail"].copied == PAGES * PER_PAGE
    listed = session.listing(folder)
    assert len(listed) == PAGES * PER_PAGE  # 0 got a copy of its own, nothing doubled
    assert {r.status for r in store.items_of_unit(unit.id)} == {"done"}
    refs = [r.target_ref for r in store.items_of_unit(unit.id)]
    assert len(set(refs)) == len(refs)
