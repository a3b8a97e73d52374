"""What only chat targets keep, beyond the contract (test_contract.py): an edit keeps the
message's ref. Run against Matrix (application service and bot) on a real Synapse, and
against the chat archive.
"""

from __future__ import annotations

from hirondelle.tests.matrix.payloads import chat_payload

from .subject import TargetUnderTest


def test_update_keeps_the_ref(chat_subject: TargetUnderTest) -> None:
    session = chat_subject.session()
    folder = session.ensure_container(chat_subject.container("Général ☀"))
    ref = session.put(folder, chat_payload("c4", "draft"))
    assert session.update(ref, chat_payload("c4", "final (edited)")) == ref
    assert [e.ref for e in chat_subject.session().listing(folder)] == [ref]
