"""How every archive target writes a file: whole or not at all, and durable on request.

A file is written to a hidden temporary sibling with a fixed-length name (the final name
may already be as long as the file system allows), synced when `durable`, then renamed
onto its final path: a reader never sees half a file, and a crash leaves at worst a
temporary file, which the targets skip (`TEMPORARY_PREFIX`). A rename reaches the disk
only once its directory is synced too (`sync_dir`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

TEMPORARY_PREFIX = ".hirondelle-"


def temporary_sibling(path: Path) -> Path:
    """A fresh temporary name in `path`'s directory: ".hirondelle-<32 hex>.tmp"."""
    return path.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}.tmp")


def sync_dir(directory: Path) -> None:
    """fsync a directory, so that the names created or renamed in it reach the disk."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(
    path: Path,
    chunks: Iterable[bytes],
    durable: bool,
    *,
    sync_parent: bool = False,
    clobber: bool = True,
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    """Write `chunks` to a temporary sibling, then rename it onto `path`.

    `durable` syncs the file first (and with `sync_parent`, its directory after the
    rename); `before_rename` is given the complete temporary file (to stamp its times);
    with `clobber` False an existing `path` is left alone and `FileExistsError` raised
    (a hard link is atomic and refuses an existing name).
    """
    temporary = temporary_sibling(path)
    try:
        with open(temporary, "xb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        if before_rename is not None:
            before_rename(temporary)
        if clobber:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    if durable and sync_parent:  # the rename itself must reach the disk too
        sync_dir(path.parent)
