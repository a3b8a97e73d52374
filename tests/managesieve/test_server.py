"""The Dovecot launcher's Sieve side works as the delivery tests rely on: a script stored
with `put_sieve` runs on LMTP delivery, a refused script fails with Pigeonhole's text, and
a vacation reply lands in `sent()`."""

from __future__ import annotations

import pytest

from hirondelle.tests.servers import DovecotServer, MailUser

SCRIPT = """require ["fileinto", "imap4flags", "vacation"];
if header :contains "subject" "invoice" { addflag "\\\\Flagged"; fileinto "Junk"; stop; }
vacation :days 1 :subject "Away" :from "out@example.test" "Back on Monday.";
"""


def message(to: str, subject: str) -> bytes:
    return (
        f"From: bob@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nHello\r\n"
    ).encode()


def test_lmtp_delivery_runs_the_active_script(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.put_sieve(mail_user.login, "main", SCRIPT)
    assert dovecot.sieve_scripts(mail_user.login) == {"main": True}
    sender = f"bob-{mail_user.login}"
    dovecot.deliver(mail_user.login, message(mail_user.login, "invoice 12"), sender)
    dovecot.deliver(mail_user.login, message(mail_user.login, "lunch"), sender)
    [filed] = dovecot.read_mailbox(mail_user.login, "Junk")
    assert b"invoice 12" in filed.content and "\\Flagged" in filed.flags
    [kept] = dovecot.read_mailbox(mail_user.login, "INBOX")
    assert b"lunch" in kept.content
    [reply] = dovecot.sent(sender)
    assert reply.recipients == (sender,) and reply.sender == ""
    assert b"Subject: Away" in reply.content and b"Back on Monday." in reply.content


def test_a_script_pigeonhole_refuses_fails_with_its_text(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    with pytest.raises(AssertionError, match="unknown"):
        dovecot.put_sieve(mail_user.login, "bad", 'require "nosuchextension";')
