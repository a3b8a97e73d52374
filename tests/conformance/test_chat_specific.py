"""What only chat targets keep, beyond the contract (test_contract.py): an edit keeps the
message's ref, and a batch lands whole and in order. Run against Matrix (application
service and bot) on a real Synapse, and against the chat archive.
"""

from __future__ import annotations

from hirondelle.migrator.model import TargetRef
from hirondelle.migrator.writer import put_batch
from hirondelle.tests.matrix.payloads import BASE_TS, chat_payload

from .subject import TargetUnderTest


def test_update_keeps_the_ref(chat_subject: TargetUnderTest) -> None:
    session = chat_subject.session()
    folder = session.ensure_container(chat_subject.container("Général ☀"))
    ref = session.put(folder, chat_payload("c4", "draft"))
    assert session.update(ref, chat_payload("c4", "final (edited)")) == ref
    assert [e.ref for e in chat_subject.session().listing(folder)] == [ref]


def test_a_batch_lands_whole_and_in_order(chat_subject: TargetUnderTest) -> None:
    """A batch (Matrix: later events on a second connection) returns once every event of
    every item is in the room: a fresh session finds each item complete."""
    session = chat_subject.session()
    folder = session.ensure_container(chat_subject.container("Général ☀"))
    payloads = [
        chat_payload("b1", "root", reactions=["👍", "🎉"]),
        chat_payload("b1/r", "reply", root="b1", ts=BASE_TS + 1, reactions=["👀"]),
        chat_payload("b2", "second", ts=BASE_TS + 2, reactions=["👍"]),
    ]
    refs = put_batch(session, folder, payloads)
    assert all(isinstance(ref, TargetRef) for ref in refs)
    fresh = chat_subject.session()
    assert [fresh.find(folder, p, frozenset()) for p in payloads] == refs
    assert [session.put(folder, p) for p in payloads] == refs  # nothing sent twice
    assert sorted(e.fingerprint for e in fresh.listing(folder)) == [
        "teams:b1",
        "teams:b1/r",
        "teams:b2",
    ]
