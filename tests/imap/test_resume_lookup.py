"""Finding a message after an interruption: by its exact bytes, whatever its Message-ID."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hirondelle.connectors.imap import ImapSession, ImapSettings, ImapTarget
from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.model import Owner, Payload
from hirondelle.tests.servers import DovecotServer, MailUser


def open_session(server: DovecotServer, user: MailUser, tmp_path: Path) -> ImapSession:
    passwords = server.password_file(tmp_path / "passwords", user)
    settings = ImapSettings(
        host=server.host, port=server.port, security="plain", password_file=passwords
    )
    return ImapTarget(settings).open(Owner(upn=user.login, source_id="x"))


def message(message_id: str, body: bytes, newline: bytes = b"\r\n") -> Payload:
    content = newline.join(
        [f"Message-ID: {message_id}".encode(), b"Subject: resume", b"", body, b""]
    )
    attrs = {"flags": (), "internal_date": datetime(2023, 5, 1, tzinfo=UTC)}
    return Payload("s1", content, fingerprint_of(content), attrs)


def test_a_message_id_with_spaces_is_found_again(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    session = open_session(dovecot, mail_user, tmp_path)
    spaced = message("<part one @ example.test>", b"first")
    assert spaced.fingerprint == "mid:partone@example.test"
    ref = session.put("INBOX", spaced)
    assert session.find("INBOX", spaced, frozenset()) == ref


def test_another_message_with_the_same_message_id_is_not_taken(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    session = open_session(dovecot, mail_user, tmp_path)
    first = message("<same@example.test>", b"the first text")
    session.put("INBOX", first)
    second = message("<same@example.test>", b"another text, same id")
    assert session.find("INBOX", second, frozenset()) is None
    ref = session.put("INBOX", second)
    assert session.find("INBOX", second, frozenset()) == ref


def test_the_size_recorded_is_the_size_stored(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    """A message with bare LF line endings is stored with CRLF: verify compares that."""
    session = open_session(dovecot, mail_user, tmp_path)
    bare = message("<lf@example.test>", b"line one\nline two", newline=b"\n")
    ref = session.put("INBOX", bare)
    (entry,) = session.listing("INBOX")
    assert ref.stored_size == entry.size == bare.size + bare.content.count(b"\n")
    found = session.find("INBOX", bare, frozenset())
    assert found == ref and found is not None and found.stored_size == entry.size
