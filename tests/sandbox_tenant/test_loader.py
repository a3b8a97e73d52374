"""Loading a tenant from a directory of `.eml` folders and `.mbox` files."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from hirondelle.sandbox.tenant import Mutation, Tenant

MESSAGE = (
    "Date: Tue, 02 Jan 2024 09:30:00 +0100\r\n"
    "From: =?utf-8?q?Ren=C3=A9e_Martin?= <renee@example.fr>\r\n"
    "To: Alice <alice@contoso.test>\r\n"
    "Subject: {subject}\r\n"
    "Message-ID: <{ident}@example.fr>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Bonjour, voilà le document.\r\n"
)
WITH_FILE = (
    "Date: Wed, 03 Jan 2024 10:00:00 +0000\n"
    "From: bob@contoso.test\n"
    "To: alice@contoso.test\n"
    "Subject: pièce jointe\n"
    "Message-ID: <file@contoso.test>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="b"\n'
    "\n"
    "--b\n"
    "Content-Type: text/plain\n"
    "\n"
    "see attached\n"
    "--b\n"
    "Content-Type: application/pdf\n"
    'Content-Disposition: attachment; filename="a.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "JVBERi0xLjcK\n"
    "--b--\n"
)


def message(subject: str, ident: str) -> bytes:
    return MESSAGE.format(subject=subject, ident=ident).encode()


@pytest.fixture
def mail_tree(tmp_path: Path) -> Path:
    alice = tmp_path / "alice@contoso.test"
    (alice / "Inbox" / "Clients").mkdir(parents=True)
    (alice / "Inbox" / "one.eml").write_bytes(message("Premier", "one"))
    (alice / "Inbox" / "two.eml").write_bytes(WITH_FILE.encode())
    (alice / "Inbox" / "Clients" / "three.eml").write_bytes(message("Troisième", "three"))
    (alice / "Projets").mkdir()
    mbox = b"".join(
        [
            b"From renee@example.fr Tue Jan  2 09:30:00 2024\n",
            message("Lu", "m1").replace(b"MIME-Version", b"Status: RO\r\nMIME-Version"),
            b"\n",
            b"From renee@example.fr Tue Jan  2 09:31:00 2024\n",
            message("Non lu", "m2").replace(b"MIME-Version", b"Status: O\r\nMIME-Version"),
            b"\n",
        ]
    )
    (alice / "Projets" / "2024.mbox").write_bytes(mbox)
    (tmp_path / "bob@contoso.test" / "Sent Items").mkdir(parents=True)
    return tmp_path


def test_folders_and_well_known_names(mail_tree: Path) -> None:
    tenant = Tenant.load(mail_tree)
    assert [u.upn for u in tenant.users] == ["alice@contoso.test", "bob@contoso.test"]
    alice = tenant.user("ALICE@contoso.test")
    inbox = tenant.folder(alice.id, "inbox")
    assert inbox.display_name == "Inbox" and inbox.parent_id == tenant.root_folder_id(alice.id)
    names = {f.display_name: f for f in tenant.folders(alice.id)}
    assert names["Clients"].parent_id == inbox.id
    assert names["2024"].parent_id == names["Projets"].id
    assert tenant.folder(alice.id, "drafts").display_name == "Drafts"  # every mailbox has one
    bob = tenant.user("bob@contoso.test")
    assert tenant.folder(bob.id, "sentitems").display_name == "Sent Items"


def test_messages_are_the_files_bytes(mail_tree: Path) -> None:
    tenant = Tenant.load(mail_tree)
    alice = tenant.user("alice@contoso.test")
    inbox = tenant.messages(alice.id, "inbox")
    assert [m.subject for m in inbox] == ["Premier", "pièce jointe"]
    first = inbox[0]
    raw = (mail_tree / "alice@contoso.test" / "Inbox" / "one.eml").read_bytes()
    assert tenant.mime(alice.id, first.id) == raw and first.size == len(raw)
    assert first.internet_message_id == "<one@example.fr>"
    assert first.sender == ("Renée Martin", "renee@example.fr")
    assert first.received.utcoffset() is not None and first.is_read
    assert not first.has_attachments and inbox[1].has_attachments


def test_mbox_messages_and_their_read_state(mail_tree: Path) -> None:
    tenant = Tenant.load(mail_tree)
    alice = tenant.user("alice@contoso.test")
    projets = next(f for f in tenant.folders(alice.id) if f.display_name == "2024")
    messages = tenant.messages(alice.id, projets.id)
    assert {m.subject: m.is_read for m in messages} == {"Lu": True, "Non lu": False}
    for loaded in messages:
        raw = tenant.mime(alice.id, loaded.id)
        assert raw.startswith(b"Date:") and raw.endswith(b"document.\r\n")
        assert len(raw) == loaded.size


def test_french_names_and_decomposed_unicode(tmp_path: Path) -> None:
    inbox = unicodedata.normalize("NFD", "Boîte de réception")
    folder = tmp_path / "claire@contoso.test" / inbox
    folder.mkdir(parents=True)
    (folder / "a.eml").write_bytes(message("Salut", "a"))
    tenant = Tenant.load(tmp_path)
    user = tenant.users[0]
    assert tenant.folder(user.id, "inbox").display_name == "Boîte de réception"
    assert tenant.folder(user.id, "sentitems").display_name == "Éléments envoyés"


def test_loading_is_stable_and_loaded_tenants_mutate(mail_tree: Path) -> None:
    first, second = Tenant.load(mail_tree), Tenant.load(mail_tree)
    alice = first.user("alice@contoso.test")
    assert first.messages(alice.id, "inbox") == second.messages(alice.id, "inbox")
    mark = first.seq
    result = first.mutate(Mutation(seed=1, new=1, moves=2, user=alice.upn))
    assert len(result.new) == 1 and len(result.moved) == 2
    assert first.changes_since(alice.id, "inbox", mark).changed


def test_bad_input_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        Tenant.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="no mailbox"):
        Tenant.load(tmp_path)
    (tmp_path / "not-a-upn").mkdir()
    with pytest.raises(ValueError, match="UPN"):
        Tenant.load(tmp_path)


def test_unreadable_messages_raise_value_error(tmp_path: Path) -> None:
    folder = tmp_path / "dan@contoso.test" / "Inbox"
    folder.mkdir(parents=True)
    (folder / "empty.eml").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.eml"):
        Tenant.load(tmp_path)
    (folder / "empty.eml").write_bytes(b"\x00\x01\x02 binary garbage")
    with pytest.raises(ValueError, match="unreadable"):
        Tenant.load(tmp_path)
    (folder / "empty.eml").unlink()
    (tmp_path / "dan@contoso.test" / "Box.mbox").write_bytes(b"no separator here\n")
    with pytest.raises(ValueError, match="mbox"):
        Tenant.load(tmp_path)
