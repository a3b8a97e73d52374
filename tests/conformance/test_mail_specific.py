"""What only mail targets keep, beyond the contract (test_contract.py): a minimal message,
two messages with one Message-ID, flags and internal dates.

Gaps a target declares in its `Capabilities` are skipped with "declared gap: ...".
"""

from __future__ import annotations

import pytest

from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.model import Payload

from .items import DATE, INBOX, container, message
from .subject import TargetUnderTest


def test_minimal_message_round_trips(mail_subject: TargetUnderTest) -> None:
    session = mail_subject.session()
    folder = session.ensure_container(INBOX)
    content = b"Subject: \r\n\r\n"
    minimal = Payload("minimal", content, fingerprint_of(content), {})
    ref = session.put(folder, minimal)
    assert session.find(folder, minimal, frozenset()) == ref
    assert [(e.ref, e.size, e.fingerprint) for e in session.listing(folder)] == [
        (ref, len(content), minimal.fingerprint)
    ]


def test_find_with_exclude_keeps_duplicates_apart(mail_subject: TargetUnderTest) -> None:
    session = mail_subject.session()
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


def test_update_sets_flags(mail_subject: TargetUnderTest) -> None:
    session = mail_subject.session()
    folder = session.ensure_container(INBOX)
    payload = message(flags=("\\Seen",))
    ref = session.put(folder, payload)
    assert mail_subject.read_back(ref).flags == {"\\Seen"}
    changed = Payload(
        payload.source_id,
        payload.content,
        payload.fingerprint,
        {"flags": ("\\Flagged", "\\Answered", "$Forwarded"), "internal_date": DATE},
    )
    updated = session.update(ref, changed)
    assert updated == ref
    assert mail_subject.read_back(updated).flags == {"\\Flagged", "\\Answered", "$Forwarded"}


def test_put_keeps_flags_and_internal_date(mail_subject: TargetUnderTest) -> None:
    if not mail_subject.capabilities.keeps_timestamps:
        pytest.skip("declared gap: keeps_timestamps is False")
    session = mail_subject.session()
    folder = session.ensure_container(INBOX)
    ref = session.put(folder, message(flags=("\\Seen", "\\Draft")))
    stored = mail_subject.read_back(ref)
    assert stored.flags == {"\\Seen", "\\Draft"}
    assert stored.date == DATE


def test_a_message_appended_alone_is_found_again_and_again(mail_subject: TargetUnderTest) -> None:
    """One APPEND (not a batch), then `find` twice in that session and once in a new one:
    the same copy each time, never a second one."""
    session = mail_subject.session()
    folder = session.ensure_container(container("Projets"))
    payload = message(flags=("\\Seen",))
    ref = session.put(folder, payload)
    assert session.find(folder, payload, frozenset()) == ref
    assert session.find(folder, payload, frozenset()) == ref
    assert mail_subject.session().find(folder, payload, frozenset()) == ref
    assert [entry.ref for entry in session.listing(folder)] == [ref]


def test_a_move_into_a_nested_folder_keeps_flags_and_keywords(
    mail_subject: TargetUnderTest,
) -> None:
    """A two-level destination with accents (the hierarchy delimiter and modified UTF-7 on
    the MOVE's destination)."""
    if not mail_subject.capabilities.moves:
        pytest.skip("declared gap: moves is False")
    session = mail_subject.session()
    source = session.ensure_container(INBOX)
    destination = session.ensure_container(container("Classé", "Été 2024"))
    payload = message(flags=("\\Seen", "Projet_X"))
    ref = session.put(source, payload)
    moved = session.move(ref, destination)
    assert moved.folder == destination
    assert session.listing(source) == []
    assert [entry.ref for entry in session.listing(destination)] == [moved]
    assert session.find(destination, payload, frozenset()) == moved
    flags = mail_subject.read_back(moved).flags
    assert flags is not None and "\\Seen" in flags
