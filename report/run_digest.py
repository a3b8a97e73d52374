"""What the run report shows: the state's view and the audit logs, read in bounded memory.

The audit logs are read a line at a time. What is kept: counters per workload and result, per
owner and workload, per reason of failure or skip (at most `REASONS` distinct reasons, the rest
counted together), items and bytes written per minute, and the first `LISTED` failures, skipped
items and verify differences (the audit logs have them all).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..migrator.ledger import counter_of

LISTED = 200  # failures, skipped items and differences listed one by one
REASONS = 200  # distinct reasons counted one by one
POINTS = 240  # points of the throughput charts at most
RESULTS = ("copied", "updated", "moved", "removed", "skipped", "failed")
VERIFY_PREFIX = "verify-"


@dataclass
class Listed:
    """An item, folder or owner as the page lists it."""

    workload: str
    owner: str
    where: str  # its folder and path at the source, as its owner names them
    reason: str
    run: int | str = ""
    kind: str = ""


@dataclass
class OwnerResults:
    workload: str
    owner: str
    counts: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    status: str = ""  # of the latest run's job
    error: str = ""


@dataclass
class RunTimes:
    run: int
    first: str = ""
    last: str = ""
    lines: int = 0


class Reasons:
    """Counts per reason, at most `REASONS` reasons by name."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.other: Counter[str] = Counter()

    def add(self, workload: str, reason: str) -> None:
        key = (workload, reason)
        if key in self.counts or len(self.counts) < REASONS:
            self.counts[key] += 1
        else:
            self.other[workload] += 1

    def most_common(self) -> list[tuple[str, str, int]]:
        found = [(w, r, n) for (w, r), n in self.counts.most_common()]
        return found + [(w, "", n) for w, n in self.other.items()]


class RunDigest:
    """The state's report (`operations.status`) and the audit logs of every run."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.results: dict[str, Counter[str]] = {w: Counter() for w in state["workloads"]}
        self.owners: dict[tuple[str, str], OwnerResults] = {}
        self.failures: list[Listed] = []
        self.skipped: list[Listed] = []
        self.failure_reasons = Reasons()
        self.skip_reasons = Reasons()
        self.minutes: dict[str, list[int]] = {}  # "YYYY-MM-DDTHH:MM" -> [items, bytes]
        self.runs: dict[int, RunTimes] = {}
        self.verify: dict[str, dict[str, Any]] = {}
        self.differences: list[Listed] = []
        self.verify_file = ""
        self.difference_count = 0
        for job in (state.get("run") or {}).get("owners", []):
            owner = self._owner(job["workload"], job["owner"])
            owner.status, owner.error = job["status"], job["error"] or ""

    def _owner(self, workload: str, owner: str) -> OwnerResults:
        key = (workload, owner)
        if key not in self.owners:
            self.owners[key] = OwnerResults(workload, owner)
        return self.owners[key]

    def read_audit(self, directory: Path | None) -> None:
        if directory is None or not directory.is_dir():
            return
        for path in sorted(directory.glob("run-*.jsonl")):
            for line in _lines(path):
                self._line(line)
        verifies = sorted(directory.glob(f"{VERIFY_PREFIX}*.jsonl"))
        if verifies:
            self.verify_file = verifies[-1].name
            for line in _lines(verifies[-1]):
                self._verify_line(line)

    def _line(self, line: dict[str, Any]) -> None:
        action, result = str(line.get("action")), str(line.get("result"))
        workload, owner = str(line.get("workload") or ""), str(line.get("owner") or "")
        counter = counter_of(action, result)
        self._times(line)
        if counter is None:
            return
        if workload:
            self.results.setdefault(workload, Counter())[counter] += 1
        size = line["size"] if isinstance(line.get("size"), int) else 0
        if owner:
            entry = self._owner(workload, owner)
            entry.counts[counter] += 1
            entry.bytes += size if counter != "skipped" else 0
        if counter in ("copied", "updated", "moved"):
            minute = self.minutes.setdefault(str(line.get("ts", ""))[:16], [0, 0])
            minute[0] += 1
            minute[1] += size
        elif counter in ("skipped", "failed"):
            self._listed(line, counter)

    def _listed(self, line: dict[str, Any], counter: str) -> None:
        workload, reason = str(line.get("workload") or ""), str(line.get("reason") or "")
        reasons, listed = (
            (self.failure_reasons, self.failures)
            if counter == "failed"
            else (self.skip_reasons, self.skipped)
        )
        reasons.add(workload, reason)
        if len(listed) < LISTED:
            kind = str(line.get("action")) if line.get("action") in ("owner", "unit") else ""
            listed.append(
                Listed(
                    workload,
                    str(line.get("owner") or ""),
                    _where(line),
                    reason,
                    line.get("run", ""),
                    kind,
                )
            )

    def _times(self, line: dict[str, Any]) -> None:
        run, ts = line.get("run"), str(line.get("ts") or "")
        if not isinstance(run, int) or not ts:
            return
        times = self.runs.setdefault(run, RunTimes(run, ts, ts))
        times.first, times.last = min(times.first, ts), max(times.last, ts)
        times.lines += 1

    def _verify_line(self, line: dict[str, Any]) -> None:
        workload = str(line.get("workload") or "")
        if line.get("result") == "difference":
            self.difference_count += 1
            if len(self.differences) < LISTED:
                where = _where(line) + (f" ({line['source_id']})" if line.get("source_id") else "")
                self.differences.append(
                    Listed(
                        workload,
                        str(line.get("owner") or ""),
                        where,
                        str(line.get("detail") or ""),
                        kind=str(line.get("kind") or ""),
                    )
                )
        elif line.get("result") in ("verified", "differences"):
            self.verify[workload] = line

    def throughput(self) -> tuple[list[str], list[int], list[float]]:
        """Items and megabytes per minute, one point per minute (or per several minutes when
        the runs lasted long: at most `POINTS` points, each the mean of its minutes)."""
        minutes = sorted(self.minutes)
        step = max(1, -(-len(minutes) // POINTS))
        labels, items, megabytes = [], [], []
        for start in range(0, len(minutes), step):
            chunk = minutes[start : start + step]
            labels.append(chunk[0].replace("T", " "))
            items.append(round(sum(self.minutes[m][0] for m in chunk) / len(chunk)))
            megabytes.append(sum(self.minutes[m][1] for m in chunk) / len(chunk) / 1e6)
        return labels, items, megabytes

    def context(self) -> dict[str, Any]:
        owners = sorted(self.owners.values(), key=lambda o: (o.owner, o.workload))
        return {
            "state": self.state,
            "results": self.results,
            "result_order": RESULTS,
            "owners": owners,
            "failures": self.failures,
            "failure_count": sum(r.get("failed", 0) for r in self.results.values()),
            "failure_reasons": self.failure_reasons.most_common(),
            "skipped": self.skipped,
            "skip_count": sum(r.get("skipped", 0) for r in self.results.values()),
            "skip_reasons": self.skip_reasons.most_common(),
            "runs": [self.runs[k] for k in sorted(self.runs)],
            "verify": self.verify,
            "verify_file": self.verify_file,
            "differences": self.differences,
            "difference_count": self.difference_count,
            "listed": LISTED,
            "written_minutes": len(self.minutes),
        }


def _where(line: dict[str, Any]) -> str:
    container, path = str(line.get("container") or ""), str(line.get("path") or "")
    if path and container and not path.startswith(container):
        return f"{container}/{path}"
    return path or container or str(line.get("source_id") or "")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines of an audit log; a line cut short by a crash is passed over."""
    with path.open(encoding="utf-8") as file:
        for text in file:
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line
