"""What every archive target's root must be before a run: a folder this process can write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
