"""Spooled contents: a folder per process beside the state, swept when its process died."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

from hirondelle.migrator.spool import process_spool, spool_root, sweep


def test_the_spool_is_beside_an_sqlite_state(tmp_path: Path) -> None:
    assert spool_root("sqlite:////var/state/hirondelle.sqlite", tmp_path) == Path(
        "/var/state/spool"
    )
    assert spool_root("postgresql+psycopg://h/db", tmp_path) == tmp_path / "spool"


def test_folders_of_dead_processes_are_swept_and_no_one_elses(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    for name in (f"{host}-{dead}", f"{host}-{os.getppid()}", "another-machine-1"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hirondelle-drive-x.part").write_bytes(b"content")
    mine = process_spool(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{host}-{os.getppid()}", "another-machine-1", f"{host}-{os.getpid()}"]
    )
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    assert sweep(tmp_path) == 0
