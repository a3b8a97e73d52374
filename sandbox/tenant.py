"""The sandbox's synthetic tenant: users, mail folders and messages, with a change log.

This module is the data model the HTTP server (`sandbox/server.py`) serves. It is
deterministic from a seed, builds message MIME lazily (nothing large is kept in
memory), and records every mutation with a rising sequence number so that
`messages/delta` can answer "what changed in this folder since sequence N".

INTERFACE CONTRACT (the server codes against exactly this; keep it stable):

    tenant = Tenant.generate(TenantSpec(seed=7, users=3, messages=200))
    tenant = Tenant.load(directory)              # .eml folders / .mbox files per user
    tenant.users -> list[SandboxUser]            # ordered, stable
    tenant.user(key) -> SandboxUser              # by id or UPN (case-insensitive); KeyError
    tenant.folders(user_id) -> list[SandboxFolder]   # every folder, hidden ones included
    tenant.folder(user_id, key) -> SandboxFolder # by id or well-known name; KeyError
    tenant.messages(user_id, folder_id) -> list[SandboxMessage]  # current, oldest first
    tenant.message(user_id, message_id) -> SandboxMessage        # KeyError if gone
    tenant.mime(user_id, message_id) -> bytes    # the RFC 5322 bytes ($value)
    tenant.seq -> int                            # the latest change sequence number
    tenant.changes_since(user_id, folder_id, seq) -> FolderChanges
    tenant.oldest_delta_seq -> int               # tokens below this are expired
    tenant.mutate(Mutation(...)) -> MutationResult
    tenant.folder_size(user_id, folder_id) -> int   # sum of MIME sizes
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class TenantSpec:
    seed: int = 7
    users: int = 3
    messages: int = 200  # per user, spread over the folders
    large_messages: int = 2  # messages with a big attachment, tenant-wide
    large_attachment_bytes: int = 40 * 1024 * 1024
    domain: str = "contoso.test"


@dataclass
class SandboxUser:
    id: str  # a GUID
    upn: str
    display_name: str
    mail: str


@dataclass
class SandboxFolder:
    id: str  # immutable id (base64url-like, stable across moves)
    user_id: str
    display_name: str
    parent_id: str  # the msgfolderroot id for top-level folders
    well_known_name: str | None = None  # "inbox", "sentitems", "deleteditems", ...
    hidden: bool = False


@dataclass
class SandboxMessage:
    id: str  # immutable id: unchanged by moves within the mailbox
    user_id: str
    folder_id: str
    change_key: str  # changes whenever the message changes
    seq: int  # sequence number of its last change
    subject: str
    internet_message_id: str | None  # None for drafts that have none
    received: datetime  # aware, UTC
    sent: datetime | None
    sender: tuple[str, str]  # (name, address)
    to: list[tuple[str, str]]
    is_read: bool
    is_draft: bool
    flag_status: str  # "notFlagged" | "flagged" | "complete"
    categories: list[str]
    last_verb: int | None  # PR_LAST_VERB_EXECUTED: 102 reply, 103 reply all, 104 forward
    has_attachments: bool
    size: int  # len(mime)
    created: datetime = field(default=datetime.min)
    modified: datetime = field(default=datetime.min)


@dataclass
class FolderChanges:
    changed: list[SandboxMessage]  # added or updated since the sequence, in the folder now
    removed: list[str]  # ids deleted from or moved out of the folder since the sequence


@dataclass(frozen=True)
class Mutation:
    seed: int = 1
    new: int = 0  # new messages delivered to inboxes
    flag_changes: int = 0  # read / flag / category changes
    moves: int = 0  # moves between folders of the same mailbox
    deletions: int = 0  # hard deletions
    user: str | None = None  # restrict to one user (id or UPN)


@dataclass
class MutationResult:
    new: list[str]
    changed: list[str]
    moved: list[str]
    deleted: list[str]
