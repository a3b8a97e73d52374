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

Additions beyond the contract:

    tenant.root_folder_id(user_id) -> str        # parent_id of the top-level folders
    tenant.child_folders(user_id, folder_id) -> list[SandboxFolder]
    tenant.mime_chunks(user_id, message_id, chunk_size) -> Iterator[bytes]  # streams big ones
    tenant.expire_delta_tokens()                 # oldest_delta_seq = seq: older tokens expire
    tenant.add_user / add_folder / add_message   # how generation and `load` fill a tenant

`folder(user_id, "msgfolderroot")` returns the root, which `folders()` does not list.
`messages`, `changes_since` and `folder_size` accept a well-known name for the folder.
Message objects are snapshots: a mutation replaces a message, never edits it in place,
so a reader holding one sees a consistent state while `mutate` runs in another thread.
Records are `tenant_records`'s; mutations pick mail in `mail_mutations` (written through
`restamp`, `move_message`, `delete_message`), inbox rules in `rules_seed` (`tenant.rules`).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .drive_data import SandboxDrives
from .drive_mutations import CHANGE_KINDS
from .mail_mutations import mutate_mail
from .mailbox_tally import MailboxTally
from .mime import MimeDocument
from .rules_seed import RulesData
from .tenant_records import (
    EPOCH,
    FOLDER_ID_PREFIX,
    ROOT,
    FolderChanges,
    MimeSource,
    SandboxFolder,
    SandboxMessage,
    SandboxUser,
    change_key,
    stable_id,
)
from .tenant_spec import Mutation, MutationResult, TenantSpec

if TYPE_CHECKING:
    from .chats_data import ChatsData
    from .teams_data import TeamsData


_MIME_CACHE_ENTRIES = 128
_MIME_CACHE_MAX_RESIDENT = 2 << 20  # a big loaded .eml is re-read rather than kept


