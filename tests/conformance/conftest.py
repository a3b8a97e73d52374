"""Targets under test for the shared conformance suite, one factory per mail target.

A factory gives a `TargetUnderTest`: the target, an owner with an empty mailbox, and a way
to read back what the protocol itself cannot show (flags, internal date). Adding a mail
target to the suite is adding one factory to `FACTORIES`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from hirondelle.migrator.model import Owner, TargetRef
from hirondelle.migrator.protocols import Target, TargetSession


@dataclass
class TargetUnderTest:
    """One target with a fresh owner, and read-back probes for the suite's assertions."""

    name: str
    target: Target
    owner: Owner
    flags_of: Callable[[TargetRef], frozenset[str]]
    date_of: Callable[[TargetRef], datetime | None]
    sessions: list[TargetSession] = field(default_factory=list)

    def session(self) -> TargetSession:
        """A new session for the owner, closed after the test."""
        session = self.target.open(self.owner)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def _imap(server_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    """Dovecot with per-user passwords; Cyrus through its administrator (SASL authzid)."""
    from hirondelle.connectors.imap import ImapSettings, ImapTarget
    from hirondelle.tests.servers import ImapReadBack, StoredMessage

    server: ImapReadBack = request.getfixturevalue(server_name)
    user = server.new_user()
    if server_name == "dovecot":
        login: dict[str, object] = {
            "password_file": server.password_file(tmp_path / "passwords", user)
        }
    else:
        secret = tmp_path / "master"
        secret.write_text(server.master_password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        login = {
            "master_user": server.master_user,
            "master_password_file": secret,
            "master_login": server.master_login,
        }
    settings = ImapSettings(
        host=server.host,
        port=server.port,
        security="plain",
        max_message_bytes=256 * 1024,
        **login,  # type: ignore[arg-type]
    )

    def stored(ref: TargetRef) -> StoredMessage:
        uid = int(ref.ref.partition(":")[2])
        (message,) = [m for m in server.read_mailbox(user.login, ref.folder) if m.uid == uid]
        return message

    return TargetUnderTest(
        name=f"imap-{server_name}",
        target=ImapTarget(settings),
        owner=Owner(upn=user.login, source_id="imap-owner"),
        flags_of=lambda ref: stored(ref).flags,
        date_of=lambda ref: stored(ref).internal_date,
    )


def _archive(request: pytest.FixtureRequest, tmp_path: Path) -> TargetUnderTest:
    from hirondelle.connectors.archive import (
        ArchiveSession,
        ArchiveTarget,
        MaildirFile,
        letters_to_flags,
    )

    target = ArchiveTarget(tmp_path / "archive", durable=False)
    owner = Owner(upn="carol@example.test", source_id="archive-owner")

    def message_file(ref: TargetRef) -> MaildirFile:
        session = target.open(owner)
        assert isinstance(session, ArchiveSession)
        (path,) = (session.folder_dir(ref.folder) / "cur").glob(f"{ref.ref}:2,*")
        return MaildirFile.parse(path)

    def flags_of(ref: TargetRef) -> frozenset[str]:
        found = message_file(ref)
        return frozenset(letters_to_flags(found.letters, found.path.parent.parent))

    def date_of(ref: TargetRef) -> datetime | None:
        return datetime.fromtimestamp(message_file(ref).path.stat().st_mtime).astimezone()

    return TargetUnderTest("archive", target, owner, flags_of, date_of)


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], TargetUnderTest]] = {
    "imap-dovecot": functools.partial(_imap, "dovecot"),
    "imap-cyrus": functools.partial(_imap, "cyrus"),
    "archive": _archive,
}


# Every (workload, kind) the conformance suites run against a real server or folder
# (test_mail_targets, test_dav_targets, test_files_targets, test_chat_targets): the
# registry's test (tests/test_registry.py) fails for a registered target missing here.
CONTRACT_TARGETS = frozenset(
    {
        ("mail", "imap"),
        ("mail", "archive"),
        ("calendar", "caldav"),
        ("calendar", "archive"),
        ("contacts", "carddav"),
        ("contacts", "archive"),
        ("files", "webdav"),
        ("files", "archive"),
        ("chat", "matrix"),
        ("chat", "archive"),
    }
)


@pytest.fixture(params=sorted(FACTORIES))
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetUnderTest]:
    """Each registered target in turn, with an owner whose mailbox is empty."""
    under_test = FACTORIES[request.param](request, tmp_path)
    try:
        yield under_test
    finally:
        under_test.close()
