"""The files archive target: every drive as a plain directory tree on a local disk.

Layout::

    <root>/data/<login>/OneDrive/Docs/2024/Rapport.docx       a user's OneDrive
    <root>/data/<login>/<site>/<library>/...                  a SharePoint document library
                                                         (owner login "site:<name>")

Names are kept as a Linux file system takes them (`LOCAL` rules: only "/" and NUL are
refused, names of at most 255 bytes, NFC); a name that must change gets the digest suffix
of `mappings.file_names`. `TargetRef.folder` is the drive's directory relative to the owner's
(`"OneDrive"`), `TargetRef.ref` the item's path under it: refs are hierarchical, so a renamed
folder moves its subtree in one rename and the engine rewrites the refs under it.

A file is written to a hidden temporary name in its final folder and renamed onto its final
path once complete and stamped with its modification time: no half file is ever visible at
a final path. Writing into a folder changes the folder's own mtime, so every write restores
the parent's mtime afterwards. `listing` streams every file through SHA-256 for `verify`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from collections.abc import Iterator, Set
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..mappings.file_names import LOCAL, MappedPath, NameRules, target_name, target_path, twin_path
from ..migrator.errors import FatalError, Refused, SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .archive_root import ArchiveRoot
from .archive_write import TEMPORARY_PREFIX, sync_dir, write_atomically

CHUNK = 1024 * 1024
_TEMPORARY = re.compile(rf"^{re.escape(TEMPORARY_PREFIX)}[0-9a-f]{{32}}\.tmp$")


class FilesArchiveTarget(ArchiveRoot):
    """Writes each owner's drives under `root` (see the module docstring)."""

    capabilities = Capabilities(
        server_assigned_ids=False,
        keeps_timestamps=True,
        max_item_bytes=None,
        checksums=True,
        moves=False,  # between drives: the engine writes the item afresh
    )

    root_label = "files archive root"

    def __init__(self, root: Path, durable: bool = True, rules: NameRules = LOCAL) -> None:
        super().__init__(root, durable)
        self.rules = rules

    def open(self, owner: Owner) -> FilesArchiveSession:
        login = owner.target_login or owner.upn
        if not login:
            raise FatalError(f"owner {owner.source_id!r} has no login to name its directory")
        directory = self.directory(target_name(login, self.rules))
        return FilesArchiveSession(directory, self.durable, self.rules)


