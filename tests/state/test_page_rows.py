"""A page's first transaction (`Store.page_start`), on SQLite and PostgreSQL: the page's
rows read, here and in the owner's other units, and the items to write marked `started`,
all or nothing behind the fence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from hirondelle.migrator.errors import LeaseLost
from hirondelle.migrator.model import Container, Item, TargetRef
from hirondelle.state.records import Outcome
from hirondelle.state.schema import DONE, FAILED, STARTED
from hirondelle.state.store import Store, open_store

OWNER = "alice@contoso.test"
INBOX = Container("mail", OWNER, "F1", ("Inbox",))
ARCHIVE = Container("mail", OWNER, "F2", ("Archive",))


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    opened = open_store(state_url)
    yield opened
    opened.engine.dispose()


def settled(store: Store, container: Container, refs: dict[str, str | None]) -> int:
    """The unit of `container` with one item per source id, done at its ref (failed when
    the ref is None)."""
    unit = store.unit_for(container)
    ids = store.mark_started(unit.id, container, [(Item(i, "v1"), None) for i in refs])
    outcomes = [
        Outcome(
            Item(i, "v1"),
            DONE if ref else FAILED,
            ref=TargetRef(container.display_path, ref) if ref else None,
            row_id=ids[i],
        )
        for i, ref in refs.items()
    ]
    store.settle_page(unit.id, container, outcomes, [], None, "delta")
    return unit.id


def test_a_page_reads_its_rows_here_and_elsewhere_then_marks_in_one_commit(store: Store) -> None:
    inbox = settled(store, INBOX, {"a": "1", "b": None, "c": "3"})
    archive = settled(store, ARCHIVE, {"c": "9"})
    settled(store, Container("mail", "bob@contoso.test", "F1", ("Inbox",)), {"d": "4"})
    with store.page_start(archive, ARCHIVE) as page:
        here, there = page.rows(["a", "b", "c", "d", "new"], elsewhere=True)
        assert set(here) == {"c"} and here["c"].ref == TargetRef("Archive", "9")
        # held by the target in another unit of the owner; not b (no copy), not c (here)
        assert set(there) == {"a"} and there["a"].unit_id == inbox
        again, _ = page.rows(["a"], elsewhere=False)
        assert again == {} and page.rows(["a"], elsewhere=False)[1] == {}
        ids = page.mark_started([(Item("c", "v2"), here["c"].id), (Item("new", "v1"), None)])
    assert ids["c"] == here["c"].id
    rows = store.items_by_source(archive, ["c", "new"])
    assert {i: (r.status, r.version) for i, r in rows.items()} == {
        "c": (STARTED, "v2"),
        "new": (STARTED, "v1"),
    }
    assert rows["new"].id == ids["new"]


def test_a_page_whose_fence_fails_records_nothing(store: Store) -> None:
    unit = store.unit_for(INBOX)

    def lost(session: Session) -> None:
        raise LeaseLost(OWNER)

    with pytest.raises(LeaseLost), store.page_start(unit.id, INBOX, guard=lost) as page:
        page.mark_started([(Item("a", "v1"), None)])
    assert store.items_of_unit(unit.id) == []
    calls: list[Session] = []
    with store.page_start(unit.id, INBOX, guard=calls.append) as page:
        page.mark_started([(Item("a", "v1"), None)])
    assert len(calls) == 1 and [r.status for r in store.items_of_unit(unit.id)] == [STARTED]


def test_an_item_started_again_on_a_row_gone_gets_a_new_row(store: Store) -> None:
    """A row id that names no row (a state replaced under a run) is written afresh."""
    unit = store.unit_for(INBOX)
    ids = store.mark_started(unit.id, INBOX, [(Item("a", "v1"), None)])
    again = store.mark_started(
        unit.id, INBOX, [(Item("a", "v2"), ids["a"]), (Item("b", "v1"), 9_999)]
    )
    assert again["a"] == ids["a"] and again["b"] != 9_999
    rows = {r.source_id: r for r in store.items_of_unit(unit.id)}
    assert (rows["a"].version, rows["b"].id, rows["b"].status) == ("v2", again["b"], STARTED)


def test_a_pages_links_are_settled_with_its_outcomes_or_not_at_all(store: Store) -> None:
    unit = store.unit_for(INBOX)
    ids = store.mark_started(unit.id, INBOX, [(Item("a", "v1"), None)])
    done = Outcome(Item("a", "v1"), DONE, ref=TargetRef("Inbox", "1"), row_id=ids["a"])
    links = {"https://a": "https://cloud/a"}

    def lost(session: Session) -> None:
        raise LeaseLost(OWNER)

    with pytest.raises(LeaseLost):
        store.settle_page(unit.id, INBOX, [done], [], None, "delta", guard=lost, links=links)
    assert store.all_links("mail") == {} and store.unit_for(INBOX).delta_link is None
    store.settle_page(unit.id, INBOX, [done], [], None, "delta", links=links)
    assert store.all_links("mail") == links and store.unit_for(INBOX).delta_link == "delta"
    assert store.items_by_source(unit.id, ["a"])["a"].status == DONE


def test_outcomes_on_rows_gone_are_recorded_whatever_their_order(store: Store) -> None:
    """An outcome whose row is gone is recorded on a new row, and those settled beside it
    on rows that exist still are, before it or after it."""
    unit = store.unit_for(INBOX)
    ids = store.mark_started(unit.id, INBOX, [(Item("a", "v1"), None), (Item("c", "v1"), None)])
    lost = Outcome(Item("b", "v1"), DONE, ref=TargetRef("Inbox", "2"), row_id=10_000)
    failed = Outcome(Item("a", "v1"), FAILED, error="reset", row_id=ids["a"])
    done = Outcome(Item("c", "v1"), DONE, ref=TargetRef("Inbox", "3"), row_id=ids["c"])
    store.settle_page(unit.id, INBOX, [lost, failed, done], [], None, None)
    rows = {r.source_id: (r.status, r.target_ref) for r in store.items_of_unit(unit.id)}
    assert rows == {"a": (FAILED, None), "b": (DONE, "2"), "c": (DONE, "3")}


def test_a_page_takes_two_transactions_of_three_statements(store: Store) -> None:
    """A page's state round trips, counted: its rows read and its items marked in one
    transaction, its outcomes and cursor in another, each behind its fence (the mail
    benchmark's folders are a page each: these ran in four transactions of nine)."""
    unit = store.unit_for(INBOX)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's, sent by state.database
            statements.append(statement.split()[0])

    def fence(session: Session) -> None:
        session.connection().exec_driver_sql("SELECT 1")  # stands for `leases.holds`

    event.listen(store.engine, "before_cursor_execute", count)
    items = [Item(i, "v1") for i in "abc"]
    with store.page_start(unit.id, INBOX, guard=fence) as page:
        known, moved = page.rows([i.source_id for i in items], elsewhere=True)
        ids = page.mark_started([(i, None) for i in items])
    assert statements == ["SELECT", "SELECT", "INSERT"] and known == moved == {}
    outcomes = [
        Outcome(i, DONE, ref=TargetRef("Inbox", str(n)), row_id=ids[i.source_id])
        for n, i in enumerate(items)
    ]
    store.settle_page(unit.id, INBOX, outcomes, [], "next", None, guard=fence)
    assert statements[3:] == ["SELECT", "UPDATE", "UPDATE"]
    event.remove(store.engine, "before_cursor_execute", count)
