"""Progress on long work: a bar per workload on a terminal, periodic lines elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)


class ProgressReporter:
    """A `Reporter` drawing rich progress bars on stderr, or logging a line every interval."""

    def __init__(self, console: Console | None = None, interval: float = 15.0) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.interval = interval
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # workload -> [done, total, bytes]
        self._tasks: dict[str, TaskID] = {}
        self._last = time.monotonic()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not self.live,
        )

    def __enter__(self) -> ProgressReporter:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
        if not self.live:
            self._log_lines()

    def add_total(self, workload: str, items: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(workload, [0, 0, 0])
            counts[1] += items
            if workload not in self._tasks:
                self._tasks[workload] = self._progress.add_task(workload, total=counts[1])
            self._progress.update(self._tasks[workload], total=counts[1])

    def advance(self, workload: str, items: int, size: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(workload, [0, 0, 0])
            counts[0] += items
            counts[2] += size
            if workload in self._tasks:
                self._progress.update(self._tasks[workload], advance=items)
            if not self.live and time.monotonic() - self._last >= self.interval:
                self._last = time.monotonic()
                self._log_lines()

    def _log_lines(self) -> None:
        for workload, (done, total, size) in self._counts.items():
            print(
                f"{workload}: {done}/{total} items, {size / 1e6:.1f} MB written",
                file=sys.stderr,
                flush=True,
            )
