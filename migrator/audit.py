"""The audit log: one JSON line per action on an item, for the integrator's client.

It records what was done to which item, when, and with what result. Never
content, never a secret: only ids, folders, sizes and reasons. Several processes
of one machine append to one run's file: each line is one `write` to a file opened
for appending, which the kernel never interleaves with another's.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import logs
from .errors import ConfigError


class AuditLog:
    """Appends JSON lines to `<directory>/run-<id><suffix>.jsonl`, each line as it happens,
    and keeps the run's log lines in `run-<id><suffix>.log` beside it while open."""

    def __init__(self, directory: Path | None, run_id: int, suffix: str = "") -> None:
        self.path: Path | None = None
        self.log_path: Path | None = None
        self._fd: int | None = None
        self._lock = threading.Lock()
        if directory is not None:
            self._open(directory / f"run-{run_id:06d}{suffix}.jsonl")
            self.log_path = directory / f"run-{run_id:06d}{suffix}.log"
            try:
                logs.open_run_log(self.log_path)
            except OSError as exc:
                raise ConfigError(
                    "state.audit_dir", f"cannot write {self.log_path}: {exc.strerror}"
                ) from None
        self.run_id = run_id

    @classmethod
    def at(cls, path: Path, run_id: int = 0) -> AuditLog:
        """A log written to `path` itself (a verify log is not a run's)."""
        log = cls(None, run_id)
        log._open(path)
        return log

    def _open(self, path: Path) -> None:
        # Readable by this user only: it names every mailbox, folder and file.
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError("state.audit_dir", f"cannot write {path}: {exc.strerror}") from None

    def record(self, action: str, result: str, **fields: Any) -> None:
        if self._fd is None:
            return
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "run": self.run_id,
            "action": action,
            "result": result,
            **{k: v for k, v in fields.items() if v is not None},
        }
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                if self.log_path is not None:
                    logs.close_run_log(self.log_path)


def verify_log_path(directory: Path) -> Path:
    """A new `verify-<UTC time>.jsonl` in `directory` (the names sort in time order)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return directory / f"verify-{stamp}.jsonl"


def write_verify_log(directory: Path | None, reports: Mapping[str, Any]) -> Path | None:
    """`verify`'s outcome, kept for `report`: a line per difference, then a line per workload
    with its counts. `reports` maps workload names to `VerifyReport`s."""
    if directory is None:
        return None
    log = AuditLog.at(verify_log_path(directory))
    try:
        for name, report in reports.items():
            for diff in report.differences:
                log.record(
                    "verify",
                    "difference",
                    workload=name,
                    owner=diff.owner,
                    container=diff.container,
                    kind=diff.kind,
                    source_id=diff.source_id,
                    ref=diff.ref,
                    detail=diff.detail,
                )
            log.record(
                "verify",
                "verified" if report.verified else "differences",
                workload=name,
                containers=len(report.containers),
                differences=len(report.differences),
                failed=report.failed,
                skipped=report.skipped,
                notes=report.notes,
            )
    finally:
        log.close()
    return log.path
