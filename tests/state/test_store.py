"""The state store's page transaction, move lookup and schema version guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from hirondelle.migrator.errors import ConfigError
from hirondelle.migrator.model import Container, Item, TargetRef
from hirondelle.state.schema import DONE, STARTED, VANISHED, SchemaMigration
from hirondelle.state.store import Outcome, open_store

INBOX = Container("mail", "alice@contoso.test", "F-IN", ("Inbox",), "inbox", total_items=2)
ARCHIVE = Container("mail", "alice@contoso.test", "F-AR", ("Archive",), "archive")


def test_page_outcomes_and_cursor_commit_together(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.sqlite")
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


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.sqlite"
    store = open_store(url)
    with store.session() as s, s.begin():
        s.execute(update(SchemaMigration).values(version=99))
    with pytest.raises(ConfigError, match="newer"):
        open_store(url)
