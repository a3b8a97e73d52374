"""verify's comparison of source, state and target, on hand-made views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hirondelle.migrator.model import Container, Entry, Item, TargetRef
from hirondelle.migrator.verify import compare
from hirondelle.state.store import ItemState

FOLDER = Container("mail", "alice@contoso.test", "F1", ("Inbox",), "inbox")


def row(source_id: str, ref: str | None, status: str = "done", size: int = 10) -> ItemState:
    return ItemState(
        id=hash(source_id),
        unit_id=1,
        source_id=source_id,
        version="v",
        status=status,
        target_folder="INBOX" if ref else None,
        target_ref=ref,
        fingerprint=f"mid:{source_id}",
        size=size,
        meta={},
        last_error="too big" if status == "skipped" else None,
    )


def entry(ref: str, fingerprint: str, size: int = 10) -> Entry:
    return Entry(TargetRef("INBOX", ref), fingerprint, size)


def test_everything_equal_is_verified() -> None:
    check = compare(FOLDER, [Item("a", "v")], [row("a", "1:1")], [entry("1:1", "mid:a")])
    assert check.differences == []


def test_each_kind_of_difference_is_listed() -> None:
    source = [Item(i, "v") for i in ("lost", "never", "big", "skip", "same")]
    rows = [
        row("lost", "1:1"),
        row("big", "1:2"),
        row("skip", None, status="skipped"),
        row("same", "1:3"),
        row("gone", "1:4"),
    ]
    target = [
        entry("1:2", "mid:big", size=11),
        entry("1:3", "mid:same"),
        entry("1:4", "mid:gone"),
        entry("1:5", "mid:same"),
        entry("1:6", "mid:other"),
    ]
    check = compare(FOLDER, source, rows, target)
    kinds = sorted((d.kind, d.source_id or d.ref) for d in check.differences)
    assert kinds == [
        ("differs", "big"),
        ("duplicate", "1:5"),
        ("extra", "1:6"),
        ("extra", "gone"),
        ("missing", "lost"),
        ("missing", "never"),
    ]
    assert check.skipped == [("skip", "too big")]


def test_a_note_is_listed_apart_and_is_no_difference() -> None:
    def note(item: Item, written: Mapping[str, Any], checksum: str | None) -> str | None:
        return f"{item.source_id} as served" if checksum == "served" else None

    rows = [replace(row("a", "1:1"), checksum="served"), row("b", "1:2")]
    target = [entry("1:1", "mid:a"), entry("1:2", "mid:b")]
    check = compare(FOLDER, [Item("a", "v"), Item("b", "v")], rows, target, note)
    assert check.differences == []
    assert check.notes == [("a", "a as served")]
    assert check.as_dict()["notes"] == [{"source_id": "a", "note": "a as served"}]
    differing = [entry("1:1", "mid:a", size=11), entry("1:2", "mid:b")]
    check = compare(FOLDER, [Item("a", "v"), Item("b", "v")], rows, differing, note)
    assert [d.kind for d in check.differences] == ["differs"] and check.notes == []
