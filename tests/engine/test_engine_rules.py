"""The engine's own rules, on a target and a source held in memory: each item ends done,
failed or skipped; moves, removals and resumed items; a cursor stored only with its page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest

from hirondelle.migrator.audit import AuditLog
from hirondelle.migrator.engine import Engine
from hirondelle.migrator.errors import FatalError, GoneAtSource, Refused, SkipItem
from hirondelle.migrator.ledger import Tally
from hirondelle.migrator.model import Container, Payload, TargetRef
from hirondelle.migrator.workload import RunOptions, Workload
from hirondelle.state.records import ItemState
from hirondelle.state.schema import DELETED, DONE, FAILED, SKIPPED, STARTED
from hirondelle.state.store import Store, open_store
from hirondelle.tests.engine.memory import (
    OWNER,
    MemorySession,
    MemorySource,
    MemoryTarget,
    capabilities,
    content_of,
    folder,
    map_message,
    message,
    page,
)

INBOX, ARCHIVE = folder("F-IN", "Inbox"), folder("F-AR", "Archive")


def fingerprint(source_id: str) -> str:
    return map_message(message(source_id), b"").fingerprint


def run(
    store: Store,
    source: MemorySource,
    target: MemoryTarget,
    mode: Literal["run", "sync", "retry-failed"] = "run",
    deletions: Literal["mirror", "keep"] = "mirror",
) -> Tally:
    workload = Workload("mail", source, map_message, target)
    options = RunOptions(deletions=deletions, item_attempts=2, retry_pause=0.0)
    engine = Engine(store, [workload], options, AuditLog(None, 1))
    if mode == "retry-failed":
        return asyncio.run(engine.retry_failed())["mail"]
    return asyncio.run(engine.run(mode))["mail"]


def rows(store: Store, container: Container) -> dict[str, ItemState]:
    return {r.source_id: r for r in store.items_of_unit(store.unit_for(container).id)}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/state.sqlite")


def test_each_item_ends_done_failed_or_skipped_and_a_failure_is_written_later(
    store: Store,
) -> None:
    items = (
        message("a"),
        message("b"),
        message("c"),
        message("d", size=2000, kind="file"),
        # A listed size that is not the content's (a message's, as Exchange stores it) is
        # no reason to skip: the content may fit, the target decides once it is in hand.
        message("e", size=2000),
    )
    source = MemorySource([INBOX], {("F-IN", None): [page(*items, delta_link="d1")]})
    source.errors["b"] = SkipItem("a kind the target has no place for")
    target = MemoryTarget(capabilities(max_item_bytes=1000))
    target.refuse["c"] = Refused("quota full")

    tally = run(store, source, target)

    states = rows(store, INBOX)
    assert {k: v.status for k, v in states.items()} == {
        "a": DONE,
        "b": SKIPPED,
        "c": FAILED,
        "d": SKIPPED,
        "e": DONE,
    }
    assert states["b"].last_error == "a kind the target has no place for"
    assert states["c"].last_error == "quota full"
    assert "2000 bytes listed, over the target's limit of 1000 bytes" in str(states["d"].last_error)
    assert "d" not in source.fetched  # skipped before any download
    assert "e" in source.fetched
    assert (tally.copied, tally.skipped, tally.failed) == (2, 2, 1)
    assert target.held("Inbox") == {
        fingerprint("a"): content_of("a"),
        fingerprint("e"): content_of("e"),
    }
    unit = store.unit_for(INBOX)
    assert (unit.status, unit.delta_link) == (DONE, "d1")

    del target.refuse["c"]  # the quota was raised: the next pass writes what failed
    again = run(store, source, target, "sync")
    assert (again.copied, again.failed) == (1, 0)
    assert rows(store, INBOX)["c"].status == DONE
    assert target.calls.count(("find", "c")) == 1  # looked up first: it may have landed
    assert target.count("put") == 4  # a, c refused, e, c written


def test_an_oversize_reason_names_the_setting_the_target_says_sets_its_limit(
    store: Store,
) -> None:
    source = MemorySource([INBOX], {("F-IN", None): [page(message("d", size=2000, kind="file"))]})
    target = MemoryTarget(
        capabilities(max_item_bytes=1000, limit_setting="targets.files.max_upload_bytes")
    )

    run(store, source, target)

    reason = rows(store, INBOX)["d"].last_error
    assert reason == "2000 bytes, over targets.files.max_upload_bytes (1000)"


def moved_between_folders(store: Store, target: MemoryTarget) -> MemorySource:
    """A first run writes m and n into Inbox; then m moves to Archive at the source."""
    source = MemorySource(
        [INBOX, ARCHIVE],
        {
            ("F-IN", None): [page(message("m"), message("n"), delta_link="i1")],
            ("F-AR", None): [page(delta_link="a1")],
            ("F-IN", "i1"): [page(removed=["m"], delta_link="i2")],
            ("F-AR", "a1"): [page(message("m"), delta_link="a2")],
        },
    )
    assert run(store, source, target).copied == 2
    return source


def test_a_move_is_made_on_the_target_when_it_can_move(store: Store) -> None:
    target = MemoryTarget(capabilities(moves=True))
    source = moved_between_folders(store, target)

    tally = run(store, source, target, "sync")

    assert (tally.moved, tally.copied, tally.removed, tally.failed) == (1, 0, 0, 0)
    assert target.count("move") == 1 and target.count("put") == 2
    assert set(target.held("Archive")) == {fingerprint("m")}
    assert set(target.held("Inbox")) == {fingerprint("n")}
    assert rows(store, ARCHIVE)["m"].status == DONE
    assert "m" not in rows(store, INBOX)  # the row moved with its copy


@pytest.mark.parametrize("deletions", ["mirror", "keep"])
def test_a_target_that_cannot_move_gets_a_new_copy_and_the_old_one_follows_deletions(
    store: Store, deletions: Literal["mirror", "keep"]
) -> None:
    """No `move` is asked of a target that declares it cannot move, and nothing fails:
    the item is written where it now is; the copy left behind is the old folder's removal."""
    target = MemoryTarget(capabilities(moves=False))
    source = moved_between_folders(store, target)

    tally = run(store, source, target, "sync", deletions)

    assert target.count("move") == 0
    assert (tally.copied, tally.moved, tally.failed) == (1, 0, 0)
    assert tally.removed == (1 if deletions == "mirror" else 0)
    assert set(target.held("Archive")) == {fingerprint("m")}
    kept = {fingerprint("n")} | ({fingerprint("m")} if deletions == "keep" else set())
    assert set(target.held("Inbox")) == kept
    assert rows(store, ARCHIVE)["m"].status == DONE
    assert rows(store, INBOX)["m"].status == DELETED


