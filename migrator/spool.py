"""Where downloaded file contents wait for the target: beside the state, this user's only.

Each process spools into its own folder (`<host>-<pid>`), removed when it ends. A
process killed with -9 cannot remove its own: the next one of this machine sweeps the
folders of processes that are gone, so spooled contents never pile up.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)


def spool_root(state_url: str, base_dir: Path) -> Path:
    """Beside an SQLite state; in the configuration's folder for a database server."""
    if state_url.startswith("sqlite:///") and not state_url.endswith(":memory:"):
        return Path(state_url.removeprefix("sqlite:///")).parent / "spool"
    return base_dir / "spool"


def process_spool(root: Path) -> Path:
    """This process's spool folder (0700), after sweeping those of dead processes."""
    sweep(root)
    mine = root / f"{socket.gethostname()}-{os.getpid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    mine.mkdir(mode=0o700, exist_ok=True)
    return mine


def sweep(root: Path) -> int:
    """Remove the spool folders this machine's dead processes left; how many."""
    if not root.is_dir():
        return 0
    host, swept = socket.gethostname(), 0
    for entry in root.iterdir():
        name, _, pid = entry.name.rpartition("-")
        if name != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        swept += 1
    if swept:
        log.info("removed %d spool folders left by processes that were killed", swept)
    return swept


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process of that id exists on this machine (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
