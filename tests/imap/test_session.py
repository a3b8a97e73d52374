"""Session behaviour against a real Dovecot: folders, stale refs, dropped connections."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hirondelle.connectors.imap import ImapSession, ImapSettings, ImapTarget
from hirondelle.mappings.mail import fingerprint_of
from hirondelle.migrator.errors import Retriable
from hirondelle.migrator.model import Container, Owner, Payload, TargetRef
from hirondelle.tests.servers import (
    CyrusServer,
    DovecotServer,
    ImapReadBack,
    MailUser,
    both_imap_servers,
    cyrus_server,
    free_port,
)

T = TypeVar("T")


def payload(text: str, flags: tuple[str, ...] = ()) -> Payload:
    content = f"Message-ID: <{text}@example.test>\r\nSubject: {text}\r\n\r\n{text}\r\n".encode()
    return Payload(text, content, fingerprint_of(content), {"flags": flags})


@pytest.fixture
def session(dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path) -> ImapSession:
    settings = ImapSettings(
        host=dovecot.host,
        port=dovecot.port,
        security="plain",
        password_file=dovecot.password_file(tmp_path / "passwords", mail_user),
    )
    return ImapTarget(settings).open(Owner(upn=mail_user.login, source_id="x"))


def test_well_known_folders_land_in_the_special_use_folders(
    dovecot: DovecotServer, mail_user: MailUser, session: ImapSession
) -> None:
    sent = Container("mail", "o", "1", ("Éléments envoyés", "Clients"), None, ("sentitems", None))
    archive = Container("mail", "o", "2", ("Archiv",), "archive", ("archive",))
    assert session.ensure_container(sent) == "Sent/Clients"
    assert session.ensure_container(archive) == "Archive"
    assert {"Sent/Clients", "Archive"} <= set(dovecot.mailboxes(mail_user.login))
    assert {"Sent/Clients", "Archive"} <= dovecot.subscriptions(mail_user.login)


def test_unicode_names_are_modified_utf7_on_the_wire(
    dovecot: DovecotServer, mail_user: MailUser, session: ImapSession
) -> None:
    folder = session.ensure_container(Container("mail", "o", "1", ("Été & 🚀",)))
    with dovecot.client(mail_user.login) as conn:
        _, listed = conn.list('""', '"*"')
    assert any(b'"&AMk-t&AOk- &- &2D3egA-"' in line for line in listed if isinstance(line, bytes))
    assert folder == "Été & 🚀"


def test_put_into_a_missing_folder_creates_it(
    dovecot: DovecotServer, mail_user: MailUser, session: ImapSession
) -> None:
    ref = session.put("Nouveau/Sous-dossier", payload("trycreate"))
    assert ref.folder == "Nouveau/Sous-dossier"
    assert len(dovecot.read_mailbox(mail_user.login, "Nouveau/Sous-dossier")) == 1


def test_a_ref_from_another_uidvalidity_is_unknown(session: ImapSession) -> None:
    stored = payload("stale", ("\\Seen",))
    ref = session.put("INBOX", stored)
    uidvalidity, _, uid = ref.ref.partition(":")
    stale = TargetRef("INBOX", f"{int(uidvalidity) + 1}:{uid}")
    session.remove(stale)  # unknown: nothing removed
    assert [e.ref for e in session.listing("INBOX")] == [ref]
    assert session.find("INBOX", stored, frozenset({stale.ref})) == ref
    assert session.update(stale, payload("stale", ("\\Flagged",))) == ref  # found again


def test_a_dropped_connection_is_retriable_then_recovers(session: ImapSession) -> None:
    session.put("INBOX", payload("before"))
    conn = session._conn  # simulate a connection reset under the session
    assert conn is not None
    conn.sock.shutdown(socket.SHUT_RDWR)
    with pytest.raises(Retriable):
        session.put("INBOX", payload("during"))
    ref = session.put("INBOX", payload("after"))
    assert session.find("INBOX", payload("after"), frozenset()) == ref


def test_check_reports_nothing_on_dovecot_and_the_failure_when_down(
    dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    pw = dovecot.password_file(tmp_path / "passwords", mail_user)
    good = ImapSettings(host=dovecot.host, port=dovecot.port, security="plain", password_file=pw)
    assert ImapTarget(good).check() == []
    down = ImapSettings(host=dovecot.host, port=free_port(), security="plain", password_file=pw)
    (finding,) = ImapTarget(down).check()
    assert "refused" in finding.lower()


def test_without_literal_plus_move_and_uidplus(session: ImapSession) -> None:
    """The fallbacks: synchronizing literals, COPY + EXPUNGE, plain EXPUNGE."""
    session.server_caps -= {"LITERAL+", "MULTIAPPEND", "MOVE", "UIDPLUS"}
    first, second = payload("plain-1", ("\\Seen",)), payload("plain-2")
    refs = session.put_many("INBOX", [first, second])
    assert all(isinstance(ref, TargetRef) for ref in refs)
    assert isinstance(refs[0], TargetRef)
    moved = session.move(refs[0], "Rangé")
    assert session.find("Rangé", first, frozenset()) == moved
    assert [e.fingerprint for e in session.listing("INBOX")] == [second.fingerprint]
    session.remove(moved)
    assert session.listing("Rangé") == []


def test_folders_go_under_the_personal_namespace_prefix_the_server_names(
    tmp_path: Path,
) -> None:
    """Cyrus without its alternate namespace (Debian's packaged imapd.conf) keeps every
    folder of a user under "INBOX." (NAMESPACE answers (("INBOX." "."))) and refuses
    CREATE elsewhere: folders, special-use ones included, are made under the prefix."""
    with cyrus_server(altnamespace=False) as cyrus:
        user = cyrus.new_user()
        settings = ImapSettings(
            host=cyrus.host,
            port=cyrus.port,
            security="plain",
            password_file=cyrus.password_file(tmp_path / "passwords", user),
        )
        session = ImapTarget(settings).open(Owner(upn=user.login, source_id="x"))
        inbox_child = Container("mail", "o", "1", ("Boîte", "Projets"), None, ("inbox", None))
        top = Container("mail", "o", "2", ("Archives", "v1.2/final"))
        sent = Container("mail", "o", "3", ("Éléments envoyés",), "sentitems", ("sentitems",))
        archive = Container("mail", "o", "4", ("Archiv",), "archive", ("archive",))
        names = [session.ensure_container(c) for c in (inbox_child, top, sent, archive)]
        assert names == [
            "INBOX.Projets",
            "INBOX.Archives.v1\u20242\u2215final",
            "INBOX.Sent",
            "INBOX.Archive",
        ]
        for name in names:
            ref = session.put(name, payload(f"in-{len(name)}"))
            assert session.find(name, payload(f"in-{len(name)}"), frozenset()) == ref
        session.close()
        assert set(names) <= set(cyrus.mailboxes(user.login))


@both_imap_servers
def test_a_name_the_server_refuses_gets_look_alikes_and_others_keep_theirs(
    imap_server: ImapReadBack, tmp_path: Path
) -> None:
    """Cyrus refuses " ; < > { | } in names: it gets their look-alikes; Dovecot takes them,
    so a folder there keeps the name earlier versions gave it. Either way a second session
    finds the same folder, and nothing is created twice."""
    user = imap_server.new_user()
    settings = ImapSettings(
        host=imap_server.host,
        port=imap_server.port,
        security="plain",
        password_file=imap_server.password_file(tmp_path / "passwords", user),
    )
    folder = Container("mail", "o", "1", ('Clients "VIP"; <Europe> | {2024}',))
    first = ImapTarget(settings).open(Owner(upn=user.login, source_id="x"))
    name = first.ensure_container(folder)
    ref = first.put(name, payload("in-refused-name"))
    first.close()
    refused = isinstance(imap_server, CyrusServer)
    expected = (
        "Clients \uff02VIP\uff02\uff1b \uff1cEurope\uff1e \uff5c \uff5b2024\uff5d"
        if refused
        else 'Clients "VIP"; <Europe> | {2024}'
    )
    assert name == expected
    again = ImapTarget(settings).open(Owner(upn=user.login, source_id="x"))
    assert again.ensure_container(folder) == name
    assert again.find(name, payload("in-refused-name"), frozenset()) == ref
    again.close()
    assert [m for m in imap_server.mailboxes(user.login) if "Europe" in m] == [name]


def test_a_listing_reads_what_a_select_finds_and_an_empty_folder_from_its_select(
    session: ImapSession, dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path
) -> None:
    written = payload("listed")
    (ref,) = session.put_many("INBOX", [written])
    session.ensure_container(Container("mail", mail_user.login, "e", ("Empty",)))
    session.close()
    fresh = session_of(dovecot, mail_user, tmp_path)  # nothing selected yet
    assert [e.ref for e in fresh.listing("INBOX")] == [ref]
    sent: list[str] = []
    fresh._call = _recording(fresh._call, sent)  # type: ignore[method-assign]  # a spy on the commands sent
    assert fresh.listing("Empty") == []
    assert sent == ["SELECT"]  # its SELECT said EXISTS 0: no UID SEARCH follows
    fresh.close()


def session_of(dovecot: DovecotServer, mail_user: MailUser, tmp_path: Path) -> ImapSession:
    settings = ImapSettings(
        host=dovecot.host,
        port=dovecot.port,
        security="plain",
        password_file=dovecot.password_file(tmp_path / "passwords-2", mail_user),
    )
    return ImapTarget(settings).open(Owner(upn=mail_user.login, source_id="x"))


def _recording(call: Callable[..., T], sent: list[str]) -> Callable[..., T]:
    def record(command: str, *args: Any) -> T:
        sent.append(command)
        return call(command, *args)

    return record
