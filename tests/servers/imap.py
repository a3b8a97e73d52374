"""What the IMAP servers share: the master user, the messages read back, and the
parametrisation that runs a test against each of them."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pytest

from hirondelle.connectors.imap_wire import parse_fetch, parse_list, quote
from hirondelle.mappings.mail_folders import imap_utf7_decode, imap_utf7_encode
from hirondelle.tests.servers.accounts import (
    MailUser,
    PasswordFiles,
)
from hirondelle.tests.servers.process import (
    HOST,
    Server,
)

MASTER_USER = "admin"
MASTER_PASSWORD = "admin-master-pw"
STANDARD_SPECIAL_USE: Mapping[str, str] = {
    "\\Sent": "Sent",
    "\\Trash": "Trash",
    "\\Drafts": "Drafts",
    "\\Junk": "Junk",
}


@dataclass(frozen=True)
class StoredMessage:
    """A message read back from the server, for assertions."""

    uid: int
    flags: frozenset[str]
    internal_date: datetime | None
    content: bytes


def greeted(port: int) -> bool:
    """True once the IMAP greeting arrives (the login processes are up)."""
    try:
        conn = imaplib.IMAP4(HOST, port, timeout=2)
    except (OSError, imaplib.IMAP4.error):
        return False
    conn.logout()
    return True


class ImapReadBack(PasswordFiles, Server):
    """What the tests read back from an IMAP server, logged in as a user through the
    server's master (admin) credential with SASL PLAIN: authorization id = the user,
    authentication id = the master user (RFC 4616), a form Dovecot and Cyrus both take."""

    master_user: str
    master_password: str
    master_login = "authzid"  # the target's `master_login` setting this server takes
    delimiter = "/"  # its hierarchy delimiter

    def new_user(
        self, quota_bytes: int | None = None, max_message_bytes: int | None = None
    ) -> MailUser:
        raise NotImplementedError

    @contextmanager
    def client(self, login: str) -> Iterator[imaplib.IMAP4]:
        """A plain IMAP connection logged in as `login` through the master user."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        secret = f"{login}\0{self.master_user}\0{self.master_password}".encode()
        try:
            conn.authenticate("PLAIN", lambda _challenge: secret)
            yield conn
        finally:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def mailboxes(self, login: str) -> dict[str, frozenset[str]]:
        """Every mailbox of `login` (decoded name) with its LIST attributes."""
        with self.client(login) as conn:
            _, data = conn.list('""', '"*"')
        return {imap_utf7_decode(m.raw_name): m.attributes for m in parse_list(data)}

    def subscriptions(self, login: str) -> set[str]:
        """The decoded names `login` is subscribed to."""
        with self.client(login) as conn:
            _, data = conn.lsub('""', '"*"')
        return {imap_utf7_decode(m.raw_name) for m in parse_list(data)}

    def read_mailbox(self, login: str, mailbox: str) -> list[StoredMessage]:
        """Every message of a mailbox: UID, flags (without the session flag \\Recent),
        INTERNALDATE and exact bytes."""
        with self.client(login) as conn:
            typ, data = conn.select(quote(imap_utf7_encode(mailbox)), readonly=True)
            if typ != "OK":
                raise LookupError(f"mailbox {mailbox!r} of {login}: {data!r}")
            if int(data[0] or 0) == 0:
                return []
            _, fetched = conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        return [
            StoredMessage(
                m.uid, frozenset(m.flags) - {"\\Recent"}, m.internal_date, m.literal or b""
            )
            for m in parse_fetch(fetched)
        ]


IMAP_SERVERS = ("dovecot", "cyrus")  # the session fixtures of tests/conftest.py
both_imap_servers = pytest.mark.parametrize("imap_server", IMAP_SERVERS, indirect=True)
"""Runs a test that takes the `imap_server` fixture once against each IMAP server."""
