"""The .ics / .vcf archive targets: the layout on disk and the whole-collection files."""

from __future__ import annotations

import os
from pathlib import Path

import icalendar
import pytest
import vobject

from hirondelle.connectors.archive_dav import (
    DavArchiveSession,
    IcsArchiveTarget,
    VcfArchiveTarget,
    collection_dir_name,
)
from hirondelle.migrator.errors import FatalError, Refused, SkipItem
from hirondelle.migrator.model import Container, Owner
from hirondelle.tests.dav.payloads import contact, event

OWNER = Owner(upn="alice@example.test", source_id="alice")


def calendar(name: str) -> Container:
    return Container("calendar", OWNER.upn, f"id-{name}", (name,))


def ics_session(root: Path) -> DavArchiveSession:
    return IcsArchiveTarget(root, durable=False).open(OWNER)


def test_one_file_per_event_under_the_calendar_name(tmp_path: Path) -> None:
    session = ics_session(tmp_path)
    folder = session.ensure_container(calendar("Réunions"))
    payload = event("event-1")
    ref = session.put(folder, payload)
    path = tmp_path / "data" / OWNER.upn / "calendars" / "Réunions" / payload.attrs["resource"]
    assert (folder, ref.ref) == ("Réunions", payload.attrs["resource"])
    assert path.read_bytes() == payload.content
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    (entry,) = session.listing(folder)
    assert (entry.ref, entry.fingerprint, entry.size) == (ref, payload.fingerprint, payload.size)


def test_close_merges_the_calendar_with_each_timezone_once(tmp_path: Path) -> None:
    session = ics_session(tmp_path)
    folder = session.ensure_container(calendar("Travail"))
    for number in range(3):
        session.put(folder, event(f"event-{number}", summary=f"Réunion {number}"))
    session.close()
    merged = (tmp_path / "data" / OWNER.upn / "calendars" / "Travail.ics").read_bytes()
    parsed = icalendar.Calendar.from_ical(merged)
    assert [c.name for c in parsed.subcomponents].count("VTIMEZONE") == 1
    events = parsed.walk("VEVENT")
    assert sorted(str(e["UID"]) for e in events) == [f"event-{n}@example.test" for n in range(3)]
    assert {str(e["SUMMARY"]) for e in events} == {f"Réunion {n}" for n in range(3)}
    assert str(parsed["VERSION"]) == "2.0"


def test_close_rebuilds_only_changed_collections(tmp_path: Path) -> None:
    session = ics_session(tmp_path)
    folder = session.ensure_container(calendar("Travail"))
    ref = session.put(folder, event("event-1"))
    session.close()
    merged = session.collection_file(folder)
    os.utime(merged, ns=(1, 1))
    os.utime(merged.with_suffix(""), ns=(0, 0))
    later = ics_session(tmp_path)
    later.close()
    assert merged.stat().st_mtime_ns == 1  # unchanged: not rewritten
    later.remove(ref)
    later.close()
    assert icalendar.Calendar.from_ical(merged.read_bytes()).walk("VEVENT") == []


def test_vcards_are_concatenated(tmp_path: Path) -> None:
    session = VcfArchiveTarget(tmp_path, durable=False).open(OWNER)
    folder = session.ensure_container(Container("contacts", OWNER.upn, "c", ("Contacts",)))
    cards = [contact(f"contact-{n}", name=f"Personne {n}") for n in range(2)]
    for card in cards:
        session.put(folder, card)
    session.close()
    merged_path = tmp_path / "data" / OWNER.upn / "contacts" / "Contacts.vcf"
    merged = merged_path.read_text(encoding="utf-8")
    parsed = list(vobject.readComponents(merged))
    assert sorted(card.fn.value for card in parsed) == ["Personne 0", "Personne 1"]


def test_put_rewrites_the_same_item_and_refuses_another(tmp_path: Path) -> None:
    session = ics_session(tmp_path)
    folder = session.ensure_container(calendar("Travail"))
    ref = session.put(folder, event("event-1"))
    assert session.put(folder, event("event-1", summary="Changé")) == ref
    assert b"Chang" in session._path(folder, ref.ref).read_bytes()
    with pytest.raises(Refused, match="another item"):
        session.put(folder, event("event-1", uid="other@example.test"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("2024/2025", "2024\u22152025"),
        ("..", "\u2024\u2024"),
        ("", "Calendar"),
        ("Été", "Été"),
    ],
)
def test_collection_names_are_safe_directory_names(name: str, expected: str) -> None:
    assert collection_dir_name(name, "Calendar") == expected


def test_long_names_stay_apart() -> None:
    first, second = "é" * 150 + "a", "é" * 150 + "b"
    names = {collection_dir_name(first, "x"), collection_dir_name(second, "x")}
    assert len(names) == 2 and all(len(n.encode()) <= 200 for n in names)


def test_unusable_owner_or_resource_names(tmp_path: Path) -> None:
    with pytest.raises(FatalError):
        IcsArchiveTarget(tmp_path).open(Owner(upn="../evil", source_id="x"))
    session = ics_session(tmp_path)
    folder = session.ensure_container(calendar("Travail"))
    bad = event("bad")
    bad = type(bad)(bad.source_id, bad.content, bad.fingerprint, {**bad.attrs, "resource": "../x"})
    with pytest.raises(SkipItem):
        session.put(folder, bad)


def test_check_reports_an_unwritable_root(tmp_path: Path) -> None:
    assert IcsArchiveTarget(tmp_path / "new" / "root").check() == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert IcsArchiveTarget(blocker / "root").check() != []
