"""Drive-item payloads as the files mapper makes them, for the files targets' tests."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime
from pathlib import Path

from hirondelle.migrator.model import Blob, Payload

MTIME = datetime(2021, 3, 14, 15, 9, 26, tzinfo=UTC)
_ids = itertools.count(1)


def folder(path: str, source_id: str | None = None) -> Payload:
    """A folder at `path` (the source path, relative to the drive root)."""
    attrs = {"kind": "folder", "path": path, "mtime": MTIME, "size": 0, "quickXorHash": None}
    return Payload(source_id or f"folder-{next(_ids)}", b"", "", attrs)


def file(
    spool: Path,
    path: str,
    content: bytes,
    source_id: str | None = None,
    mtime: datetime = MTIME,
) -> Payload:
    """A file at `path` whose content is spooled to a `Blob` under `spool`."""
    source_id = source_id or f"file-{next(_ids)}"
    spooled = spool / f"{source_id}-{next(_ids)}.blob"
    spooled.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    attrs = {"kind": "file", "path": path, "mtime": mtime, "size": len(content)}
    blob = Blob(spooled, len(content), {"sha256": digest})
    return Payload(source_id, b"", f"sha256:{digest}", {**attrs, "quickXorHash": None}, blob=blob)


def streamed(fifo: Path, path: str, size: int, digest: str, source_id: str) -> Payload:
    """A file whose `Blob` is a named pipe: its content arrives as the test writes it."""
    attrs = {"kind": "file", "path": path, "mtime": MTIME, "size": size, "quickXorHash": None}
    blob = Blob(fifo, size, {"sha256": digest})
    return Payload(source_id, b"", f"sha256:{digest}", attrs, blob=blob)


def renamed(payload: Payload, path: str) -> Payload:
    """The same item's attributes at a new path, without content (`attrs_only`)."""
    return Payload(payload.source_id, b"", "", {**payload.attrs, "path": path})
