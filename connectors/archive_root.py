"""What every archive target does with its root: the bag it writes in, the owner's
directory name, and what the root must be before a run (a folder this process can write)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..migrator.errors import FatalError
from ..migrator.model import Owner
from .archive_bag import open_bag, payload_dir


def root_problems(root: Path, label: str = "archive root") -> list[str]:
    """Findings for `doctor`: the root exists or can be created, and a file can be written
    in it (a real write, not a permission check: root, read-only mounts and full disks
    answer only to a write). Nothing is left behind."""
    probe = root
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return [f"{label} {root}: {probe} is not a directory"]
    try:
        handle, name = tempfile.mkstemp(prefix=".hirondelle-probe-", dir=probe)
        try:
            os.write(handle, b"probe")
            os.fsync(handle)
        finally:
            os.close(handle)
            os.unlink(name)
    except OSError as error:
        return [f"{label} {root}: {probe} cannot be written ({error.strerror})"]
    return []


def login_dir_name(owner: Owner) -> str:
    """The owner's directory name: its target login, else its UPN, if it can name one."""
    login = owner.target_login or owner.upn
    if not login or "/" in login or "\0" in login or login in (".", ".."):
        raise FatalError(f"target login {login!r} cannot name an archive directory")
    return login


class ArchiveRoot:
    """What every archive target shares: a bag at `root` (owners go under its payload,
    `archive_bag`), whether writes are synced (`durable`), and doctor's check of the root.

    `durable` (default) syncs every file and directory before `put` returns, so that an
    item marked done survives a power cut; turn it off for throwaway archives.
    """

    root_label = "archive root"  # how doctor names the root

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self.payload = payload_dir(self.root)
        self.durable = durable

    def directory(self, name: str) -> Path:
        """An owner's directory in the bag (made a bag first if it is not one yet)."""
        return open_bag(self.root) / name

    def check(self) -> list[str]:
        """Findings for `doctor`: the root must exist (or be creatable) and be writable."""
        return root_problems(self.root, self.root_label)