class FilesArchiveSession:
    """One owner's drives. Used by one thread at a time, as `TargetSession` says."""

    def __init__(self, owner_dir: Path, durable: bool = True, rules: NameRules = LOCAL) -> None:
        self.owner_dir = owner_dir
        self.durable = durable
        self.rules = rules

    # -- paths --

    def drive_dir(self, folder: str) -> Path:
        return self.owner_dir / folder

    def _mapped(self, folder: str, payload: Payload) -> MappedPath:
        source_path = payload.attrs.get("path")
        if not isinstance(source_path, str) or not source_path.strip("/"):
            raise SkipItem(f"item {payload.source_id} has no source path")
        rules = self.rules.under(str(self.drive_dir(folder).absolute()))
        mapped = target_path(source_path, rules)
        if mapped.refused is not None:
            raise SkipItem(f"{source_path}: {mapped.refused}")
        return mapped

    def _resolve(self, ref: TargetRef) -> Path:
        parts = ref.ref.split("/")
        if not ref.ref or any(p in ("", ".", "..") for p in parts) or ref.ref.startswith("/"):
            raise SkipItem(f"archive ref {ref.ref!r} is not a relative path")
        return self.drive_dir(ref.folder).joinpath(*parts)

    # -- TargetSession --

    def ensure_container(self, container: Container) -> str:
        """Create the drive's directory (parents first); return it relative to the owner."""
        segments = [target_name(s, self.rules) for s in container.path] or ["Drive"]
        folder = "/".join(segments)
        self._make_dirs(self.drive_dir(folder))
        return folder

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The final path, if it holds this item: a directory, or a file of the same size."""
        mapped = self._mapped(folder, payload).path
        candidates = (
            [mapped] if _is_folder(payload) else [mapped, twin_path(mapped, payload.source_id)]
        )
        for candidate in candidates:
            ref = TargetRef(folder, candidate)
            if ref.ref in exclude:
                continue
            path = self._resolve(ref)
            if _is_folder(payload):
                return ref if path.is_dir() else None
            try:
                found = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file() and found.st_size == payload.size and _same_content(path, payload):
                return ref
        return None

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Create the folder, or write the file under a temporary name and rename it."""
        ref = TargetRef(folder, self._mapped(folder, payload).path)
        path = self._resolve(ref)
        self._make_dirs(path.parent)
        if _is_folder(payload):
            if path.exists() and not path.is_dir():
                raise SkipItem(f"{ref.ref!r} is a file in the archive, not a folder")
            with _disk_errors(), self._parent_mtime_kept(path):
                path.mkdir(exist_ok=True)
            _stamp(path, payload)
        else:
            try:
                self._write_file(path, payload, clobber=False)
            except FileExistsError:
                same_size = path.is_file() and path.stat().st_size == payload.size
                if same_size and _same_content(path, payload):
                    self._write_file(path, payload)  # a second put of the same item
                    return ref
                # another item holds this name (NFC or case twins): keep both
                ref = TargetRef(folder, twin_path(ref.ref, payload.source_id))
                self._write_file(self._resolve(ref), payload)
        return ref

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Rename or move to the payload's path, rewrite the content when the payload has
        some, and restamp the modification time."""
        new_ref = TargetRef(ref.folder, self._mapped(ref.folder, payload).path)
        current, wanted = self._resolve(ref), self._resolve(new_ref)
        if new_ref != ref and current.exists():
            self._rename(current, wanted)
        has_content = payload.blob is not None or bool(payload.content)
        if not _is_folder(payload) and has_content:
            self._write_file(wanted, payload)
        elif not wanted.exists():
            raise Refused(f"{ref.ref!r} is no longer in the archive")
        _stamp(wanted, payload)
        return new_ref

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        raise SkipItem("items do not move between drives in the archive; written afresh")

    def remove(self, ref: TargetRef) -> None:
        """Delete the file or the folder with everything under it; gone is fine."""
        path = self._resolve(ref)
        if not path.parent.is_dir():
            return  # its folder was removed first, with everything under it
        with _disk_errors(), self._parent_mtime_kept(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self._sync_dir(path.parent)

    def listing(self, folder: str) -> list[Entry]:
        """Every folder (fingerprint "") and file ("sha256:<hex>", streamed) of the drive."""
        base = self.drive_dir(folder)
        entries: list[Entry] = []
        for directory, dirs, files in os.walk(base):
            dirs.sort()
            here = Path(directory)
            for name in dirs:
                entries.append(Entry(TargetRef(folder, _relative(here / name, base)), "", 0))
            for name in sorted(files):
                if _TEMPORARY.match(name):
                    continue
                path = here / name
                digest, size = _sha256_of(path)
                entries.append(Entry(TargetRef(folder, _relative(path, base)), digest, size))
        return entries

    def close(self) -> None:
        return None

    # -- writing --

    def _write_file(self, path: Path, payload: Payload, clobber: bool = True) -> None:
        """Write under a temporary name, then rename; with `clobber` False an existing
        file at `path` is left alone and `FileExistsError` raised."""
        if path.is_dir():
            raise Refused(f"{path.name!r} is a folder in the archive, not a file")
        with _disk_errors(), self._parent_mtime_kept(path):
            write_atomically(
                path,
                _content_chunks(payload),
                self.durable,
                clobber=clobber,
                before_rename=lambda temporary: _stamp(temporary, payload),
            )
        self._sync_dir(path.parent)

    def _rename(self, current: Path, wanted: Path) -> None:
        self._make_dirs(wanted.parent)
        if wanted.is_dir() and current.is_dir() and any(wanted.iterdir()):
            raise Refused(f"cannot rename {current.name!r}: {wanted.name!r} exists and is full")
        with _disk_errors(), self._parent_mtime_kept(current), self._parent_mtime_kept(wanted):
            os.replace(current, wanted)
        self._sync_dir(wanted.parent)

    def _make_dirs(self, directory: Path) -> None:
        """Create `directory` and its missing parents, one level at a time, parents first."""
        missing = []
        probe = directory
        while not probe.is_dir():
            missing.append(probe)
            probe = probe.parent
        for level in reversed(missing):
            with _disk_errors(), self._parent_mtime_kept(level):
                level.mkdir(exist_ok=True)
            self._sync_dir(level.parent)

    @contextmanager
    def _parent_mtime_kept(self, path: Path) -> Iterator[None]:
        """Keep the parent directory's times across a change of its entries."""
        parent = path.parent
        ours = parent == self.owner_dir or self.owner_dir in parent.parents
        try:
            before = parent.stat() if ours else None
        except FileNotFoundError:
            before = None
        yield
        if before is not None:
            os.utime(parent, ns=(before.st_atime_ns, before.st_mtime_ns))

    def _sync_dir(self, directory: Path) -> None:
        if self.durable:
            sync_dir(directory)


@contextmanager
def _disk_errors() -> Iterator[None]:
    """The archive's one error table: a full or read-only disk stops the run, a name the
    file system refuses fails the item, anything else is a bug and propagates."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            raise FatalError(f"files archive: {exc.strerror} ({exc.filename})") from exc
        if exc.errno in (errno.ENAMETOOLONG, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
            raise Refused(f"files archive: {exc.strerror} ({exc.filename})") from exc
        raise


def _is_folder(payload: Payload) -> bool:
    return payload.attrs.get("kind") == "folder"


def _content_chunks(payload: Payload) -> Iterator[bytes]:
    if payload.blob is None:
        yield payload.content
        return
    with payload.blob.open() as source:
        while chunk := source.read(CHUNK):
            yield chunk


def _stamp(path: Path, payload: Payload) -> None:
    moment = payload.attrs.get("mtime")
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        stamp = aware.timestamp()
        os.utime(path, (stamp, stamp))


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _same_content(path: Path, payload: Payload) -> bool:
    """Whether the file holds exactly the payload's bytes (twins may have equal sizes)."""
    digest = _sha256_of(path)[0]
    if payload.blob is not None and "sha256" in payload.blob.hashes:
        return digest == f"sha256:{payload.blob.hashes['sha256']}"
    if payload.blob is not None:
        with payload.blob.open() as stream:
            return digest == _sha256_of_stream(stream)[0]
    return digest == f"sha256:{hashlib.sha256(payload.content).hexdigest()}"


def _sha256_of(path: Path) -> tuple[str, int]:
    with open(path, "rb") as stream:
        return _sha256_of_stream(stream)


def _sha256_of_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return f"sha256:{digest.hexdigest()}", size
