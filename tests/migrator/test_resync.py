"""A container listed again after its cursor expired: what it removes, and when.

The engine against a scripted source and the files archive target: a re-enumeration
removes what its whole listing lacks, never what a partial one lacks; a failed or
expired re-enumeration fails its container alone and is started over next time; an
item never written (skipped) that moved is written where it now is, not "moved".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from hirondelle.connectors.archive_files import FilesArchiveTarget
from hirondelle.mappings.files import map_drive_item
from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine, Mode
from hirondelle.migrator.errors import CursorExpired, Retriable, SkipItem
from hirondelle.migrator.model import Container, Item, Page
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.store import Store, open_store
from hirondelle.tests.memory_source import ALICE, MemorySource

from .test_engine_pages import folder

OWNER = ALICE
A = Container("files", OWNER.upn, "dA", ("A",), "personal")
B = Container("files", OWNER.upn, "dB", ("B",), None)


class Scripted(MemorySource):
    """script[(container id, cursor)] -> list of pages, or an exception to raise."""

    held = (A, B)

    def __init__(self) -> None:
        self.script: dict[tuple[str, str | None], Exception | list[Page | Exception]] = {}
        self.skip: set[str] = set()

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        entry = self.script[(container.source_id, cursor)]
        if isinstance(entry, Exception):
            raise entry
        for page in entry:
            if isinstance(page, Exception):
                raise page
            yield page

    async def fetch(self, container: Container, item: Item) -> bytes:
        if item.source_id in self.skip:
            raise SkipItem("not carried")
        return b""


class Runner:
    def __init__(
        self, tmp_path: Path, source: Scripted, deletions: Literal["mirror", "keep"] = "mirror"
    ) -> None:
        self.tmp, self.source, self.deletions = tmp_path, source, deletions
        self.store = open_store(f"sqlite:///{tmp_path}/state.sqlite")

    def run(self, mode: Mode) -> dict[str, Any]:
        target = FilesArchiveTarget(self.tmp / "archive", durable=False)
        workload = Workload("files", self.source, map_drive_item, target)
        options = RunOptions(deletions=self.deletions, item_attempts=1, retry_pause=0)
        return asyncio.run(Engine(self.store, [workload], options, AuditLog(None, 1)).run(mode))


def engine_for(tmp_path: Path, source: Scripted) -> tuple[Store, Runner]:
    r = Runner(tmp_path, source)
    return r.store, r


def f(i: str) -> Item:
    return folder(i, i, "e1")


def statuses(store: Store, container: Container) -> dict[str, str]:
    return {r.source_id: r.status for r in store.items_of_unit(store.unit_for(container).id)}


def test_a_skipped_item_moved_while_the_cursor_was_expired_is_written_where_it_is(
    tmp_path: Path,
) -> None:
    source = Scripted()
    source.skip = {"x"}
    source.script[("dA", None)] = [Page((f("a1"), f("x")), delta_link="A-1")]
    source.script[("dB", None)] = [Page((f("b1"),), delta_link="B-1")]
    store, engine = engine_for(tmp_path, source)
    engine.run("run")
    source.skip = set()  # now carried: it moved into B, where it can be written
    source.script[("dA", "A-1")] = CursorExpired("410")
    source.script[("dA", None)] = [Page((f("a1"),), delta_link="A-2")]
    source.script[("dB", "B-1")] = [Page((f("x"),), delta_link="B-2")]
    tally = engine.run("sync")["files"]
    assert (tally.copied, tally.moved, tally.failed) == (1, 0, 0)
    assert statuses(store, B)["x"] == "done"
    assert statuses(store, A)["x"] == "deleted"


def test_a_skipped_item_moved_as_delta_reports_it_is_written_where_it_is(
    tmp_path: Path,
) -> None:
    source = Scripted()
    source.skip = {"x"}
    source.script[("dA", None)] = [Page((f("a1"), f("x")), delta_link="A-1")]
    source.script[("dB", None)] = [Page((f("b1"),), delta_link="B-1")]
    store, engine = engine_for(tmp_path, source)
    engine.run("run")
    source.skip = set()
    source.script[("dA", "A-1")] = [Page((), removed=("x",), delta_link="A-2")]
    source.script[("dB", "B-1")] = [Page((f("x"),), delta_link="B-2")]
    tally = engine.run("sync")["files"]
    assert (tally.copied, tally.moved, tally.failed) == (1, 0, 0)
    assert statuses(store, B)["x"] == "done"


def test_a_resync_cut_by_a_failure_starts_over_and_still_removes(tmp_path: Path) -> None:
    source = Scripted()
    source.script[("dA", None)] = [Page((f("a1"), f("a2"), f("a3")), delta_link="A-1")]
    source.script[("dB", None)] = [Page((), delta_link="B-1")]
    store, engine = engine_for(tmp_path, source)
    engine.run("run")
    # the link expired and a2 was deleted meanwhile; the listing fails on its 2nd page
    source.script[("dA", "A-1")] = CursorExpired("410")
    source.script[("dA", None)] = [Page((f("a1"),), next_link="p2"), Retriable("503 x6")]
    source.script[("dB", "B-1")] = [Page((), delta_link="B-2")]
    cut = engine.run("sync")["files"]
    unit = store.unit_for(A)
    assert (unit.status, unit.next_link, cut.removed) == ("failed", None, 0)
    assert statuses(store, A)["a2"] == "done"  # half a listing removes nothing
    source.script[("dA", None)] = [
        Page((f("a1"),), next_link="p2"),
        Page((f("a3"),), delta_link="A-3"),
    ]
    source.script[("dB", "B-2")] = [Page((), delta_link="B-3")]
    tally = engine.run("sync")["files"]
    assert (tally.removed, tally.failed) == (1, 0)
    assert statuses(store, A) == {"a1": "done", "a2": "deleted", "a3": "done"}


def test_a_link_that_expires_during_the_re_enumeration_fails_that_container_alone(
    tmp_path: Path,
) -> None:
    source = Scripted()
    source.script[("dA", None)] = [Page((f("a1"), f("a2")), delta_link="A-1")]
    source.script[("dB", None)] = [Page((f("b1"),), delta_link="B-1")]
    store, engine = engine_for(tmp_path, source)
    engine.run("run")
    source.script[("dA", "A-1")] = CursorExpired("410")
    source.script[("dA", None)] = [Page((f("a1"),), next_link="p2"), CursorExpired("410 again")]
    source.script[("dB", "B-1")] = [Page((f("b2"),), delta_link="B-2")]
    tally = engine.run("sync")["files"]
    assert tally.copied == 1  # B carried
    failed = next(u for u in store.units("files") if u.container_id == "dA")
    assert (failed.status, failed.next_link) == ("failed", None)
    assert "410 again" in (failed.last_error or "")
    assert statuses(store, A) == {"a1": "done", "a2": "done"}  # nothing removed on half
