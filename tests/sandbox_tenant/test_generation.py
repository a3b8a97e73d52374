"""The generated tenant: determinism, ids, folders and the MIME contract."""

from __future__ import annotations

import email
import hashlib
import os
import subprocess
import sys
import uuid
from email import policy
from email.message import EmailMessage

from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.sandbox.tenant_records import MESSAGE_ID_PREFIX, SandboxMessage


def all_messages(tenant: Tenant) -> list[SandboxMessage]:
    return [
        message
        for user in tenant.users
        for folder in tenant.folders(user.id)
        for message in tenant.messages(user.id, folder.id)
    ]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def tenant_digest(spec: TenantSpec) -> str:
    """A digest of every id, metadata field and MIME byte of a generated tenant."""
    tenant = Tenant.generate(spec)
    digest = hashlib.sha256()
    for user in tenant.users:
        digest.update(repr(user).encode())
        for folder in tenant.folders(user.id):
            digest.update(repr(folder).encode())
            for message in tenant.messages(user.id, folder.id):
                digest.update(repr(message).encode())
                digest.update(tenant.mime(user.id, message.id))
    return digest.hexdigest()


def test_same_spec_gives_identical_tenants(tenant: Tenant) -> None:
    assert tenant.spec is not None
    first, second = tenant, Tenant.generate(tenant.spec)
    assert first.users == second.users
    for user in first.users:
        assert first.folders(user.id) == second.folders(user.id)
    assert all_messages(first) == all_messages(second)
    for message in all_messages(first):
        assert first.mime(message.user_id, message.id) == second.mime(message.user_id, message.id)


