"""A workload is three parts registered together: a source, a mapper and a target."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .model import Container, Item, Payload, TargetRef
from .protocols import Mapper, Source, Target

AttrsMapper = Callable[[Item], Payload]
"""Pure: a payload with the item's attributes only (no content), for attribute updates."""

VerifyNote = Callable[[Item, Mapping[str, Any], str | None], str | None]
"""Pure: what `verify` notes about a written item that is not a difference, from the item
as listed now, its metadata when it was written and the checksum recorded then; None for
nothing to note."""


@dataclass
class Workload:
    name: str
    source: Source
    mapper: Mapper
    target: Target
    attrs_mapper: AttrsMapper | None = None  # when None, an update fetches the content again
    # When set, an update fetches the content again only if this says it changed
    # (old metadata, new item); otherwise the attributes are enough (a rename).
    content_changed: Callable[[Mapping[str, Any], Item], bool] | None = None
    # The order updates of one page are applied in (e.g. parents before children, so a
    # renamed folder moves before the files in it are touched).
    update_order: Callable[[Item], Any] | None = None
    # Where a written item can be reached on the target, recorded in the links table for
    # other workloads (a Teams post linking a SharePoint file -> the migrated file):
    # (container, item, ref) -> (source URL, target URL), or None.
    link_of: Callable[[Container, Item, TargetRef], tuple[str, str] | None] | None = None
    # Items must reach the target in the order the source gives them (chat: a reply after
    # its root, a room filled oldest first): fetched one at a time, written in order.
    ordered: bool = False
    # False when the source spools content to disk (Blob): memory is not at stake.
    content_in_memory: bool = True
    # Target refs are paths (WebDAV): when an update moves a folder, the refs of
    # everything under it are rewritten ("<old>/" -> "<new>/").
    hierarchical_refs: bool = False
    # What `verify` notes about a written item besides differences (files: content that
    # SharePoint changed after upload, written as served rather than as listed).
    verify_note: VerifyNote | None = None
    # The Graph budget its owners draw on ("outlook" for a mailbox's mail, calendar and
    # contacts): owners of one budget never run in two processes at once. Empty: the
    # workload's own.
    budget: str = ""
    # True when a listing from the start names every item of the container (mail, files,
    # contacts, chat); False for a window (calendar): an item a fresh listing lacks was
    # removed only if the listing was complete.
    complete_listing: bool = True

    @property
    def budget_group(self) -> str:
        return self.budget or self.name


@dataclass(frozen=True)
class RunOptions:
    """How the engine runs: the integrator's knobs, all documented in the README."""

    owner_concurrency: int = 8  # owners (mailboxes) moved at once
    fetch_concurrency: int = 4  # items downloaded ahead of the target per container
    target_sessions: int = 1  # connections to the target per owner, used at once
    deletions: Literal["mirror", "keep"] = "mirror"
    item_attempts: int = 3  # target attempts for an item before it is marked failed
    retry_pause: float = 1.0  # first pause between target attempts (doubles)
    target_wait: float = 300.0  # seconds an unreachable target is waited for, then the owner fails
    memory_bytes: int = 256 * 1024 * 1024  # content held in memory at once, whole run
    users: frozenset[str] | None = None  # restrict to these owners (UPNs), None = all
    target_logins: dict[str, str] = field(default_factory=dict)  # UPN -> target login


class Reporter(Protocol):
    """Where progress goes (a progress bar, a log, nothing)."""

    def add_total(self, workload: str, items: int) -> None: ...

    def advance(self, workload: str, items: int, size: int) -> None: ...


class RunReporter(Reporter, Protocol):
    """What a command following a run shows: a `Reporter`, told also where the run stands."""

    def begin(self, phase: str) -> None:
        """A new pass starts ("run 12", "sync 13, resuming: ..."): counts start afresh."""

    def owners(self, workload: str, waiting: int, running: int) -> None:
        """How many of the workload's owners wait for a worker, and how many are moving."""


class SilentReporter:
    def add_total(self, workload: str, items: int) -> None:
        return None

    def advance(self, workload: str, items: int, size: int) -> None:
        return None

    def begin(self, phase: str) -> None:
        return None

    def owners(self, workload: str, waiting: int, running: int) -> None:
        return None
