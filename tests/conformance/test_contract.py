"""The contract every target keeps (`TargetSession`), run against each registered target
on its real server: what the engine relies on, whatever the workload.

Checks that depend on what a target can do read its `Capabilities`; a gap it declares is
skipped with "declared gap: ...". A workload's own checks are in test_<workload>_*.py.
"""

from __future__ import annotations

import pytest

from hirondelle.migrator.errors import ItemError, SkipItem
from hirondelle.migrator.model import Container, Entry, Item, Payload, TargetRef
from hirondelle.migrator.verify import Difference, compare
from hirondelle.migrator.writer import put_batch
from hirondelle.state.schema import DONE
from hirondelle.state.store import ItemState

from .subject import TargetUnderTest


def listed_fingerprint(subject: TargetUnderTest, payload: Payload) -> str:
    """The fingerprint `verify` sees for `payload`: "" for a content checksum the target
    does not keep (`Capabilities.checksums`)."""
    if subject.items.content_fingerprints and not subject.capabilities.checksums:
        return ""
    return payload.fingerprint


def listed_as(subject: TargetUnderTest, entry: Entry, payload: Payload) -> bool:
    """The entry is what `verify` must see for `payload`: its fingerprint, and its size
    (-1 where the target cannot tell it)."""
    size = payload.size if subject.sizes_listed else -1
    return (entry.fingerprint, entry.size) == (listed_fingerprint(subject, payload), size)


def differences(
    container: Container, folder: str, written: dict[TargetRef, Payload], listed: list[Entry]
) -> list[Difference]:
    """What `verify` reports for a container whose items were all written as `written`."""
    rows = [
        ItemState(n, 0, p.source_id, "v1", DONE, folder, ref.ref, p.fingerprint, p.size, {})
        for n, (ref, p) in enumerate(written.items())
    ]
    source = [Item(p.source_id, "v1") for p in written.values()]
    return compare(container, source, rows, listed).differences


def count(subject: TargetUnderTest, wanted: int) -> int:
    """How many items a test writes into one container: one where the target keeps one
    item per owner (`Capabilities.single_item`)."""
    return 1 if subject.capabilities.single_item else wanted


def test_unicode_container_names(subject: TargetUnderTest) -> None:
    """A container is made once and kept apart from every look-alike name."""
    if subject.capabilities.single_item:
        pytest.skip("declared gap: single_item (every container of an owner is its one place)")
    session = subject.session()
    containers = subject.items.unicode_containers()
    stored = {}
    for container in containers:
        folder = session.ensure_container(container)
        assert session.ensure_container(container) == folder  # idempotent
        payload = subject.items.item()
        stored[folder] = (payload, session.put(folder, payload))
    assert len(stored) == len(containers), "two source containers landed in one"
    later = subject.session()
    for container, (folder, (payload, ref)) in zip(containers, stored.items(), strict=True):
        assert later.ensure_container(container) == folder
        assert later.find(folder, payload, frozenset()) == ref
        assert [entry.ref for entry in later.listing(folder)] == [ref]


def test_batch_find_after_crash_and_listing(subject: TargetUnderTest) -> None:
    """A batch, written as the engine writes a page (`put_many` where the session has it,
    else one `put` after the other), lands whole: a second put does not write again, a new
    session finds each item complete (the first one died before the state recorded it),
    the listing shows it, and `verify` finds no difference."""
    crashed = subject.session()
    container = subject.container("Projets")
    folder = crashed.ensure_container(container)
    payloads = subject.items.items(count(subject, 3))
    written = put_batch(crashed, folder, payloads)
    refs = [ref for ref in written if isinstance(ref, TargetRef)]
    assert refs == written
    assert len(set(refs)) == len(refs)
    for payload, ref in zip(payloads, refs, strict=True):
        assert crashed.find(folder, payload, frozenset()) == ref
        if subject.same_ref_on_second_put:
            assert crashed.put(folder, payload) == ref
    # no close(): the process died after the writes, before the state recorded the refs
    resumed = subject.session()
    assert [resumed.find(folder, p, frozenset()) for p in payloads] == refs  # found again
    assert resumed.find(folder, payloads[0], frozenset({refs[0].ref})) is None
    listed = resumed.listing(folder)
    assert sorted(entry.ref.ref for entry in listed) == sorted(ref.ref for ref in refs)
    by_ref = {entry.ref: entry for entry in listed}
    for payload, ref in zip(payloads, refs, strict=True):
        assert listed_as(subject, by_ref[ref], payload), (by_ref[ref], payload.size)
    assert differences(container, folder, dict(zip(refs, payloads, strict=True)), listed) == []
    subject.end(crashed)  # closing changes nothing of what was written
    assert [subject.session().find(folder, p, frozenset()) for p in payloads] == refs


