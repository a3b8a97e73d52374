"""The IMAP wire helpers and the error table, without a server."""

from __future__ import annotations

import dataclasses
import imaplib
import ssl
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hirondelle.connectors import imap_wire as wire
from hirondelle.migrator.errors import FatalError, OwnerFailed, Refused, Retriable, SkipItem

CONTEXT = wire.FailureContext(
    operation="APPEND",
    login="alice@example.test",
    auth_hint="targets.mail.password_file (/srv/pw)",
    mailbox="INBOX",
    size=5000,
    limit=1000,
)


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("[OVERQUOTA] Quota exceeded (mailbox for user is full)", OwnerFailed, "raise its quota"),
        ("Quota exceeded", OwnerFailed, "over quota"),
        ("[TOOBIG] Message too large", SkipItem, "5000 bytes"),
        ("[LIMIT] Mail size is larger than the maximum", SkipItem, "limit 1000"),
        ("[UNAVAILABLE] Backend down", Retriable, "Backend down"),
        ("[INUSE] Mailbox locked", Retriable, "locked"),
        ("[AUTHENTICATIONFAILED] Authentication failed.", FatalError, "password_file"),
        ("Can't save a zero byte message", Refused, "zero byte"),
        ("Something odd happened", Refused, "refused"),
    ],
)
def test_error_table(text: str, kind: type[Exception], words: str) -> None:
    error = wire.error_for(wire.failure_of(text, item_scoped=True), text, CONTEXT)
    assert isinstance(error, kind)
    assert words in str(error)


def test_a_refused_login_stops_one_owner_unless_it_is_the_master_users() -> None:
    text = "[AUTHENTICATIONFAILED] Authentication failed."
    own = dataclasses.replace(CONTEXT, shared_login=False)
    assert isinstance(wire.error_for(wire.Failure.AUTH, text, own), OwnerFailed)
    assert isinstance(wire.error_for(wire.Failure.AUTH, text, CONTEXT), FatalError)


def test_unknown_refusal_outside_an_item_stops_the_run() -> None:
    assert wire.failure_of("Something odd", item_scoped=False) is wire.Failure.BROKEN
    assert wire.failure_of("[TRYCREATE] No such mailbox", item_scoped=True) is wire.Failure.MISSING


def test_exceptions_are_sorted() -> None:
    reset = wire.error_for_exception(ConnectionResetError("reset"), CONTEXT)
    assert isinstance(reset, Retriable)
    assert isinstance(wire.error_for_exception(imaplib.IMAP4.abort("EOF"), CONTEXT), Retriable)
    assert isinstance(wire.error_for_exception(TimeoutError("timed out"), CONTEXT), Retriable)
    cert = ssl.SSLCertVerificationError("bad")
    cert.verify_message = "unable to get local issuer certificate"
    assert "ca_file" in str(wire.error_for_exception(cert, CONTEXT))
    assert wire.error_for_exception(ValueError("bug"), CONTEXT) is None


def test_parse_list_with_quoted_and_literal_names() -> None:
    listed = wire.parse_list(
        [
            b'(\\HasNoChildren \\Sent) "/" Sent',
            b'() "/" "Dossier \\"cit\\\\\\""',
            (b'(\\Noselect) "." {7}', b"Bo&AO4-te"),
            b'() NIL "Flat"',
        ]
    )
    assert [m.raw_name for m in listed] == ["Sent", 'Dossier "cit\\"', "Bo&AO4-te", "Flat"]
    assert listed[0].attributes == {"\\HasNoChildren", "\\Sent"}
    assert [m.delimiter for m in listed] == ["/", "/", ".", None]


def test_parse_fetch_and_uid_sets() -> None:
    fetched = wire.parse_fetch(
        [
            (b"1 (UID 7 RFC822.SIZE 24 FLAGS (\\Seen $Forwarded) BODY[] {3}", b"abc"),
            b")",
            b'2 (UID 9 INTERNALDATE "02-Jan-2021 03:04:05 +0100")',
        ]
    )
    assert [(m.uid, m.size, m.literal) for m in fetched] == [(7, 24, b"abc"), (9, None, None)]
    assert fetched[0].flags == ("\\Seen", "$Forwarded")
    assert fetched[1].internal_date == datetime(2021, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert wire.parse_uid_set("5:7,9,12:11") == [5, 6, 7, 9, 11, 12]
    assert wire.parse_appenduid("[APPENDUID 38505 3955:3957] done") == (38505, [3955, 3956, 3957])
    assert wire.parse_copyuid("[COPYUID 38505 304,319 3956:3957]") == (
        38505,
        [304, 319],
        [3956, 3957],
    )


def test_flags_dates_and_append_command() -> None:
    flags = wire.format_flags(
        ["\\Seen", "\\Recent", "$Forwarded", "bad flag", "Projet_X", "\\Seen"]
    )
    assert flags == "(\\Seen $Forwarded Projet_X)"
    paris = timezone(timedelta(hours=2))
    assert wire.format_internal_date(datetime(2021, 6, 1, 8, 0, tzinfo=paris)) == (
        '"01-Jun-2021 08:00:00 +0200"'
    )
    assert wire.format_internal_date(datetime(2021, 6, 1, 8, 0)).endswith('+0000"')
    big = b"bc"
    pieces = wire.append_command("INBOX", [("()", None, b"a\r\n"), ("(\\Seen)", '"d"', big)])
    assert b"".join(pieces) == b'APPEND "INBOX" () {3+}\r\na\r\n (\\Seen) "d" {2+}\r\nbc'
    assert pieces[-1] is big  # the content goes out as it is, never copied
    assert wire.stored_form(b"a\nb\r\nc\r") == b"a\r\nb\r\nc\r\n"


@pytest.mark.parametrize(
    ("answer", "prefix"),
    [
        ([b'(("" "/")) NIL NIL'], ""),  # Dovecot
        ([b'(("" ".")) (("Other Users." ".")) (("Shared Folders." "."))'], ""),  # Cyrus
        ([b'(("INBOX." ".")) (("user." ".")) (("" "."))'], "INBOX."),  # Cyrus, standard
        ([b'(("Mes &AOk-l&AOk-ments/" "/"))'], "Mes &AOk-l&AOk-ments/"),
        ([b"NIL NIL NIL"], ""),
        ([None], ""),
    ],
)
def test_personal_prefix_of_a_namespace_answer(answer: list[bytes | None], prefix: str) -> None:
    assert wire.personal_prefix(answer) == prefix