class Tenant:
    """Users, their mail folders and messages, with a change log; safe to share between threads."""

    def __init__(self, seed: int = 0, spec: TenantSpec | None = None) -> None:
        self.spec = spec
        self._seed = seed
        self._lock = threading.RLock()
        self._users: list[SandboxUser] = []
        self._user_keys: dict[str, SandboxUser] = {}
        self._roots: dict[str, SandboxFolder] = {}
        self._folders: dict[str, dict[str, SandboxFolder]] = {}  # user id -> folder id -> folder
        self._messages: dict[str, dict[str, SandboxMessage]] = {}  # user id -> message id -> ...
        self._members: dict[str, dict[str, None]] = {}  # folder id -> ids, an ordered set
        self._removals: dict[str, list[tuple[int, str]]] = {}  # folder id -> (seq, message id)
        self._ordered: dict[str, list[SandboxMessage]] = {}  # folder id -> sorted listing
        self._sources: dict[str, MimeSource] = {}
        self._mime_cache: OrderedDict[str, MimeDocument] = OrderedDict()
        self._seq = 0
        self._oldest_delta_seq = 0
        self._fill: Callable[[int], None] | None = None  # fills a user's content, lazily
        self._filled = 0  # users whose content is generated, in order
        self._tally: Callable[[int], tuple[int, int]] | None = None  # a user's mail, counted
        self._index: dict[str, int] = {}  # user id -> position
        self._drives: SandboxDrives | None = None  # generated on first use
        self._teams: TeamsData | None = None  # generated on first use
        self._chats: ChatsData | None = None  # generated on first use
        from .calendar_data import CalendarData  # it builds on this module: import when used

        self.calendar_data = CalendarData()  # calendars, events and contacts
        self.rules = RulesData(self)  # inbox rules and automatic replies

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def generate(cls, spec: TenantSpec, lazy: bool = False) -> Tenant:
        """A synthetic tenant, identical (ids, metadata, MIME bytes) for identical specs.

        `lazy`: users and folders now; each user's messages, calendars and contacts when
        the user is first looked up (`user`), every user before it first, so the content
        and its sequence numbers are the same as generated at once. A mutation or an
        expiry of delta tokens fills every user first. Lets a tenant of thousands of
        users start serving at once."""
        from .calendar_seed import calendar_filler
        from .mail_seed import (
            generate_tenant,  # the generator builds on this class: import when used
        )

        tenant, fill_mail, tally = generate_tenant(spec)
        tenant._tally = tally
        fill_calendar = calendar_filler(
            tenant.calendar_data,
            spec.seed,
            tenant.users,
            spec.events_per_user,
            spec.contacts_per_user,
        )

        def fill(index: int) -> None:
            fill_mail(index)
            fill_calendar(index)

        tenant._fill, tenant._filled = fill, 0
        if not lazy:
            tenant.fill_all()
        return tenant

    def fill_all(self) -> None:
        """Generate every user's content not generated yet (see `generate`'s `lazy`)."""
        self._fill_through(len(self._users) - 1)

    def _fill_through(self, index: int) -> None:
        if self._fill is None or self._filled > index:
            return
        with self._lock:
            while self._filled <= index:
                self._fill(self._filled)
                self._filled += 1
            if self._filled >= len(self._users):
                self._fill = None

    @classmethod
    def load(cls, directory: str | Path) -> Tenant:
        """A tenant read from `<directory>/<upn>/<folder path>/*.eml` and `<folder path>.mbox`."""
        from .loader import load_directory  # the loader builds on this class: import when used

        return load_directory(Path(directory))

    def add_user(self, user: SandboxUser, root_id: str) -> None:
        """Register a mailbox and its msgfolderroot folder (not listed by `folders`)."""
        with self._lock:
            self._index[user.id] = len(self._users)
            self._users.append(user)
            self._user_keys[user.id.lower()] = user
            self._user_keys[user.upn.lower()] = user
            parent = stable_id(FOLDER_ID_PREFIX, root_id, "top")
            root = SandboxFolder(root_id, user.id, "Top of Information Store", parent, ROOT)
            self._roots[user.id] = root
            self._folders[user.id] = {}
            self._messages[user.id] = {}

    def add_folder(self, folder: SandboxFolder) -> None:
        with self._lock:
            self._folders[folder.user_id][folder.id] = folder
            self._members[folder.id] = {}
            self._removals[folder.id] = []

    def add_message(self, message: SandboxMessage, source: MimeSource) -> SandboxMessage:
        """Store `message` as a new change (its seq and change_key are assigned here)."""
        with self._lock:
            self._seq += 1
            stamped = dataclasses.replace(
                message, seq=self._seq, change_key=change_key(message.id, self._seq)
            )
            self._messages[message.user_id][message.id] = stamped
            self._members[message.folder_id][message.id] = None
            self._ordered.pop(message.folder_id, None)
            self._sources[message.id] = source
            return stamped

    # --- reads --------------------------------------------------------------------------------

    @property
    def drives(self) -> SandboxDrives:
        """OneDrives and SharePoint libraries, generated from the same seed on first use."""
        with self._lock:
            if self._drives is None:
                self._drives = SandboxDrives.generate(self.spec or TenantSpec(), self._users)
            return self._drives

    @property
    def teams(self) -> TeamsData:
        """Teams, channels and channel messages, generated from the same seed on first use."""
        from .auth import SANDBOX_TENANT_ID
        from .teams_data import TeamsData

        with self._lock:
            if self._teams is None:
                spec = self.spec or TenantSpec()
                self._teams = TeamsData.generate(
                    spec, self._users, lambda: self.drives, SANDBOX_TENANT_ID
                )
            return self._teams

    @property
    def chats(self) -> ChatsData:
        """Teams chats and their messages, generated from the same seed on first use."""
        from .auth import SANDBOX_TENANT_ID
        from .chats_data import ChatsData

        with self._lock:
            if self._chats is None:
                spec = self.spec or TenantSpec()
                self._chats = ChatsData.generate_chats(
                    spec, self._users, lambda: self.drives, SANDBOX_TENANT_ID
                )
            return self._chats

    @property
    def users(self) -> list[SandboxUser]:
        with self._lock:
            return list(self._users)

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def oldest_delta_seq(self) -> int:
        return self._oldest_delta_seq

    def user(self, key: str) -> SandboxUser:
        """A user by id or UPN, its content generated (see `generate`'s `lazy`)."""
        with self._lock:
            user = self._user_keys[key.lower()]
        self._fill_through(self._index[user.id])
        return user

    def mailbox_usage(self, user_id: str) -> tuple[int, int]:
        """(messages, bytes) in the user's visible folders, as the folders' totalItemCount
        and size add up; a user not generated yet is tallied without being generated."""
        with self._lock:
            index = self._index[user_id]
            tally = self._tally if self._fill is not None and index >= self._filled else None
            if tally is None:
                counter = MailboxTally()
                for folder in self._folders[user_id].values():  # parents come before children
                    counter.add_folder(folder)
                    for message_id in self._members.get(folder.id, {}):
                        counter.add_message(self._messages[user_id][message_id], None)
                return counter.items, counter.bytes
        # Builds every message of the user to size it: outside the lock, so that the
        # tenant's other readers are not held up; it reads nothing the tenant stores.
        return tally(index)

    def root_folder_id(self, user_id: str) -> str:
        with self._lock:
            return self._roots[user_id].id

    def folders(self, user_id: str) -> list[SandboxFolder]:
        with self._lock:
            return list(self._folders[user_id].values())

    def child_folders(self, user_id: str, folder_id: str) -> list[SandboxFolder]:
        parent = self.folder(user_id, folder_id).id
        return [f for f in self.folders(user_id) if f.parent_id == parent]

    def folder(self, user_id: str, key: str) -> SandboxFolder:
        """A folder by id or by well-known name (case-insensitive); the root included."""
        with self._lock:
            folders = self._folders[user_id]
            if key in folders:
                return folders[key]
            root = self._roots[user_id]
            if key == root.id or key.lower() == ROOT:
                return root
            for folder in folders.values():
                if folder.well_known_name == key.lower():
                    return folder
            raise KeyError(key)

    def messages(self, user_id: str, folder_id: str) -> list[SandboxMessage]:
        """The folder's current messages, oldest first."""
        with self._lock:
            folder = self.folder(user_id, folder_id).id
            ordered = self._ordered.get(folder)
            if ordered is None:
                mailbox = self._messages[user_id]
                ordered = sorted(
                    (mailbox[i] for i in self._members.get(folder, ())),
                    key=lambda m: (m.received, m.id),
                )
                self._ordered[folder] = ordered
            return list(ordered)

    def message(self, user_id: str, message_id: str) -> SandboxMessage:
        with self._lock:
            return self._messages[user_id][message_id]

    def folder_size(self, user_id: str, folder_id: str) -> int:
        return sum(m.size for m in self.messages(user_id, folder_id))

    def changes_since(self, user_id: str, folder_id: str, seq: int) -> FolderChanges:
        """Messages added to or changed in the folder after `seq`, and ids that left it.

        An id that left and came back is only reported as changed. Callers check
        `oldest_delta_seq` first: below it the removal log may be incomplete.
        """
        with self._lock:
            folder = self.folder(user_id, folder_id).id
            members = self._members.get(folder, {})
            mailbox = self._messages[user_id]
            changed = sorted((mailbox[i] for i in members if mailbox[i].seq > seq), key=_by_seq)
            removed: dict[str, None] = {}
            for removed_seq, message_id in self._removals.get(folder, ()):
                if removed_seq > seq and message_id not in members:
                    removed[message_id] = None
            return FolderChanges(changed=changed, removed=list(removed))

    # --- content ------------------------------------------------------------------------------

    def mime(self, user_id: str, message_id: str) -> bytes:
        """The message's RFC 5322 bytes, exactly `message.size` long."""
        return self._document(user_id, message_id).to_bytes()

    def mime_chunks(
        self, user_id: str, message_id: str, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """The message's bytes in pieces, so that large messages stream in flat memory."""
        return self._document(user_id, message_id).chunks(chunk_size)

    def _document(self, user_id: str, message_id: str) -> MimeDocument:
        with self._lock:
            self.message(user_id, message_id)  # KeyError when gone or not this user's
            cached = self._mime_cache.get(message_id)
            if cached is not None:
                self._mime_cache.move_to_end(message_id)
                return cached
            source = self._sources[message_id]
        document = source.document()  # built outside the lock: sources are immutable
        if document.resident_bytes > _MIME_CACHE_MAX_RESIDENT:
            return document
        with self._lock:
            self._mime_cache[message_id] = document
            while len(self._mime_cache) > _MIME_CACHE_ENTRIES:
                self._mime_cache.popitem(last=False)
        return document

    # --- changes ------------------------------------------------------------------------------

    def expire_delta_tokens(self) -> None:
        """Make every delta token issued so far expired (tests of the 410 / resync path)."""
        self.fill_all()
        with self._lock:
            self._oldest_delta_seq = self._seq
            for folder, log in self._removals.items():
                self._removals[folder] = [e for e in log if e[0] > self._oldest_delta_seq]
            if self._drives is not None:
                self._drives.expire_delta_tokens()
            self.calendar_data.expire_delta_tokens()
            if self._teams is not None:
                self._teams.expire_delta_tokens()

    def mutate(self, mutation: Mutation) -> MutationResult:
        """Deliver, change, move and delete messages, deterministically from `mutation.seed`.

        Every message is touched at most once per mutation, so the result lists are disjoint.
        """
        self.fill_all()
        with self._lock:
            rng = random.Random(f"{self._seed}|mutation|{mutation.seed}|{self._seq}")
            users = [self.user(mutation.user)] if mutation.user else list(self._users)
            result = MutationResult(*mutate_mail(self, self._seed, rng, users, mutation))
            if any(getattr(mutation, kind) for kind in CHANGE_KINDS):
                changes = self.drives.mutate(mutation)
                result.files, result.files_by_change = changes.ids, changes.by_change
            from .calendar_mutations import mutate_calendar_data

            result.events, result.contacts = mutate_calendar_data(
                self.calendar_data, self._seed, users, mutation
            )
            if any(getattr(mutation, f"chat_{k}") for k in "posts replies edits deletions".split()):
                result.messages = self.teams.mutate(mutation, users)
            if mutation.chats_messages or mutation.chats_edits or mutation.chats_deletions:
                result.chat_messages = self.chats.mutate(mutation, users)
            result.rules = self.rules.mutate(rng, users, mutation.rule_changes)
            return result

    def message_ids(self, user_id: str) -> list[str]:
        """Every message id of the mailbox, hidden folders included, in the order stored."""
        with self._lock:
            return list(self._messages[user_id])

    def clock(self) -> datetime:
        """Mutation time: after the generated mail, derived from seq (never the wall clock)."""
        return EPOCH + timedelta(minutes=self._seq)

    def restamp(self, message: SandboxMessage, **changes: object) -> SandboxMessage:
        """Replace `message` by a new snapshot with a fresh seq and change key."""
        with self._lock:
            self._seq += 1
            updated = dataclasses.replace(
                message,
                seq=self._seq,
                change_key=change_key(message.id, self._seq),
                modified=self.clock(),
                **changes,  # type: ignore[arg-type]  # `changes` holds SandboxMessage's own keywords
            )
            self._messages[message.user_id][message.id] = updated
            self._ordered.pop(message.folder_id, None)
            self._ordered.pop(updated.folder_id, None)
            return updated

    def move_message(self, message: SandboxMessage, destination: str) -> None:
        """Move `message` to the folder `destination` of the same mailbox, as a new change."""
        with self._lock:
            self._members[message.folder_id].pop(message.id)
            self._removals[message.folder_id].append((self._seq + 1, message.id))
            self._members[destination][message.id] = None
            self.restamp(message, folder_id=destination)

    def delete_message(self, user_id: str, message_id: str) -> str:
        """Delete a message for good, as a new change; its id."""
        with self._lock:
            message = self._messages[user_id].pop(message_id)
            self._seq += 1
            self._members[message.folder_id].pop(message_id)
            self._removals[message.folder_id].append((self._seq, message_id))
            self._ordered.pop(message.folder_id, None)
            self._sources.pop(message_id, None)
            self._mime_cache.pop(message_id, None)
            return message_id


def _by_seq(message: SandboxMessage) -> int:
    return message.seq
