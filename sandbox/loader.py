"""Filling a sandbox `Tenant` from a directory of mail files.

Loading reads `<dir>/<upn>/<folder path>/*.eml` and `<dir>/<upn>/<folder path>.mbox`;
the bytes served for a loaded message are the file's bytes, re-read on demand. The
well-known folders missing from a mailbox are added, named in the mailbox's language.
"""

from __future__ import annotations

import email
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

# --- the generated mailbox --------------------------------------------------------------------
from .mail_seed import FOLDER_PLAN
from .mime import (
    Address,
    MimeDocument,
)
from .tenant import Tenant
from .tenant_records import (
    EPOCH,
    FOLDER_ID_PREFIX,
    MESSAGE_ID_PREFIX,
    ROOT,
    SandboxFolder,
    SandboxMessage,
    SandboxUser,
    stable_id,
)

# --- loading from a directory -----------------------------------------------------------------

_WELL_KNOWN = {
    "inbox": "inbox", "boîte de réception": "inbox",
    "sent": "sentitems", "sent items": "sentitems", "éléments envoyés": "sentitems",
    "deleted items": "deleteditems", "trash": "deleteditems",
    "éléments supprimés": "deleteditems",
    "junk": "junkemail", "junk email": "junkemail", "spam": "junkemail",
    "courrier indésirable": "junkemail",
    "drafts": "drafts", "brouillons": "drafts",
    "outbox": "outbox", "boîte d'envoi": "outbox", "boîte d’envoi": "outbox",
    "archive": "archive", "archives": "archive",
}  # fmt: skip
_FRENCH = {
    p.well_known_name: p.path[0] for p in FOLDER_PLAN if p.well_known_name in _WELL_KNOWN.values()
}
_ENGLISH = {
    "inbox": "Inbox", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
    "junkemail": "Junk Email", "drafts": "Drafts", "outbox": "Outbox", "archive": "Archive",
}  # fmt: skip
_MBOX_SEPARATOR = re.compile(rb"^From [^\n]*\n", re.MULTILINE)


@dataclass(frozen=True)
class FileSlice:
    """A loaded message's bytes: a whole `.eml` file or one message of an `.mbox` file."""

    path: Path
    start: int
    length: int

    def read(self) -> bytes:
        with self.path.open("rb") as stream:
            stream.seek(self.start)
            return stream.read(self.length)

    def document(self) -> MimeDocument:
        return MimeDocument((self.read(),))


def load_directory(directory: Path) -> Tenant:
    """A tenant from `<directory>/<upn>/...`; `ValueError` names what is wrong with the input."""
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    mailboxes = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not mailboxes:
        raise ValueError(f"{directory} holds no mailbox: expected one <upn>/ directory per user")
    tenant = Tenant()
    for mailbox in mailboxes:
        _load_mailbox(tenant, mailbox)
    return tenant


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)  # some file systems hand back decomposed names


def _load_mailbox(tenant: Tenant, mailbox: Path) -> None:
    upn = _nfc(mailbox.name)
    if "@" not in upn:
        raise ValueError(f"{mailbox}: a mailbox directory is named by its UPN (user@domain)")
    user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox:{upn.lower()}"))
    local = re.split(r"[._-]", upn.split("@")[0])
    user = SandboxUser(user_id, upn, " ".join(p.capitalize() for p in local if p), upn)
    root = stable_id(FOLDER_ID_PREFIX, upn.lower(), ROOT)
    tenant.add_user(user, root)
    contents = _folder_contents(mailbox)
    _ensure_well_known(contents)
    ids: dict[tuple[str, ...], str] = {}
    for path in sorted(contents):
        ids[path] = stable_id(FOLDER_ID_PREFIX, upn.lower(), *path)
        role = _WELL_KNOWN.get(path[0].casefold()) if len(path) == 1 else None
        parent = ids[path[:-1]] if len(path) > 1 else root
        tenant.add_folder(SandboxFolder(ids[path], user_id, path[-1], parent, role))
    sources = [(path, source) for path in sorted(contents) for source in contents[path]]
    for position, (path, source) in enumerate(sources):
        relative = source.path.relative_to(mailbox).as_posix()
        message_id = stable_id(MESSAGE_ID_PREFIX, upn.lower(), relative, source.start)
        folder = tenant.folder(user_id, ids[path])
        tenant.add_message(_loaded_message(source, message_id, folder, position), source)