def test_generation_does_not_depend_on_the_process() -> None:
    """String hashing is salted per process: nothing generated may depend on it."""
    spec = TenantSpec(seed=3, users=2, messages=15, large_attachment_bytes=0)
    code = (
        "from hirondelle.sandbox.tenant import TenantSpec\n"
        "from hirondelle.tests.sandbox_tenant.test_generation import tenant_digest\n"
        "print(tenant_digest(TenantSpec(seed=3, users=2, messages=15, large_attachment_bytes=0)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() == tenant_digest(spec)


def test_another_seed_gives_another_tenant() -> None:
    other = Tenant.generate(TenantSpec(seed=8, users=3, messages=60, large_attachment_bytes=0))
    mine = Tenant.generate(TenantSpec(seed=7, users=3, messages=60, large_attachment_bytes=0))
    assert {u.id for u in other.users}.isdisjoint({u.id for u in mine.users})
    assert {m.id for m in all_messages(other)}.isdisjoint({m.id for m in all_messages(mine)})


def test_users(tenant: Tenant) -> None:
    upns = [user.upn for user in tenant.users]
    assert upns == ["user01@contoso.test", "user02@contoso.test", "user03@contoso.test"]
    for user in tenant.users:
        assert str(uuid.UUID(user.id)) == user.id
        assert tenant.user(user.upn.upper()) is user
        assert tenant.user(user.id) is user
        assert user.mail == user.upn and " " in user.display_name


def test_folders_carry_well_known_names_and_tricky_names(tenant: Tenant) -> None:
    user = tenant.users[0]
    folders = tenant.folders(user.id)
    by_id = {f.id: f for f in folders}
    root = tenant.root_folder_id(user.id)
    assert root not in by_id
    assert tenant.folder(user.id, "msgfolderroot").id == root
    names = {f.well_known_name: f.display_name for f in folders if f.well_known_name}
    assert names["inbox"] == "Boîte de réception"
    assert names["sentitems"] == "Éléments envoyés"
    assert {"deleteditems", "junkemail", "drafts", "outbox", "archive"} <= names.keys()
    assert tenant.folder(user.id, "inbox").parent_id == root
    assert tenant.folder(user.id, "INBOX").well_known_name == "inbox"
    assert any(f.hidden for f in folders)
    display = [f.display_name for f in folders]
    assert any("/" in n for n in display) and any("." in n for n in display)
    assert any(not n.isascii() and "📁" in n for n in display)

    def depth(folder_id: str) -> int:
        return 0 if folder_id == root else 1 + depth(by_id[folder_id].parent_id)

    assert max(depth(f.id) for f in folders) >= 3
    assert tenant.child_folders(user.id, "msgfolderroot") == [
        f for f in folders if f.parent_id == root
    ]


def test_ids_are_graph_like_and_distinct(tenant: Tenant) -> None:
    messages = all_messages(tenant)
    assert tenant.spec is not None
    assert (
        len({m.id for m in messages}) == len(messages) == tenant.spec.users * tenant.spec.messages
    )
    assert all(m.id.startswith(MESSAGE_ID_PREFIX) and len(m.id) > 60 for m in messages)
    folder_ids = [f.id for u in tenant.users for f in tenant.folders(u.id)]
    assert len(set(folder_ids)) == len(folder_ids)
    assert all(len(m.change_key) < 40 for m in messages)
    assert tenant.seq == max(m.seq for m in messages)


def test_size_is_the_length_of_the_mime(tenant: Tenant) -> None:
    for message in all_messages(tenant):
        raw = tenant.mime(message.user_id, message.id)
        assert message.size == len(raw)
        assert b"".join(tenant.mime_chunks(message.user_id, message.id, 4096)) == raw
    user = tenant.users[0]
    inbox = tenant.messages(user.id, "inbox")
    assert tenant.folder_size(user.id, "inbox") == sum(m.size for m in inbox)


def test_headers_match_the_metadata(tenant: Tenant) -> None:
    for message in all_messages(tenant):
        raw = tenant.mime(message.user_id, message.id)
        assert b"\n" not in raw.replace(b"\r\n", b""), "CRLF line endings only"
        parsed = parse(raw)
        for header in ("Date", "From", "To", "Subject", "MIME-Version"):
            assert parsed[header] is not None, header
        assert parsed["Message-ID"] == message.internet_message_id
        assert str(parsed["Subject"]) == message.subject
        assert parsed["From"].addresses[0].addr_spec == message.sender[1]
        assert not parsed.defects


def test_drafts_have_no_message_id(tenant: Tenant) -> None:
    for user in tenant.users:
        drafts = tenant.messages(user.id, "drafts")
        assert drafts and all(m.is_draft and m.internet_message_id is None for m in drafts)
        for draft in drafts:
            assert b"\r\nMessage-ID:" not in tenant.mime(user.id, draft.id)


def test_a_message_id_is_shared_by_two_folders(tenant: Tenant) -> None:
    for user in tenant.users:
        folders_of: dict[str, set[str]] = {}
        for folder in tenant.folders(user.id):
            for message in tenant.messages(user.id, folder.id):
                if message.internet_message_id:
                    folders_of.setdefault(message.internet_message_id, set()).add(folder.id)
        assert any(len(folders) == 2 for folders in folders_of.values())


def kinds_of(raw: bytes) -> set[str]:
    parsed = parse(raw)
    return {part.get_content_type() for part in parsed.walk()}


def test_every_kind_of_mime_is_present(tenant: Tenant) -> None:
    kinds: dict[str, bytes] = {}
    for message in all_messages(tenant):
        raw = tenant.mime(message.user_id, message.id)
        kinds.setdefault(parse(raw).get_content_type(), raw)
        if "text/calendar" in kinds_of(raw):
            kinds.setdefault("calendar", raw)
    assert {"text/plain", "multipart/alternative", "multipart/mixed", "multipart/related"} <= set(
        kinds
    )
    plain = parse(kinds["text/plain"])
    assert plain["Content-Transfer-Encoding"] == "8bit"
    assert not plain.get_content().isascii()
    calendar = next(
        p for p in parse(kinds["calendar"]).walk() if p.get_content_subtype() == "calendar"
    )
    assert calendar.get_param("method") == "REQUEST"
    assert "BEGIN:VEVENT" in calendar.get_content()


def test_related_html_references_its_inline_image(tenant: Tenant) -> None:
    related = [
        m
        for m in all_messages(tenant)
        if "multipart/related" in kinds_of(tenant.mime(m.user_id, m.id))
    ]
    assert related
    for message in related:
        parsed = parse(tenant.mime(message.user_id, message.id))
        image = next(p for p in parsed.walk() if p.get_content_maintype() == "image")
        cid = image["Content-ID"].strip("<>")
        html = next(p for p in parsed.walk() if p.get_content_subtype() == "html")
        assert f"cid:{cid}" in html.get_content()
        assert image.get_content().startswith(b"\x89PNG")
        assert not message.has_attachments  # Graph ignores inline attachments


def test_attachments_decode_to_their_declared_length(tenant: Tenant) -> None:
    with_files = [m for m in all_messages(tenant) if m.has_attachments]
    assert with_files
    for message in with_files:
        parsed = parse(tenant.mime(message.user_id, message.id))
        files = [p for p in parsed.walk() if p.is_attachment()]
        assert files
        assert all(len(p.get_content()) > 1000 for p in files)


def test_encoded_words_for_non_ascii_headers(tenant: Tenant) -> None:
    raw = b"".join(tenant.mime(m.user_id, m.id) for m in all_messages(tenant)[:20])
    head = raw.split(b"\r\n\r\n")[0]
    assert head.isascii()
    subjects = {m.subject for m in all_messages(tenant)}
    assert "Réunion équipe – compte rendu" in subjects
    assert any(s.startswith("Überprüfung") for s in subjects)
    assert any(not s.isascii() and any(ord(c) > 0xFFFF for c in s) for s in subjects)  # emoji


def test_states_cover_reads_flags_verbs_and_categories(tenant: Tenant) -> None:
    messages = all_messages(tenant)
    assert {True, False} <= {m.is_read for m in messages}
    assert {"notFlagged", "flagged", "complete"} <= {m.flag_status for m in messages}
    assert {102, 103, 104} <= {m.last_verb for m in messages}
    categories = {c for m in messages for c in m.categories}
    assert {"Rouge", "Projet X"} <= categories


def test_messages_are_listed_oldest_first(tenant: Tenant) -> None:
    user = tenant.users[1]
    for folder in tenant.folders(user.id):
        received = [m.received for m in tenant.messages(user.id, folder.id)]
        assert received == sorted(received)
        assert all(moment.tzinfo is not None for moment in received)


def test_large_attachments_are_generated_lazily() -> None:
    spec = TenantSpec(
        seed=1, users=2, messages=20, large_messages=3, large_attachment_bytes=5 << 20
    )
    tenant = Tenant.generate(spec)
    large = [m for m in all_messages(tenant) if m.size > 5 << 20]
    assert len(large) == 3
    message = large[0]
    total = 0
    for chunk in tenant.mime_chunks(message.user_id, message.id, 1 << 16):
        assert len(chunk) <= 1 << 17
        total += len(chunk)
    assert total == message.size
    attachment = next(
        p for p in parse(tenant.mime(message.user_id, message.id)).walk() if p.is_attachment()
    )
    assert len(attachment.get_content()) == 5 << 20


def test_no_large_messages_when_disabled() -> None:
    spec = TenantSpec(seed=1, users=2, messages=20, large_messages=3, large_attachment_bytes=0)
    assert max(m.size for m in all_messages(Tenant.generate(spec))) < 2 << 20
