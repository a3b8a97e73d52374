"""Sort more records than memory should hold: sorted runs spilled to disk, merged back.

`verify` walks a target listing in ref order next to the state's rows in the same order;
a folder of a million messages is sorted here in runs of `run_size` records, so memory
holds one run while sorting and one record per run while merging.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
RUN_SIZE = 50_000


class SortedRuns(Generic[T]):
    """The records of an iterable in `key` order; iterate as often as needed, then close.

    Fewer records than `run_size` stay in memory; more are written to a temporary folder
    as sorted runs of pickled records, deleted by `close`.
    """

    def __init__(
        self, records: Iterable[T], key: Callable[[T], Any], run_size: int | None = None
    ) -> None:
        run_size = run_size or RUN_SIZE
        self._key = key
        self._memory: list[T] = []
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._runs: list[Path] = []
        self.count = 0
        for record in records:
            self._memory.append(record)
            self.count += 1
            if len(self._memory) >= run_size:
                self._spill()
        self._memory.sort(key=key)
        if self._runs and self._memory:
            self._spill()

    def _spill(self) -> None:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="hirondelle-sort-")
        self._memory.sort(key=self._key)
        path = Path(self._folder.name) / f"run-{len(self._runs)}"
        with path.open("wb") as run:
            for record in self._memory:
                pickle.dump(record, run, pickle.HIGHEST_PROTOCOL)
        self._runs.append(path)
        self._memory = []

    def __iter__(self) -> Iterator[T]:
        if not self._runs:
            return iter(self._memory)
        return heapq.merge(*(_read(path) for path in self._runs), key=self._key)

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._runs, self._memory = [], []

    def __enter__(self) -> SortedRuns[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _read(path: Path) -> Iterator[Any]:
    with path.open("rb") as run:
        while True:
            try:
                yield pickle.load(run)
            except EOFError:
                return