def _folder_contents(mailbox: Path) -> dict[tuple[str, ...], list[FileSlice]]:
    """Folder path -> message sources, from sub-directories of `.eml` files and `.mbox` files."""
    contents: dict[tuple[str, ...], list[FileSlice]] = {}
    for entry in sorted(mailbox.rglob("*")):
        parts = tuple(_nfc(p) for p in entry.relative_to(mailbox).parts)
        if any(p.startswith(".") for p in parts):
            continue
        if entry.is_dir():
            contents.setdefault(parts, [])
        elif entry.suffix.lower() == ".eml":
            contents.setdefault(parts[:-1], []).append(FileSlice(entry, 0, entry.stat().st_size))
        elif entry.suffix.lower() == ".mbox":
            path = (*parts[:-1], _nfc(entry.stem))
            contents.setdefault(path, []).extend(_mbox_slices(entry))
    contents.pop((), None)  # .eml files right under <upn>/ belong to no folder
    for path in list(contents):  # every ancestor of a folder is a folder
        for depth in range(1, len(path)):
            contents.setdefault(path[:depth], [])
    return contents


def _ensure_well_known(contents: dict[tuple[str, ...], list[FileSlice]]) -> None:
    """Give the mailbox the folders every Exchange mailbox has, in the language it uses."""
    top = [path[0] for path in contents if len(path) == 1]
    present = {_WELL_KNOWN.get(name.casefold()) for name in top}
    french = any(name in _FRENCH.values() for name in top)
    names = _FRENCH if french else _ENGLISH
    for role, name in _ENGLISH.items():
        if role not in present:
            contents[(names.get(role, name),)] = []


def _mbox_slices(path: Path) -> list[FileSlice]:
    """One slice per message of an mbox file, without its `From ` line and separating blank line."""
    data = path.read_bytes()
    separators = list(_MBOX_SEPARATOR.finditer(data))
    if data.strip() and (not separators or data[: separators[0].start()].strip()):
        raise ValueError(f"{path}: not an mbox file (it must start with a 'From ' line)")
    slices = []
    for number, separator in enumerate(separators):
        start = separator.end()
        end = separators[number + 1].start() if number + 1 < len(separators) else len(data)
        body = data[start:end]
        if body.endswith(b"\r\n\r\n"):
            end -= 2
        elif body.endswith(b"\n\n"):
            end -= 1
        slices.append(FileSlice(path, start, end - start))
    return slices


def _loaded_message(
    source: FileSlice, message_id: str, folder: SandboxFolder, position: int
) -> SandboxMessage:
    data = source.read()
    label = f"{source.path} (offset {source.start})" if source.start else str(source.path)
    try:
        parsed = email.message_from_bytes(data, policy=policy.default)
        if not data.strip() or not parsed.keys():
            raise ValueError("no header fields")
        return _message_from_headers(parsed, message_id, folder, len(data), position)
    except Exception as error:  # the email package raises many kinds on broken input
        raise ValueError(f"{label}: unreadable message: {error}") from error


def _message_from_headers(
    parsed: EmailMessage, message_id: str, folder: SandboxFolder, size: int, position: int
) -> SandboxMessage:
    date = parsed["Date"].datetime if parsed["Date"] is not None else None
    received = EPOCH - timedelta(minutes=position) if date is None else date
    received = received if received.tzinfo else received.replace(tzinfo=EPOCH.tzinfo)
    status = parsed.get("Status")
    drafts = folder.well_known_name == "drafts" or parsed.get("X-Unsent") == "1"
    internet_id = str(parsed["Message-ID"]).strip() if parsed["Message-ID"] else None
    return SandboxMessage(
        id=message_id,
        user_id=folder.user_id,
        folder_id=folder.id,
        change_key="",
        seq=0,
        subject=str(parsed.get("Subject", "")),
        internet_message_id=internet_id,
        received=received,
        sent=None if drafts else received,
        sender=(_addresses(parsed, "From") or [("", "")])[0],
        to=_addresses(parsed, "To"),
        is_read=status is None or "R" in str(status),
        is_draft=drafts,
        flag_status="notFlagged",
        categories=[],
        last_verb=None,
        has_attachments=any(part.is_attachment() for part in parsed.walk()),
        size=size,
        created=received,
        modified=received,
    )


def _addresses(parsed: EmailMessage, name: str) -> list[Address]:
    header = parsed[name]
    if header is None:
        return []
    return [(a.display_name, a.addr_spec) for a in header.addresses]