def test_an_item_moved_there_and_back_finds_the_copy_keep_left_behind(store: Store) -> None:
    """On a target that cannot move, under `keep`: m goes Inbox -> Archive -> Inbox. The
    copy left in Inbox is looked up, not written a second time beside itself."""
    target = MemoryTarget(capabilities(moves=False))
    source = moved_between_folders(store, target)
    run(store, source, target, "sync", "keep")
    source.pages[("F-IN", "i2")] = [page(message("m"), delta_link="i3")]
    source.pages[("F-AR", "a2")] = [page(removed=["m"], delta_link="a3")]

    tally = run(store, source, target, "sync", "keep")

    assert (tally.copied, tally.failed) == (1, 0)  # found where it was kept
    assert target.count("put") == 3  # m and n, then m in Archive: never m twice in Inbox
    assert set(target.held("Inbox")) == {fingerprint("m"), fingerprint("n")}
    assert len(target.folders["Inbox"]) == 2  # one copy each: held() keys by fingerprint
    assert rows(store, INBOX)["m"].status == DONE


@pytest.mark.parametrize("deletions", ["mirror", "keep"])
def test_an_item_removed_at_the_source_is_removed_or_kept_as_deletions_says(
    store: Store, deletions: Literal["mirror", "keep"]
) -> None:
    source = MemorySource(
        [INBOX],
        {
            ("F-IN", None): [page(message("a"), message("b"), delta_link="d1")],
            ("F-IN", "d1"): [page(removed=["b", "never-seen"], delta_link="d2")],
        },
    )
    target = MemoryTarget()
    run(store, source, target)

    tally = run(store, source, target, "sync", deletions)

    assert tally.removed == (1 if deletions == "mirror" else 0)
    held = {fingerprint("a")} | ({fingerprint("b")} if deletions == "keep" else set())
    assert set(target.held("Inbox")) == held
    states = rows(store, INBOX)
    assert (states["a"].status, states["b"].status) == (DONE, DELETED)
    assert "never-seen" not in states
    assert store.unit_for(INBOX).delta_link == "d2"


def test_an_item_written_then_gone_at_the_source_in_substance_loses_its_copy(
    store: Store,
) -> None:
    # a Teams message deleted, with `deleted = "skip"`: still listed, no longer carried
    source = MemorySource(
        [INBOX],
        {
            ("F-IN", None): [page(message("a"), message("b"), delta_link="d1")],
            ("F-IN", "d1"): [page(message("b", "v2"), delta_link="d2")],
        },
    )
    target = MemoryTarget()
    run(store, source, target)
    source.errors["b"] = GoneAtSource("deleted at the source")

    tally = run(store, source, target, "sync")

    assert (tally.skipped, tally.updated, tally.failed) == (1, 0, 0)
    assert set(target.held("Inbox")) == {fingerprint("a")}
    assert rows(store, INBOX)["b"].status == SKIPPED
    assert rows(store, INBOX)["b"].last_error == "deleted at the source"


