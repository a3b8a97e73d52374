"""What a pass did: the tallies, the progress reporter and the audit log, kept in step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .audit import AuditLog
from .model import Container, Item, TargetRef
from .workload import Reporter


@dataclass
class Tally:
    """What one workload's pass did; the summary of `run` and `sync`."""

    copied: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    failed_units: list[str] = field(default_factory=list)
    failed_owners: list[str] = field(default_factory=list)  # "owner: reason"
    unchecked: list[str] = field(default_factory=list)  # "owner:container: what, since when"

    def add(self, other: Tally) -> None:
        """Fold another pass's tally into this one."""
        for name in ("copied", "updated", "moved", "removed", "skipped", "failed", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed_units.extend(other.failed_units)
        self.failed_owners.extend(other.failed_owners)
        self.unchecked.extend(other.unchecked)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        """The tally `as_dict` gave (as stored with a job); missing counters are 0."""
        counters = {
            name: int(data.get(name) or 0)
            for name in ("copied", "updated", "moved", "removed", "skipped", "failed", "bytes")
        }
        return cls(
            **counters,
            failed_units=[str(u) for u in data.get("failed_units") or []],
            failed_owners=[str(u) for u in data.get("failed_owners") or []],
            unchecked=[str(u) for u in data.get("unchecked") or []],
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "copied": self.copied,
            "updated": self.updated,
            "moved": self.moved,
            "removed": self.removed,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "failed_units": list(self.failed_units),
            "failed_owners": list(self.failed_owners),
            "unchecked": list(self.unchecked),
        }


# The tally counter an audit line's action and result count in (the run report reads
# the audit logs with the same rules).
_COUNTED = {
    ("put", "done"): "copied",
    ("update", "done"): "updated",
    ("move", "done"): "moved",
    ("remove", "removed"): "removed",
}


def counter_of(action: str, result: str) -> str | None:
    """ "copied", "updated", "moved", "removed", "skipped", "failed", or None."""
    return _COUNTED.get((action, result), result if result in ("skipped", "failed") else None)


def _key(container: Container, item: Item) -> tuple[str, str, str]:
    return (container.owner, container.source_id, item.source_id)


def _readable_path(item: Item) -> str | None:
    """Where the item sits at the source, as its owner names it (files: its path)."""
    path = item.listed.get("path") if isinstance(item.meta, Mapping) else None
    return path if isinstance(path, str) and path else None


def ref_text(ref: TargetRef | None) -> str | None:
    return None if ref is None else f"{ref.folder}#{ref.ref}"


class Ledger:
    """Records each item's fate once: tally, progress and an audit line."""

    def __init__(self, workloads: list[str], audit: AuditLog, reporter: Reporter) -> None:
        self.tallies = {name: Tally() for name in workloads}
        self.audit, self.reporter = audit, reporter
        # bytes of items still arriving already shown as progress, by (owner, unit, item)
        self._streamed: dict[tuple[str, str, str], int] = {}

    def streaming(self, container: Container, item: Item, size: int) -> None:
        """`size` more bytes of a large item arrived (shown at once; `item` counts the rest
        when the item is written, so a bar moves during a long transfer)."""
        key = _key(container, item)
        self._streamed[key] = self._streamed.get(key, 0) + size
        self.reporter.advance(container.workload, 0, size)

    def item(
        self,
        action: str,
        result: str,
        container: Container,
        item: Item,
        ref: TargetRef | None = None,
        size: int | None = None,
        reason: str | None = None,
        remark: Mapping[str, Any] | None = None,
    ) -> None:
        """`remark`: what the source noticed about the content (`Blob.remark`), added to
        the audit line as it is."""
        tally = self.tallies[container.workload]
        counter = counter_of(action, result)
        if counter is not None:
            setattr(tally, counter, getattr(tally, counter) + 1)
        tally.bytes += size or 0
        streamed = self._streamed.pop(_key(container, item), 0)
        self.reporter.advance(container.workload, 1, (size or 0) - streamed)
        self.audit.record(
            action,
            result,
            workload=container.workload,
            owner=container.owner,
            container=container.display_path,
            source_id=item.source_id,
            path=_readable_path(item),
            ref=ref_text(ref),
            size=size,
            reason=reason,
            **(remark or {}),
        )

    def owner_failed(self, workload: str, owner: str, reason: str) -> None:
        """The owner could not go on (its login refused, its space full...): the others do."""
        self.tallies[workload].failed_owners.append(f"{owner}: {reason}")
        self.audit.record("owner", "failed", workload=workload, owner=owner, reason=reason)

    def unit_unchecked(self, container: Container, note: str) -> None:
        """The source did not read all of the container again in this pass (it says since
        when): not a failure, but the summary must not let it pass for a full check."""
        where = f"{container.owner}:{container.display_path}"
        self.tallies[container.workload].unchecked.append(f"{where}: {note}")

    def unit_failed(self, container: Container, reason: str) -> None:
        where = f"{container.owner}:{container.display_path}"
        self.tallies[container.workload].failed_units.append(f"{where}: {reason}")
        self.audit.record(
            "unit",
            "failed",
            owner=container.owner,
            container=container.display_path,
            reason=reason,
        )
