"""The contract every mail target keeps (`TargetSession`), run against each of them.

Gaps a target declares in its `Capabilities` are skipped with "declared gap: ...".
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Container, Payload

from .conftest import TargetUnderTest

_ids = itertools.count(1)
DATE = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def message(
    message_id: str | None = "auto",
    body: str = "Bonjour, ceci est un test.",
    flags: tuple[str, ...] = (),
    source_id: str | None = None,
) -> Payload:
    """A CRLF MIME message as the mail mapper hands it over."""
    number = next(_ids)
    if message_id == "auto":
        message_id = f"conformance-{number}@example.test"
    header = f"Message-ID: <{message_id}>\r\n" if message_id else ""
    content = (
        f"From: Émile <emile@example.test>\r\nSubject: test {number}\r\n{header}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    return Payload(
        source_id=source_id or f"source-{number}",
        content=content,
        fingerprint=fingerprint_of(content),
        attrs={"flags": flags, "internal_date": DATE},
    )


def container(*path: str, roles: tuple[str | None, ...] = ()) -> Container:
    return Container(
        workload="mail",
        owner="owner@example.test",
        source_id="/".join(path),
        path=path,
        role=roles[-1] if roles else None,
        path_roles=roles or (None,) * len(path),
    )


INBOX = container("Boîte de réception", roles=("inbox",))


def test_minimal_message_round_trips(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(INBOX)
    content = b"Subject: \r\n\r\n"
    minimal = Payload("minimal", content, fingerprint_of(content), {})
    ref = session.put(folder, minimal)
    assert session.find(folder, minimal, frozenset()) == ref
    assert [(e.ref, e.size, e.fingerprint) for e in session.listing(folder)] == [
        (ref, len(content), minimal.fingerprint)
    ]


def test_empty_content_is_stored_or_skipped(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(INBOX)
    empty = Payload("empty", b"", fingerprint_of(b""), {})
    try:
        ref = session.put(folder, empty)
    except SkipItem as skip:
        assert "empty" in str(skip) or "zero" in str(skip)
        assert session.listing(folder) == []
    else:
        assert session.find(folder, empty, frozenset()) == ref


UNICODE_PATHS = [
    (("Boîte de réception", "Projets été"), ("inbox", None)),
    (("Archives", "2024/2025"), (None, None)),
    (("Archives", "v1.2 final"), (None, None)),
    (("🚀 Fusée", "Ça & là"), (None, None)),
    (("Éléments envoyés",), ("sentitems",)),
    # Cyrus refuses these characters in names: it gets look-alikes, the others the name
    (("Factures | 2024", 'Clients "VIP"; <Europe> {a\\b}'), (None, None)),
]


def test_unicode_folder_names(subject: TargetUnderTest) -> None:
    session = subject.session()
    stored = {}
    for path, roles in UNICODE_PATHS:
        folder = session.ensure_container(container(*path, roles=roles))
        assert session.ensure_container(container(*path, roles=roles)) == folder  # idempotent
        payload = message()
        stored[folder] = (payload, session.put(folder, payload))
    assert len(stored) == len(UNICODE_PATHS), "two source folders landed in one target folder"
    later = subject.session()
    for folder, (payload, ref) in stored.items():
        assert later.find(folder, payload, frozenset()) == ref
        assert [entry.ref for entry in later.listing(folder)] == [ref]


def test_find_after_put_makes_a_second_put_unneeded(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(container("Projets"))
    payload = message(flags=("\\Seen",))
    ref = session.put(folder, payload)
    assert session.find(folder, payload, frozenset()) == ref
    assert session.find(folder, payload, frozenset()) == ref
    assert [entry.ref for entry in session.listing(folder)] == [ref]


def test_find_after_crash_uses_a_new_session(subject: TargetUnderTest) -> None:
    crashed = subject.session()
    folder = crashed.ensure_container(container("Projets"))
    with_id, without_id = message(), message(message_id=None)
    refs = [crashed.put(folder, with_id), crashed.put(folder, without_id)]
    # no close(): the process died after the write, before the state recorded the ref
    resumed = subject.session()
    assert resumed.find(folder, with_id, frozenset()) == refs[0]
    assert resumed.find(folder, without_id, frozenset()) == refs[1]


def test_find_with_exclude_keeps_duplicates_apart(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(INBOX)
    first = message(message_id="same@example.test", body="first copy")
    second = message(message_id="same@example.test", body="second copy")
    assert first.fingerprint == second.fingerprint
    first_ref = session.put(folder, first)
    assert session.find(folder, second, frozenset({first_ref.ref})) is None
    second_ref = session.put(folder, second)
    assert second_ref != first_ref
    assert session.find(folder, second, frozenset({first_ref.ref})) == second_ref
    assert session.find(folder, first, frozenset({second_ref.ref})) == first_ref
    assert sorted(e.ref.ref for e in session.listing(folder)) == sorted(
        [first_ref.ref, second_ref.ref]
    )


def test_not_found(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(INBOX)
    assert session.find(folder, message(), frozenset()) is None
    kept, gone = message(), message(message_id=None)
    session.put(folder, kept)
    ref = session.put(folder, gone)
    assert session.find(folder, message(), frozenset()) is None
    session.remove(ref)
    session.remove(ref)  # already gone: no error
    assert session.find(folder, gone, frozenset()) is None
    assert [entry.fingerprint for entry in session.listing(folder)] == [kept.fingerprint]


def test_update_sets_flags(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(INBOX)
    payload = message(flags=("\\Seen",))
    ref = session.put(folder, payload)
    assert subject.flags_of(ref) == {"\\Seen"}
    changed = Payload(
        payload.source_id,
        payload.content,
        payload.fingerprint,
        {"flags": ("\\Flagged", "\\Answered", "$Forwarded"), "internal_date": DATE},
    )
    updated = session.update(ref, changed)
    assert updated == ref
    assert subject.flags_of(updated) == {"\\Flagged", "\\Answered", "$Forwarded"}


def test_put_keeps_flags_and_internal_date(subject: TargetUnderTest) -> None:
    if not subject.target.capabilities.keeps_timestamps:
        pytest.skip("declared gap: keeps_timestamps is False")
    session = subject.session()
    folder = session.ensure_container(INBOX)
    ref = session.put(folder, message(flags=("\\Seen", "\\Draft")))
    assert subject.flags_of(ref) == {"\\Seen", "\\Draft"}
    assert subject.date_of(ref) == DATE


def test_move(subject: TargetUnderTest) -> None:
    if not subject.target.capabilities.moves:
        pytest.skip("declared gap: moves is False")
    session = subject.session()
    source = session.ensure_container(INBOX)
    destination = session.ensure_container(container("Classé", "Été 2024"))
    payload = message(flags=("\\Seen", "Projet_X"))
    ref = session.put(source, payload)
    moved = session.move(ref, destination)
    assert moved.folder == destination
    assert session.listing(source) == []
    assert [entry.ref for entry in session.listing(destination)] == [moved]
    assert session.find(destination, payload, frozenset()) == moved
    assert "\\Seen" in subject.flags_of(moved)


def test_listing_sizes_and_fingerprints(subject: TargetUnderTest) -> None:
    session = subject.session()
    folder = session.ensure_container(container("Listing"))
    payloads = [message(), message(message_id=None), message(body="é" * 5000)]
    refs = [session.put(folder, payload) for payload in payloads]
    listed = {entry.ref: (entry.fingerprint, entry.size) for entry in session.listing(folder)}
    assert listed == {
        ref: (payload.fingerprint, payload.size)
        for ref, payload in zip(refs, payloads, strict=True)
    }
    assert session.listing(session.ensure_container(container("Vide"))) == []


def test_declared_size_limit_skips(subject: TargetUnderTest) -> None:
    limit = subject.target.capabilities.max_item_bytes
    if limit is None:
        pytest.skip("no max_item_bytes declared: nothing to exceed")
    session = subject.session()
    folder = session.ensure_container(INBOX)
    with pytest.raises(SkipItem, match=str(limit)):
        session.put(folder, message(body="x" * (limit + 1)))
    assert session.listing(folder) == []