def test_not_found_and_remove(subject: TargetUnderTest) -> None:
    """A new container lists nothing; an item never written is not found; a removed one
    is gone, and a second removal is fine."""
    session = subject.session()
    folder = session.ensure_container(subject.container("Projets"))
    assert session.listing(folder) == []
    assert session.find(folder, subject.items.item(), frozenset()) is None
    *kept, gone = subject.items.items(count(subject, 2))
    for payload in kept:
        session.put(folder, payload)
    ref = session.put(folder, gone)
    assert session.find(folder, subject.items.item(), frozenset()) is None
    session.remove(ref)
    session.remove(ref)  # already gone: no error
    assert session.find(folder, gone, frozenset()) is None
    later = subject.session()
    assert later.find(folder, gone, frozenset()) is None
    expected = [listed_fingerprint(subject, payload) for payload in kept]
    assert [entry.fingerprint for entry in later.listing(folder)] == expected


def test_empty_item_is_stored_or_skipped(subject: TargetUnderTest) -> None:
    """The empty item is stored, or declared not carried (`SkipItem`, saying why), never
    half-written; refused as a failure only where the server itself refuses it."""
    session = subject.session()
    folder = session.ensure_container(subject.container("Projets"))
    empty = subject.items.empty()
    try:
        ref = session.put(folder, empty)
    except ItemError as refused:
        if isinstance(refused, SkipItem):
            assert any(words in str(refused) for words in subject.items.empty_refusal)
        else:
            assert subject.items.empty_refused_by_server, refused
        assert session.listing(folder) == []
    else:
        assert session.find(folder, empty, frozenset()) == ref
        assert [entry.ref for entry in session.listing(folder)] == [ref]
        if subject.reads_back:
            assert subject.read_back(ref).content in (None, b"")


def test_declared_size_limit(subject: TargetUnderTest) -> None:
    """An item over the declared `max_item_bytes` is skipped with the reason, and nothing
    is written."""
    limit = subject.capabilities.max_item_bytes
    if limit is None:
        pytest.skip("declared gap: no max_item_bytes (nothing to exceed)")
    session = subject.session()
    folder = session.ensure_container(subject.container("Projets"))
    reason = subject.over_limit_reason or str(limit)
    with pytest.raises(SkipItem, match=reason):
        session.put(folder, subject.items.oversized(limit))
    assert session.listing(folder) == []


def test_move_or_declared_gap(subject: TargetUnderTest) -> None:
    """A target that moves takes the item with what it carries (flags, dates); one that
    declares it cannot refuses with `SkipItem` (the engine then writes the item afresh)."""
    session = subject.session()
    source = session.ensure_container(subject.container("Source"))
    destination = session.ensure_container(subject.container("Classé été"))
    payload = subject.items.item()
    ref = session.put(source, payload)
    if not subject.capabilities.moves:
        with pytest.raises(SkipItem):
            session.move(ref, destination)
        pytest.skip("declared gap: moves is False (the engine writes the item afresh)")
    before = subject.read_back(ref)
    moved = session.move(ref, destination)
    assert moved.folder == destination
    assert session.listing(source) == []
    assert [entry.ref for entry in session.listing(destination)] == [moved]
    assert session.find(destination, payload, frozenset()) == moved
    if subject.reads_back:
        assert subject.read_back(moved) == before