@pytest.mark.parametrize("mode", ["sync", "retry-failed"])
def test_a_copy_whose_removal_failed_is_removed_by_the_next_pass(
    store: Store, monkeypatch: pytest.MonkeyPatch, mode: Literal["sync", "retry-failed"]
) -> None:
    """The removal of a gone item's copy was refused once: the item failed, and the next
    pass (a sync that lists it again, or `retry-failed`) removes the copy, then skips it."""
    source = MemorySource(
        [INBOX],
        {
            ("F-IN", None): [page(message("a"), message("b"), delta_link="d1")],
            ("F-IN", "d1"): [page(message("b", "v2"), delta_link="d2")],
            ("F-IN", "d2"): [page(message("b", "v3"), delta_link="d3")],
        },
    )
    target = MemoryTarget()
    run(store, source, target)
    source.errors["b"] = GoneAtSource("deleted at the source")
    remove = MemorySession.remove

    def refuse(session: MemorySession, ref: TargetRef) -> None:
        raise Refused("the target refused the removal")

    monkeypatch.setattr(MemorySession, "remove", refuse)
    assert run(store, source, target, "sync").failed == 1
    assert rows(store, INBOX)["b"].status == FAILED
    monkeypatch.setattr(MemorySession, "remove", remove)

    tally = run(store, source, target, mode)

    assert tally.failed == 0 and tally.skipped >= 1  # a sync retries b first, then lists it
    assert set(target.held("Inbox")) == {fingerprint("a")}
    assert rows(store, INBOX)["b"].status == SKIPPED
    assert rows(store, INBOX)["b"].last_error == "deleted at the source"


def test_a_started_item_is_looked_up_before_it_is_written(store: Store) -> None:
    """An earlier pass settled page 1, marked a and b of page 2 started, wrote a and was
    killed: the next pass finds a's copy and writes b once."""
    target = MemoryTarget()
    session = target.open(OWNER)
    session.ensure_container(INBOX)
    written = session.put("Inbox", map_message(message("a"), content_of("a")))
    unit = store.unit_for(INBOX)
    store.settle_page(unit.id, INBOX, [], [], "n1", None)
    store.mark_started(unit.id, INBOX, [(message("a"), None), (message("b"), None)])
    target.calls.clear()
    listing = [page(message("a"), message("b"), delta_link="d1")]
    source = MemorySource([INBOX], {("F-IN", "n1"): listing})

    tally = run(store, source, target)

    assert tally.copied == 2 and tally.failed == 0
    assert [c for c in target.calls if c[0] == "put"] == [("put", "b")]
    assert ("find", "a") in target.calls and ("find", "b") in target.calls
    assert len(target.folders["Inbox"]) == 2
    states = rows(store, INBOX)
    assert states["a"].ref == written and states["b"].status == DONE


def test_the_cursor_is_stored_only_once_its_page_is_settled(store: Store) -> None:
    source = MemorySource(
        [INBOX],
        {
            ("F-IN", None): [
                page(message("a"), message("b"), next_link="n1"),
                page(message("c"), delta_link="d1"),
            ]
        },
    )
    source.pages[("F-IN", "n1")] = source.pages[("F-IN", None)][1:]
    target = MemoryTarget()
    cursors: list[tuple[str, str | None]] = []

    def stop_at_c(payload: Payload) -> None:
        cursors.append((payload.source_id, store.units()[0].next_link))
        if payload.source_id == "c":
            raise FatalError("the disk is full")

    target.on_put = stop_at_c
    with pytest.raises(FatalError):
        run(store, source, target)

    # page 1 was written before its cursor was stored, page 2 after
    assert cursors == [("a", None), ("b", None), ("c", "n1")]
    unit = store.unit_for(INBOX)
    assert (unit.next_link, unit.delta_link) == ("n1", None)
    assert rows(store, INBOX)["c"].status == STARTED

    target.on_put = None  # the disk has room again: the pass goes on from page 2
    tally = run(store, source, target)
    assert tally.copied == 1
    assert store.unit_for(INBOX).delta_link == "d1"
    assert ("find", "c") in target.calls  # started: looked up before the write
    assert set(target.held("Inbox")) == {fingerprint(i) for i in "abc"}
