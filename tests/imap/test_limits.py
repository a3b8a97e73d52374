"""Quota, size limits and batches against a real Dovecot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hirondelle.connectors.imap import ImapSession, ImapSettings, ImapTarget
from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.errors import OwnerFailed, SkipItem
from hirondelle.migrator.model import Owner, Payload, TargetRef
from hirondelle.tests.servers import CyrusServer, DovecotServer, MailUser


def payload(number: int, body_bytes: int = 100) -> Payload:
    content = (
        f"Message-ID: <limits-{number}@example.test>\r\nSubject: {number}\r\n\r\n".encode()
        + b"x" * body_bytes
        + b"\r\n"
    )
    attrs = {"flags": ("\\Seen",), "internal_date": datetime(2022, 1, 1, tzinfo=UTC)}
    return Payload(f"s{number}", content, fingerprint_of(content), attrs)


def open_session(
    server: DovecotServer, user: MailUser, tmp_path: Path, **options: Any
) -> ImapSession:
    settings = ImapSettings(
        host=server.host,
        port=server.port,
        security="plain",
        password_file=server.password_file(tmp_path / "passwords", user),
        **options,
    )
    return ImapTarget(settings).open(Owner(upn=user.login, source_id="x"))


def test_over_quota_fails_the_owner_and_names_the_mailbox(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    user = dovecot.new_user(quota_bytes=3000)
    session = open_session(dovecot, user, tmp_path)
    session.put("INBOX", payload(1, 1000))
    with pytest.raises(OwnerFailed, match="quota") as raised:
        session.put("INBOX", payload(2, 2500))
    assert user.login in str(raised.value) and "INBOX" in str(raised.value)
    assert "raise its quota" in str(raised.value)
    assert len(dovecot.read_mailbox(user.login, "INBOX")) == 1


def test_message_over_server_limit_is_skipped(dovecot: DovecotServer, tmp_path: Path) -> None:
    user = dovecot.new_user(max_message_bytes=2000)
    session = open_session(dovecot, user, tmp_path)
    big = payload(1, 5000)
    with pytest.raises(SkipItem, match=f"{big.size} bytes"):
        session.put("INBOX", big)
    assert session.put("INBOX", payload(2)).folder == "INBOX"  # the session still works


def test_message_over_configured_limit_is_skipped_without_sending(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    user = dovecot.new_user()
    session = open_session(dovecot, user, tmp_path, max_message_bytes=1000)
    with pytest.raises(SkipItem, match="limit of 1000 bytes"):
        session.put("INBOX", payload(1, 2000))
    assert dovecot.read_mailbox(user.login, "INBOX") == []


def test_batch_with_one_refused_message_stores_the_others(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    user = dovecot.new_user(max_message_bytes=2000)
    session = open_session(dovecot, user, tmp_path)
    assert {"MULTIAPPEND", "LITERAL+"} <= session.server_caps
    batch = [payload(1), payload(2, 5000), payload(3)]
    results = session.put_many("INBOX", batch)
    assert isinstance(results[0], TargetRef) and isinstance(results[2], TargetRef)
    assert isinstance(results[1], SkipItem)
    stored = dovecot.read_mailbox(user.login, "INBOX")
    assert [m.content for m in stored] == [batch[0].content, batch[2].content]
    found = [session.find("INBOX", p, frozenset()) for p in (batch[0], batch[2])]
    assert [f"{r.ref}" for r in results if isinstance(r, TargetRef)] == [
        f.ref if f else None for f in found
    ]


def test_batches_keep_order_flags_and_dates(dovecot: DovecotServer, tmp_path: Path) -> None:
    user = dovecot.new_user()
    session = open_session(dovecot, user, tmp_path, batch_messages=4)
    batch = [payload(n) for n in range(10)]
    refs = session.put_many("INBOX", batch)
    stored = dovecot.read_mailbox(user.login, "INBOX")
    assert [m.content for m in stored] == [p.content for p in batch]
    targets = [r for r in refs if isinstance(r, TargetRef)]
    assert [f"{r.ref}" for r in targets] == [
        f"{r.ref.split(':')[0]}:{m.uid}"
        for r, m in zip(targets, stored, strict=True)  # an ItemError makes zip fail
    ]
    assert all(m.flags == {"\\Seen"} for m in stored)
    assert all(m.internal_date == datetime(2022, 1, 1, tzinfo=UTC) for m in stored)


def test_a_mailbox_full_of_keywords_keeps_the_message_without_its_new_keyword(
    cyrus: CyrusServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cyrus keeps at most 100 keywords per mailbox ("Too many user flags in mailbox"):
    the 101st category is left out, never the message, on APPEND as on a flag update."""
    user = cyrus.new_user()
    settings = ImapSettings(
        host=cyrus.host,
        port=cyrus.port,
        security="plain",
        password_file=cyrus.password_file(tmp_path / "passwords", user),
    )
    session = ImapTarget(settings).open(Owner(upn=user.login, source_id="x"))
    payloads = [
        Payload(
            f"m{n}",
            f"Subject: {n}\r\n\r\nbody\r\n".encode(),
            f"sha256:{n}",
            {"flags": ("\\Seen", f"Category{n}")},
        )
        for n in range(101)
    ]
    results = session.put_many("INBOX", payloads)
    assert all(isinstance(result, TargetRef) for result in results)
    stored = {m.content: m.flags for m in cyrus.read_mailbox(user.login, "INBOX")}
    assert len(stored) == 101
    assert stored[b"Subject: 100\r\n\r\nbody\r\n"] == {"\\Seen"}
    assert stored[b"Subject: 99\r\n\r\nbody\r\n"] == {"\\Seen", "Category99"}
    assert "stored without Category100" in caplog.text
    first = results[0]
    assert isinstance(first, TargetRef)
    changed = Payload("m0", payloads[0].content, "sha256:0", {"flags": ("\\Flagged", "New")})
    session.update(first, changed)
    session.close()
    stored = {m.content: m.flags for m in cyrus.read_mailbox(user.login, "INBOX")}
    assert stored[b"Subject: 0\r\n\r\nbody\r\n"] == {"\\Flagged"}
