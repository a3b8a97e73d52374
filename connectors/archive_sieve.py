"""The Sieve archive target: each user's inbox rules and automatic replies as one `.sieve`
file beside the mail archive's Maildir of that user.

Layout, per owner (the target login, else the UPN), under the bag's payload (`archive_bag`)::

    <root>/data/<login>/Maildir/               the mail archive (`archive`), when written there
    <root>/data/<login>/outlook-rules.sieve    the Sieve script (RFC 5228), UTF-8

The file is written whole or not at all (`archive_write`); the name is both the folder and
the ref. `find` answers for a file holding exactly the payload's bytes, so a rerun after a
crash rewrites at most this one file. Dovecot serves it as is: copy it to `~/sieve/` and
link `~/.dovecot.sieve` to it, or `doveadm sieve put -a -u <user> outlook-rules < file`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from pathlib import Path

from ..migrator.errors import SkipItem
from ..migrator.model import Container, Entry, Owner, Payload, TargetRef
from .archive_root import ArchiveRoot, login_dir_name
from .archive_write import sync_dir, write_atomically
from .managesieve_settings import SCRIPT_CAPABILITIES, SCRIPT_NAME

SUFFIX = ".sieve"


class SieveArchiveTarget(ArchiveRoot):
    """Writes each owner's Sieve script under `root` (see the module docstring)."""

    capabilities = SCRIPT_CAPABILITIES
    root_label = "rules archive root"

    def open(self, owner: Owner) -> SieveArchiveSession:
        return SieveArchiveSession(self.directory(login_dir_name(owner)), self.durable)

    def server_extensions(self) -> frozenset[str] | None:
        """A file runs on whatever server it is imported into: assume every extension."""
        return None


class SieveArchiveSession:
    """One owner's script file. Used by one thread at a time, as `TargetSession` says."""

    def __init__(self, owner_dir: Path, durable: bool = True) -> None:
        self.owner_dir = owner_dir
        self.durable = durable

    def path(self, name: str) -> Path:
        return self.owner_dir / f"{name}{SUFFIX}"

    def _read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            return None

    def ensure_container(self, container: Container) -> str:
        self.owner_dir.mkdir(parents=True, exist_ok=True)
        return SCRIPT_NAME

    def put(self, folder: str, payload: Payload) -> TargetRef:
        self.owner_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path(folder), [payload.content], self.durable, sync_parent=True)
        return TargetRef(folder, folder, stored_size=len(payload.content))

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        if folder in exclude:
            return None
        stored = self._read(folder)
        if stored is None or stored != payload.content:
            return None
        return TargetRef(folder, folder, stored_size=len(stored))

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        return self.put(ref.folder, payload)

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        raise SkipItem("a Sieve script has one place per user: it does not move")

    def remove(self, ref: TargetRef) -> None:
        path = self.path(ref.ref)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        if self.durable:
            sync_dir(path.parent)

    def listing(self, folder: str) -> list[Entry]:
        stored = self._read(folder)
        if stored is None:
            return []
        ref = TargetRef(folder, folder, stored_size=len(stored))
        return [Entry(ref, hashlib.sha256(stored).hexdigest(), len(stored))]

    def close(self) -> None:
        pass
