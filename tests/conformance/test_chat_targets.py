"""The shared conformance suite for chat targets: Matrix (application service and bot) and
the chat archive. Each gets a fresh team and the same hand-written payloads in the mapper's
contract shape; the suite checks the `TargetSession` contract, not one protocol's details.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hirondelle.migrator.model import Container, Owner
from hirondelle.migrator.protocols import Target, TargetSession
from hirondelle.tests.matrix.payloads import BASE_TS, channel, chat_payload, team


@dataclass
class ChatUnderTest:
    name: str
    target: Target
    owner: Owner
    sessions: list[TargetSession] = field(default_factory=list)

    def session(self) -> TargetSession:
        session = self.target.open(self.owner)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def _team() -> Owner:
    return team(f"Équipe {uuid.uuid4().hex[:6]}", f"team-{uuid.uuid4().hex}")


def _appservice(request: pytest.FixtureRequest, tmp_path: Path) -> ChatUnderTest:
    from hirondelle.connectors.matrix import MatrixSettings, MatrixTarget
    from hirondelle.tests.servers import SYNAPSE_AS_TOKEN, SynapseServer

    server: SynapseServer = request.getfixturevalue("synapse")
    token = tmp_path / "as-token"
    token.write_text(SYNAPSE_AS_TOKEN, encoding="utf-8")
    token.chmod(0o600)
    settings = MatrixSettings(server.url, server.server_name, as_token_file=token)
    return ChatUnderTest("matrix-appservice", MatrixTarget(settings), _team())


def _bot(request: pytest.FixtureRequest, tmp_path: Path) -> ChatUnderTest:
    from hirondelle.connectors.matrix import MatrixSettings, MatrixTarget
    from hirondelle.tests.servers import SynapseServer

    server: SynapseServer = request.getfixturevalue("synapse")
    token = tmp_path / "bot-token"
    token.write_text(server.new_user().access_token, encoding="utf-8")
    token.chmod(0o600)
    settings = MatrixSettings(
        server.url,
        server.server_name,
        mode="bot",
        access_token_file=token,
        room_alias_prefix="tchap_",
        bot_rate=1000.0,
    )
    return ChatUnderTest("matrix-bot", MatrixTarget(settings), _team())


def _archive(request: pytest.FixtureRequest, tmp_path: Path) -> ChatUnderTest:
    archive = pytest.importorskip(
        "hirondelle.connectors.archive_chat", reason="the chat archive target is not written yet"
    )
    return ChatUnderTest("archive", archive.ChatArchiveTarget(tmp_path / "archive"), _team())


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], ChatUnderTest]] = {
    "matrix-appservice": _appservice,
    "matrix-bot": _bot,
    "archive": _archive,
}


@pytest.fixture(params=sorted(FACTORIES))
def chat_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChatUnderTest]:
    subject = FACTORIES[request.param](request, tmp_path)
    try:
        yield subject
    finally:
        subject.close()


def _channel(subject: ChatUnderTest, name: str = "Général ☀") -> Container:
    team_name = subject.owner.display_name
    return channel(team_name, name, f"{subject.owner.source_id}-{name}")


def test_container_is_idempotent_with_unicode_names(chat_subject: ChatUnderTest) -> None:
    container = _channel(chat_subject)
    first = chat_subject.session().ensure_container(container)
    assert chat_subject.session().ensure_container(container) == first


def test_second_put_finds_the_same(chat_subject: ChatUnderTest) -> None:
    session = chat_subject.session()
    folder = session.ensure_container(_channel(chat_subject))
    payload = chat_payload("c1", "héllo 👋", reactions=["👍"])
    ref = session.put(folder, payload)
    assert session.find(folder, payload, frozenset()) == ref
    assert session.put(folder, payload) == ref
    assert [e.fingerprint for e in session.listing(folder)] == ["teams:c1"]


def test_find_after_crash_uses_a_new_session(chat_subject: ChatUnderTest) -> None:
    session = chat_subject.session()
    folder = session.ensure_container(_channel(chat_subject))
    root = chat_payload("c2", "root")
    reply = chat_payload("c2/r", "reply", root="c2", ts=BASE_TS + 1)
    refs = [session.put(folder, root), session.put(folder, reply)]
    session.close()
    fresh = chat_subject.session()
    assert [fresh.find(folder, p, frozenset()) for p in (root, reply)] == refs
    assert fresh.find(folder, root, frozenset({refs[0].ref})) is None
    listed = {e.fingerprint: e.ref for e in fresh.listing(folder)}
    assert listed == {"teams:c2": refs[0], "teams:c2/r": refs[1]}


def test_not_found_and_remove(chat_subject: ChatUnderTest) -> None:
    session = chat_subject.session()
    folder = session.ensure_container(_channel(chat_subject))
    assert session.find(folder, chat_payload("never", "x"), frozenset()) is None
    payload = chat_payload("c3", "to delete")
    ref = session.put(folder, payload)
    session.remove(ref)
    session.remove(ref)  # already gone: fine
    assert chat_subject.session().find(folder, payload, frozenset()) is None
    assert chat_subject.session().listing(folder) == []


def test_update_keeps_the_ref(chat_subject: ChatUnderTest) -> None:
    session = chat_subject.session()
    folder = session.ensure_container(_channel(chat_subject))
    ref = session.put(folder, chat_payload("c4", "draft"))
    assert session.update(ref, chat_payload("c4", "final (edited)")) == ref
    assert [e.ref for e in chat_subject.session().listing(folder)] == [ref]


def test_a_batch_lands_whole_and_in_order(chat_subject: ChatUnderTest) -> None:
    """A batch (Matrix: later events on a second connection) returns once every event of
    every item is in the room: a fresh session finds each item complete."""
    from hirondelle.migrator.model import TargetRef
    from hirondelle.migrator.writer import put_batch

    session = chat_subject.session()
    folder = session.ensure_container(_channel(chat_subject))
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
