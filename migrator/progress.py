"""Progress on long work: a bar per workload on a terminal, periodic lines elsewhere.

Items are counted as items and bytes as bytes. A workload's total grows while its owners
list their folders, so it is shown as a lower bound ("120+") and no time is estimated while
owners wait for a worker; each line names how many owners are moving and waiting.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from ..mappings.sizes import readable_size


@dataclass
class _Counts:
    done: int = 0
    total: int = 0
    size: int = 0
    waiting: int = -1  # owners not started yet; -1: not told
    running: int = 0

    @property
    def settled(self) -> bool:
        """Every owner has started: the total grows no more than its last pages."""
        return self.waiting == 0

    def items(self) -> str:
        counted = max(self.total, self.done)  # an item counted late is still one done
        total = f"{counted}" if self.settled else f"{counted}+"
        return f"{self.done}/{total} items"

    def owners(self) -> str:
        if self.waiting < 0:
            return ""
        if not self.running and not self.waiting:
            return "owners done"
        return f"{self.running} owners moving, {self.waiting} waiting"

    def line(self, workload: str) -> str:
        parts = [self.items(), f"{readable_size(self.size)} written", self.owners()]
        return f"{workload}: " + ", ".join(p for p in parts if p)


class _Remaining(TimeRemainingColumn):
    """Time left, only once every owner has started (before, the total means little)."""

    def render(self, task: object) -> Text:
        if not getattr(task, "fields", {}).get("settled"):
            return Text("")
        return super().render(task)  # type: ignore[arg-type]  # rich hands its columns a Task


class ProgressReporter:
    """A `RunReporter` drawing rich progress bars on stderr, or logging a line every interval."""

    def __init__(self, console: Console | None = None, interval: float = 15.0) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.interval = interval
        self._lock = threading.Lock()
        self._counts: dict[str, _Counts] = {}
        self._tasks: dict[str, TaskID] = {}
        self._last = time.monotonic()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[items]}"),
            TextColumn("{task.fields[size]}"),
            _Remaining(),
            TextColumn("{task.fields[owners]}"),
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
        if not self.live and exc is None:  # an error's own line is the last one
            self._log_lines()

    def begin(self, phase: str) -> None:
        """A new pass: its heading, then bars of its own (the previous pass's stay above)."""
        with self._lock:
            for task in self._tasks.values():
                self._progress.remove_task(task)
            for workload, counts in self._counts.items():  # where the pass before ended
                self._say(counts.line(workload))
            self._counts.clear()
            self._tasks.clear()
            self._say(phase)

    def add_total(self, workload: str, items: int) -> None:
        with self._lock:
            self._of(workload).total += items
            self._show(workload)

    def advance(self, workload: str, items: int, size: int) -> None:
        with self._lock:
            counts = self._of(workload)
            counts.done += items
            counts.size += size
            self._show(workload)
            if not self.live and time.monotonic() - self._last >= self.interval:
                self._last = time.monotonic()
                self._log_lines()

    def owners(self, workload: str, waiting: int, running: int) -> None:
        with self._lock:
            counts = self._of(workload)
            counts.waiting, counts.running = waiting, running
            self._show(workload)

    def _of(self, workload: str) -> _Counts:
        if workload not in self._counts:
            self._counts[workload] = _Counts()
        return self._counts[workload]

    def _show(self, workload: str) -> None:
        counts = self._counts[workload]
        total = max(counts.total, counts.done) if counts.settled else None
        if workload not in self._tasks:
            self._tasks[workload] = self._progress.add_task(
                workload, total=total, items="", size="", owners="", settled=False
            )
        self._progress.update(
            self._tasks[workload],
            total=total,
            completed=counts.done,
            items=counts.items(),
            size=f"{readable_size(counts.size)} written",
            owners=counts.owners(),
            settled=counts.settled,
        )

    def _say(self, line: str) -> None:
        if self.live:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    def _log_lines(self) -> None:
        for workload, counts in self._counts.items():
            print(counts.line(workload), file=sys.stderr, flush=True)
