"""The audit log: one JSON line per action on an item, for the integrator's client.

It records what was done to which item, when, and with what result. Never
content, never a secret: only ids, folders, sizes and reasons.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


class AuditLog:
    """Appends JSON lines to `<directory>/run-<id>.jsonl`; flushed after every line."""

    def __init__(self, directory: Path | None, run_id: int) -> None:
        self.path: Path | None = None
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / f"run-{run_id:06d}.jsonl"
            self._file = self.path.open("a", encoding="utf-8")
        self.run_id = run_id

    def record(self, action: str, result: str, **fields: Any) -> None:
        if self._file is None:
            return
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "run": self.run_id,
            "action": action,
            "result": result,
            **{k: v for k, v in fields.items() if v is not None},
        }
        with self._lock:
            self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
