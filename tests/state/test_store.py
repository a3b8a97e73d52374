"""The state store's page transaction, move lookup and links, on SQLite and PostgreSQL."""

from __future__ import annotations

from hirondelle.migrator.model import Container, Item, TargetRef
from hirondelle.state.schema import DONE, STARTED, VANISHED, ItemRow
from hirondelle.state.store import Outcome, open_store

INBOX = Container("mail", "alice@contoso.test", "F-IN", ("Inbox",), "inbox", total_items=2)
ARCHIVE = Container("mail", "alice@contoso.test", "F-AR", ("Archive",), "archive")


def test_page_outcomes_and_cursor_commit_together(state_url: str) -> None:
    store = open_store(state_url)
    unit = store.unit_for(INBOX)
    a, b = Item("a", "v1", {"isRead": True}), Item("b", "v1")
    ids = store.mark_started(unit.id, INBOX, [(a, None), (b, None)])
    assert {r.status for r in store.items_of_unit(unit.id)} == {STARTED}
    outcomes = [
        Outcome(
            a, DONE, ref=TargetRef("INBOX", "7:1"), fingerprint="mid:a", size=5, row_id=ids["a"]
        ),
        Outcome(b, "failed", error="reset", row_id=ids["b"]),
    ]
    store.settle_page(unit.id, INBOX, outcomes, [], "next-1", None)
    rows = {r.source_id: r for r in store.items_of_unit(unit.id)}
    assert rows["a"].status == DONE and rows["a"].ref == TargetRef("INBOX", "7:1")
    assert rows["b"].status == "failed" and rows["b"].last_error == "reset"
    assert rows["a"].meta == {"isRead": True}
    assert store.unit_for(INBOX).next_link == "next-1"
    store.settle_page(unit.id, INBOX, [], ["a"], None, "delta-1")
    again = store.unit_for(INBOX)
    assert (again.status, again.next_link, again.delta_link) == (DONE, None, "delta-1")
    assert store.items_by_source(unit.id, ["a"])["a"].status == VANISHED
    other = store.unit_for(ARCHIVE)
    moved = store.items_elsewhere("mail", INBOX.owner, other.id, ["a", "b"])
    assert set(moved) == {"a"}  # a failed item is not a move source
    assert store.unit_refs(unit.id) == {"7:1"}
    assert store.counts("mail").items == {VANISHED: 1, "failed": 1}


def test_long_ids_paths_and_urls_fit(state_url: str) -> None:
    """SharePoint web URLs and WebDAV paths run to hundreds of characters: PostgreSQL
    enforces declared lengths where SQLite does not."""
    store = open_store(state_url)
    long_id = "b!" + "x" * 700
    drive = Container("files", "site:" + "s" * 400, long_id, ("Documents",) * 50)
    unit = store.unit_for(drive)
    item = Item("i" * 600, "v" * 600, {"webUrl": "https://contoso.sharepoint.com/" + "y" * 900})
    ids = store.mark_started(unit.id, drive, [(item, None)])
    ref = TargetRef("Microsoft 365/" + "f/" * 300, "n" * 900)
    store.settle_page(
        unit.id,
        drive,
        [Outcome(item, DONE, ref=ref, fingerprint="q" * 2000, row_id=ids[item.source_id])],
        [],
        None,
        "d" * 3000,
    )
    assert store.items_by_source(unit.id, [item.source_id])[item.source_id].ref == ref
    url = "https://contoso.sharepoint.com/sites/" + "z" * 900
    store.set_links("files", {url: "https://cloud.example/" + "w" * 900})
    store.set_links("files", {url: "https://cloud.example/again"})  # an upsert
    assert store.all_links("files") == {url: "https://cloud.example/again"}
    store.engine.dispose()


def test_an_item_started_again_keeps_what_its_row_holds(state_url: str) -> None:
    """A second attempt counts, and an outcome without a ref or size (a failure) leaves the
    row's as they were; an outcome whose row is gone is recorded on a new row."""
    store = open_store(state_url)
    unit = store.unit_for(INBOX)
    a = Item("a", "v1")
    first = store.mark_started(unit.id, INBOX, [(a, None)])
    done = Outcome(a, DONE, ref=TargetRef("INBOX", "7:1"), size=5, row_id=first["a"])
    store.settle_page(unit.id, INBOX, [done], [], None, None)
    a2, b = Item("a", "v2", {"isRead": False}), Item("b", "v1")
    again = store.mark_started(unit.id, INBOX, [(a2, first["a"]), (b, None)])
    assert again["a"] == first["a"] and again["b"] != first["a"]
    failed = Outcome(a2, "failed", error="reset", row_id=again["a"])
    lost = Outcome(b, DONE, ref=TargetRef("INBOX", "7:2"), row_id=10_000)
    store.settle_page(unit.id, INBOX, [failed, lost], [], None, None)
    rows = {r.source_id: r for r in store.items_of_unit(unit.id)}
    assert (rows["a"].status, rows["a"].version) == ("failed", "v2")
    with store.session() as s:
        row = s.get(ItemRow, again["a"])
        assert row is not None and row.attempts == 2
    assert rows["a"].ref == TargetRef("INBOX", "7:1") and rows["a"].size == 5
    assert rows["a"].meta == {"isRead": False}
    assert rows["b"].status == DONE and rows["b"].ref == TargetRef("INBOX", "7:2")
