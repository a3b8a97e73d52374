"""Every archive root is a BagIt bag (RFC 8493): its files under `data/`, a SHA-256 manifest
of them, so that anyone can check the archive with standard tools (`bagit.py --validate`).

    <root>/bagit.txt               "BagIt-Version: 1.0", UTF-8 tag files
    <root>/bag-info.txt            Bagging-Date, Payload-Oxum, Source-Organization, ...
    <root>/manifest-sha256.txt     one "<sha256> data/<path>" line per payload file
    <root>/tagmanifest-sha256.txt  the same for the four files above and README.txt
    <root>/README.txt              the layout, and how to validate the bag
    <root>/data/<owner>/...        what the targets write

The manifests say what is on disk at the end of a pass. A pass that writes (`run`,
`sync`, `retry-failed`) first removes them (`unseal`): while it writes, and after it
was killed or failed, the bag has no manifest and every validator calls it incomplete.
The command's process writes them again (`seal`) once its workers finished, hashing only
the files that changed since the previous pass (`archive_hashes`).

A root written before bags (owners' folders straight under it, no `bagit.txt`) is turned
into a bag the first time a target opens it (`open_bag`): its entries are renamed into a
staging folder named in a marker file, the staging folder is renamed to `data/`, then
`bagit.txt` is written and the marker removed. Renames are atomic and the marker says what
was left to do, so a kill at any moment is finished by the next open; a lock file keeps two
processes from doing it at once. The state's references are relative to each owner's
folder and stay valid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..migrator.errors import FatalError
from .archive_hashes import HASHES_NAME, HashCache, sha256_of
from .archive_readme import README, README_NAME
from .archive_write import TEMPORARY_PREFIX, sync_dir, write_atomically

PAYLOAD = "data"
BAGIT_NAME = "bagit.txt"
BAG_INFO_NAME = "bag-info.txt"
MANIFEST_NAME = "manifest-sha256.txt"
TAGMANIFEST_NAME = "tagmanifest-sha256.txt"
LOCK_NAME = ".hirondelle-bag.lock"
MOVING_NAME = ".hirondelle-bagging"  # the marker of a root being turned into a bag
STAGING_PREFIX = ".hirondelle-payload-"
BAGIT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
BAG_FILES = frozenset({BAGIT_NAME, BAG_INFO_NAME, MANIFEST_NAME, TAGMANIFEST_NAME, README_NAME})
OWN_PREFIX = TEMPORARY_PREFIX  # our lock, marker, cache and temporary files


def payload_dir(root: Path) -> Path:
    """Where the targets write: the bag's `data/`."""
    return root / PAYLOAD


@contextlib.contextmanager
def bag_lock(root: Path) -> Iterator[None]:
    """Exclusive, between processes, released by the kernel if the holder dies."""
    root.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _write_text(path: Path, text: str) -> None:
    """A tag file, whole or not at all, always synced (the bag outlives any pass)."""
    write_atomically(path, [text.encode()], durable=True)


def write_readme(root: Path) -> None:
    """README.txt in `root`, unless it already holds this text (written atomically)."""
    path = root / README_NAME
    try:
        if path.read_text(encoding="utf-8") == README:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    root.mkdir(parents=True, exist_ok=True)
    _write_text(path, README)


def open_bag(root: Path) -> Path:
    """Make `root` a bag (new, or moved from an archive written before bags) and return
    its payload folder. Targets call it as each owner opens: once a bag, it costs a lock
    and three looks."""
    root = Path(root)
    with bag_lock(root):
        _make_bag(root)
        if not (root / README_NAME).exists():  # refreshed by `unseal`: the tag manifest lists it
            write_readme(root)
    return payload_dir(root)


def _make_bag(root: Path) -> None:
    marker = root / MOVING_NAME
    if (root / BAGIT_NAME).exists() and not marker.exists():
        payload_dir(root).mkdir(exist_ok=True)
        return
    if not marker.exists():
        _drop_empty_staging(root)
        names = sorted(n for n in os.listdir(root) if not _is_bag_file(n))
        if not names:  # a new archive: bagit.txt first, so an empty data/ is never moved
            _write_text(root / BAGIT_NAME, BAGIT)
            payload_dir(root).mkdir(exist_ok=True)
            return
        staging = root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        _write_text(marker, json.dumps({"staging": staging.name, "names": names}))
    _finish_move(root, json.loads(marker.read_text(encoding="utf-8")))


