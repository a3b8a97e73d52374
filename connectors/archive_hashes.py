"""The SHA-256 of every payload file of a bag, remembered between passes.

A sync changes a few files of an archive that may hold terabytes: hashing everything again
at each pass is out of the question. The cache is a SQLite file beside the bag's payload
(outside `data/`, not listed in the tag manifest, so validators ignore it) keyed by the
file's identity: device and inode, with its size, modification time and change time. The
targets set modification times themselves (a message's date, a file's own), so the
modification time alone could match a rewritten file; the change time cannot be set by
anyone and moves with every write, rename or restamp. A file whose identity changed is
hashed again; a copy of the bag elsewhere is hashed once, then cached there too.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from types import TracebackType

HASHES_NAME = ".hirondelle-hashes.sqlite"
COMMIT_EVERY = 2000  # rows per transaction: bounded memory, few fsyncs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    pass INTEGER NOT NULL,
    PRIMARY KEY (device, inode)
)
"""


def sha256_of(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


class HashCache:
    """One pass over a bag's payload: `digest` each file, then `close` drops the rows of
    files not seen in this pass (deleted or replaced). Used by one process at a time (the
    bag lock)."""

    def __init__(self, bag: Path) -> None:
        self.path = bag / HASHES_NAME
        self.connection = self._connect()
        self.hashed = 0  # files read in this pass
        self.hashed_bytes = 0
        self._pending = 0
        row = self.connection.execute("SELECT COALESCE(MAX(pass), 0) FROM hashes").fetchone()
        self.pass_number = int(row[0]) + 1

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self.path)
            connection.execute(_SCHEMA)
        except sqlite3.DatabaseError:  # damaged (a disk error): a cache is rebuilt, not repaired
            self.path.unlink(missing_ok=True)
            connection = sqlite3.connect(self.path)
            connection.execute(_SCHEMA)
        return connection

    def digest(self, path: Path, stat: os.stat_result) -> str:
        """The file's SHA-256, read from the cache when its identity is unchanged."""
        key = (stat.st_dev, stat.st_ino)
        row = self.connection.execute(
            "SELECT size, mtime_ns, ctime_ns, sha256 FROM hashes WHERE device=? AND inode=?", key
        ).fetchone()
        identity = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if row is not None and tuple(row[:3]) == identity:
            self.connection.execute(
                "UPDATE hashes SET pass=? WHERE device=? AND inode=?", (self.pass_number, *key)
            )
            digest = str(row[3])
        else:
            digest = sha256_of(path)
            self.hashed += 1
            self.hashed_bytes += stat.st_size
            self.connection.execute(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, *identity, digest, self.pass_number),
            )
        self._pending += 1
        if self._pending >= COMMIT_EVERY:
            self.connection.commit()
            self._pending = 0
        return digest

    def close(self, complete: bool = True) -> None:
        """Commit; after a complete pass, forget the files that are no longer there."""
        if complete:
            self.connection.execute("DELETE FROM hashes WHERE pass <> ?", (self.pass_number,))
        self.connection.commit()
        self.connection.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close(complete=kind is None)
