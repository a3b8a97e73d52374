"""Each of the state store's reads and writes, on SQLite and PostgreSQL: units, items by
source, by ref and elsewhere, outcomes applied without a cursor, refs rebased, statuses,
failures, counts, links and runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hirondelle.migrator.model import Container, Item, TargetRef
from hirondelle.state.records import Outcome
from hirondelle.state.schema import DELETED, DONE, FAILED, PENDING, SKIPPED, VANISHED
from hirondelle.state.store import LinkMap, Store, open_store

OWNER = "alice@contoso.test"
DRIVE = Container("files", OWNER, "D1", ("OneDrive",), "personal", total_items=3, size_bytes=30)
OTHER = Container("files", OWNER, "D2", ("Shared",))


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    opened = open_store(state_url)
    yield opened
    opened.engine.dispose()


def written(store: Store, container: Container, refs: dict[str, str | None]) -> int:
    """The unit of `container` with one item per source id, done at its ref (failed when
    the ref is None), settled with a bookmark."""
    unit = store.unit_for(container)
    items = [(Item(source_id, "v1", {"size": 10}), None) for source_id in refs]
    ids = store.mark_started(unit.id, container, items)
    outcomes = [
        Outcome(
            Item(source_id, "v1", {"size": 10}),
            DONE if ref else FAILED,
            ref=TargetRef(container.display_path, ref) if ref else None,
            size=10 if ref else None,
            error=None if ref else "refused",
            row_id=ids[source_id],
        )
        for source_id, ref in refs.items()
    ]
    store.settle_page(unit.id, container, outcomes, [], None, "delta")
    return unit.id


def test_a_unit_is_made_once_and_keeps_its_folder(store: Store) -> None:
    unit = store.unit_for(DRIVE)
    assert (unit.status, unit.next_link, unit.delta_link, unit.target_folder) == (
        PENDING,
        None,
        None,
        None,
    )
    store.set_unit(unit.id, target_folder="OneDrive", next_link="n1")
    again = store.unit_for(DRIVE)
    assert again.id == unit.id
    assert (again.target_folder, again.next_link) == ("OneDrive", "n1")
    other = store.unit_for(OTHER)
    # D1 was written to OneDrive first: D2 may not claim it, and nothing is recorded
    assert store.claim_folder(other, OTHER, "OneDrive") == "OneDrive"
    assert store.unit_for(OTHER).target_folder is None
    assert store.claim_folder(again, DRIVE, "OneDrive") is None
    assert [u.path for u in store.units("files")] == ["OneDrive", "Shared"]
    assert store.units("mail") == []
    (first,) = [u for u in store.units() if u.id == unit.id]
    assert (first.source_count, first.source_bytes) == (3, 30)
    assert store.target_folders("files", OWNER) == {"D1": "OneDrive"}  # D2 has none yet
    assert store.target_folders("files", "bob@contoso.test") == {}
    assert store.target_folders("mail", OWNER) == {}
    # a free folder is claimed, and the unit's last error cleared with it
    store.set_unit(other.id, last_error="unreachable")
    assert store.claim_folder(store.unit_for(OTHER), OTHER, "Shared") is None
    claimed = store.unit_for(OTHER)
    assert (claimed.target_folder, claimed.last_error) == ("Shared", None)
    assert store.target_folders("files", OWNER) == {"D1": "OneDrive", "D2": "Shared"}


def test_items_are_read_by_source_by_ref_and_one_by_one(store: Store) -> None:
    unit_id = written(store, DRIVE, {"a": "b/2", "b": "a/1", "c": "a/10", "d": None})
    by_source = store.items_by_source(unit_id, ["a", "d", "unknown"])
    assert set(by_source) == {"a", "d"}
    assert store.item(by_source["a"].id) == by_source["a"]
    assert store.item(10_000) is None
    # in ascending ref order, streamed in batches smaller than the unit
    assert [r.target_ref for r in store.items_by_ref(unit_id, batch=2)] == ["a/1", "a/10", "b/2"]
    assert store.unit_refs(unit_id) == {"a/1", "a/10", "b/2"}
    assert store.settled_ids(unit_id) == {"a", "b", "c", "d"}
    assert {r.source_id for r in store.items_of_unit(unit_id)} == {"a", "b", "c", "d"}


def test_an_item_elsewhere_is_one_the_target_holds_in_another_unit(store: Store) -> None:
    unit_id = written(store, DRIVE, {"a": "a", "b": "b", "v": "v", "f": None})
    b = store.items_by_source(unit_id, ["b"])["b"]
    store.set_status([b.id], FAILED)  # an update that failed: its ref stays, not trusted
    store.settle_page(unit_id, DRIVE, [], ["v"], None, "delta-2")  # removed from here
    other = store.unit_for(OTHER)
    found = store.items_elsewhere("files", OWNER, other.id, ["a", "b", "v", "f", "z"])
    assert set(found) == {"a", "v"}  # done or removed here, with a copy to move
    assert found["v"].ref == TargetRef("OneDrive", "v")
    assert store.items_elsewhere("files", OWNER, unit_id, ["a"]) == {}  # not in its own unit
    assert store.items_elsewhere("files", "bob@contoso.test", other.id, ["a"]) == {}
    assert store.items_elsewhere("mail", OWNER, other.id, ["a"]) == {}


def test_outcomes_applied_without_the_cursor_and_refs_rebased(store: Store) -> None:
    unit_id = written(store, DRIVE, {"dir": "Docs", "x": "Docs/x.txt", "y": None})
    store.set_unit(unit_id, next_link="n7")
    y = store.items_by_source(unit_id, ["y"])["y"]
    done = Outcome(Item("y", "v2"), DONE, ref=TargetRef("OneDrive", "Docs/y.txt"), row_id=y.id)
    store.apply_outcomes(unit_id, DRIVE, [done])
    assert store.items_by_source(unit_id, ["y"])["y"].status == DONE
    assert store.unit_for(DRIVE).next_link == "n7"  # retry-failed leaves the cursor alone
    assert store.rebase_refs(unit_id, "Docs/", "Papers/") == 2
    assert store.unit_refs(unit_id) == {"Docs", "Papers/x.txt", "Papers/y.txt"}


def test_statuses_vanished_failed_and_counts(store: Store) -> None:
    unit_id = written(store, DRIVE, {"a": "a", "b": "b", "c": None})
    written(store, Container("files", "bob@contoso.test", "D9", ("OneDrive",)), {"z": None})
    store.settle_page(unit_id, DRIVE, [], ["b"], None, "delta-2")
    assert [r.source_id for r in store.vanished("files", OWNER)] == ["b"]
    assert store.vanished("files", "bob@contoso.test") == []
    assert [(u.id, r.source_id) for u, r in store.failed("files", OWNER)] == [(unit_id, "c")]
    assert len(store.failed()) == 2
    assert store.failed_owners("files") == ["alice@contoso.test", "bob@contoso.test"]
    b = store.items_by_source(unit_id, ["b"])["b"]
    store.set_status([b.id], DELETED)
    store.set_status([], SKIPPED)  # nothing to do
    c = store.items_by_source(unit_id, ["c"])["c"]
    store.set_status([c.id], SKIPPED, "too large")
    assert store.items_by_source(unit_id, ["c"])["c"].last_error == "too large"
    counts = store.counts("files")
    assert counts.items == {DONE: 1, DELETED: 1, SKIPPED: 1, FAILED: 1}
    assert counts.units == {DONE: 2}
    assert counts.bytes_done == 10
    assert store.counts("mail").items == {}
    assert VANISHED not in counts.items


def test_links_and_their_live_view(store: Store) -> None:
    links = LinkMap(store, "files")
    assert len(links) == 0 and "https://a" not in links
    store.set_links("files", {"https://a": "https://cloud/a", "https://b": "https://cloud/b"})
    store.set_links("chat", {"https://a": "elsewhere"})
    assert links["https://a"] == "https://cloud/a"  # recorded after the view was made
    assert "https://b" in links and 42 not in links
    with pytest.raises(KeyError):
        links["https://c"]
    assert sorted(links) == ["https://a", "https://b"] and len(links) == 2
    assert store.links("files", ["https://b", "https://c"]) == {"https://b": "https://cloud/b"}
    assert store.all_links("chat") == {"https://a": "elsewhere"}


def test_runs_are_recorded_newest_first_in_a_state_of_one_identity(store: Store) -> None:
    identity = store.identity()
    first = store.start_run("run", {"workers": 1})
    second = store.start_run("sync", {})
    store.finish_run(first, "done", {"copied": 3})
    runs = store.last_runs()
    assert [r.id for r in runs] == [second, first]
    assert (runs[1].status, runs[1].summary, runs[1].options) == (
        "done",
        {"copied": 3},
        {"workers": 1},
    )
    assert runs[1].finished_at is not None and runs[0].finished_at is None
    assert [r.id for r in store.last_runs(1)] == [second]
    assert store.identity() == identity and identity


def test_an_owners_units_are_made_and_read_together(store: Store) -> None:
    known = store.unit_for(DRIVE)
    store.set_unit(known.id, target_folder="OneDrive", next_link="n1")
    moved = Container("files", OWNER, "D1", ("Renamed",), "personal", total_items=7)
    units = store.units_for([moved, OTHER, Container("files", OWNER, "D3", ("Team",)), OTHER])
    first, second = units["files", OWNER, "D1"], units["files", OWNER, "D2"]
    assert len(units) == 3 and units["files", OWNER, "D3"].id not in (first.id, second.id)
    assert first.id == known.id and (first.target_folder, first.next_link) == ("OneDrive", "n1")
    assert second.id != known.id and second.status == PENDING
    assert store.unit_for(OTHER).id == second.id  # made once
    assert {u.path: u.source_count for u in store.units("files")} == {
        "Renamed": 7,
        "Shared": 0,
        "Team": 0,
    }
    assert store.units_for([]) == {}