def _is_bag_file(name: str) -> bool:
    return name in BAG_FILES or name.startswith(OWN_PREFIX)


def _drop_empty_staging(root: Path) -> None:
    """A staging folder made just before a kill, never named in a marker (so empty)."""
    for leftover in root.glob(f"{STAGING_PREFIX}*"):
        with contextlib.suppress(OSError):
            leftover.rmdir()  # never removes one that holds anything


def _finish_move(root: Path, plan: dict[str, Any]) -> None:
    staging = root / str(plan["staging"])
    if staging.exists():  # else it is data/ already
        for name in plan["names"]:
            with contextlib.suppress(FileNotFoundError):  # moved before a kill
                os.rename(root / str(name), staging / str(name))
        os.rename(staging, payload_dir(root))
        sync_dir(root)  # the renames reach the disk before the marker goes
    _drop_empty_staging(root)
    _write_text(root / BAGIT_NAME, BAGIT)
    (root / MOVING_NAME).unlink()


def unseal(root: Path) -> None:
    """Before a pass writes: no manifest claims anything until `seal` writes them again."""
    open_bag(root)
    with bag_lock(root):
        for name in (TAGMANIFEST_NAME, MANIFEST_NAME):
            (root / name).unlink(missing_ok=True)
        for leftover in root.glob(f"{OWN_PREFIX}*.tmp"):  # of a pass killed while sealing
            leftover.unlink(missing_ok=True)
        write_readme(root)  # this version's text, before the tag manifest lists it again


@dataclass(frozen=True, slots=True)
class Sealed:
    """What `seal` found: the payload, and how much of it had to be read again."""

    files: int
    bytes: int
    hashed_files: int
    hashed_bytes: int


def seal(root: Path, organization: str, description: str, agent: str) -> Sealed:
    """Write the manifests of the payload as it is now, then bag-info.txt and the tag
    manifest; each file replaced atomically, under the bag lock."""
    open_bag(root)
    with bag_lock(root), HashCache(root) as cache:
        files, size = _write_manifest(root, cache)
        info = {
            "Source-Organization": organization,
            "External-Description": description,
            "Bag-Software-Agent": agent,
            "Bagging-Date": datetime.now(UTC).date().isoformat(),
            "Payload-Oxum": f"{size}.{files}",
        }
        _write_text(root / BAG_INFO_NAME, "".join(f"{k}: {v}\n" for k, v in info.items()))
        _write_tag_manifest(root)
        return Sealed(files, size, cache.hashed, cache.hashed_bytes)


def _write_manifest(root: Path, cache: HashCache) -> tuple[int, int]:
    counted = [0, 0]  # files, bytes

    def lines() -> Iterator[bytes]:
        for path, stat in _payload_files(payload_dir(root)):
            name = manifest_path(path.relative_to(root))
            counted[0], counted[1] = counted[0] + 1, counted[1] + stat.st_size
            yield f"{cache.digest(path, stat)}  {name}\n".encode()

    write_atomically(root / MANIFEST_NAME, lines(), durable=True)
    return counted[0], counted[1]


def _payload_files(directory: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every file under `directory`, in directory order: a folder of a million messages
    is streamed, never held whole."""
    with os.scandir(directory) as scan:
        for entry in scan:
            if entry.is_dir(follow_symlinks=False):
                yield from _payload_files(Path(entry.path))
            else:
                yield Path(entry.path), entry.stat()


def manifest_path(relative: Path) -> str:
    """A path as a manifest line holds it: "/" between levels, CR and LF percent-encoded.

    RFC 8493 section 2.1.3 also asks for "%" as "%25", but no validator in use decodes it
    (bagit-python, bagit-java: https://github.com/LibraryOfCongress/bagit-python/issues/157):
    a "%" is written as itself, as they all write and read it."""
    text = relative.as_posix()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FatalError(
            f"archive file {relative!r} has a name that is not UTF-8: a bag manifest cannot "
            "list it; rename or move it out of the archive"
        ) from None
    return text.replace("\r", "%0D").replace("\n", "%0A")


def _write_tag_manifest(root: Path) -> None:
    names = [BAGIT_NAME, BAG_INFO_NAME, MANIFEST_NAME, README_NAME]
    lines = [f"{sha256_of(root / n)}  {n}\n" for n in names if (root / n).exists()]
    _write_text(root / TAGMANIFEST_NAME, "".join(lines))


__all__ = [
    "HASHES_NAME",
    "Sealed",
    "open_bag",
    "payload_dir",
    "seal",
    "unseal",
]
