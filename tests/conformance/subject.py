"""What the contract needs to know about one target under test.

A `TargetUnderTest` is a target built against its real server, an owner with nothing
stored yet, the items of its workload (`Items`), and a read-back of what the protocol
itself cannot show (flags, dates, bytes on disk). The contract reads the target's
`Capabilities` for every check that depends on them; the few facts that belong to a
server rather than to the target are fields here, each saying why.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hirondelle.migrator.model import Capabilities, Container, Owner, Payload, TargetRef
from hirondelle.migrator.protocols import Target, TargetSession


@dataclass(frozen=True)
class Stored:
    """What a read-back shows of a stored item; None where the target cannot show it."""

    flags: frozenset[str] | None = None
    date: datetime | None = None
    content: bytes | None = None


def nothing_shown(ref: TargetRef) -> Stored:
    return Stored()


class Items(ABC):
    """The items and containers of one workload, for one owner."""

    workload: str
    # the fingerprint is a checksum of the content: a target that keeps no checksums
    # (`Capabilities.checksums`) lists "" for it
    content_fingerprints = False
    # what a `SkipItem` refusing the workload's empty item says
    empty_refusal: tuple[str, ...] = ("empty", "zero")
    # the server itself refuses an empty item (`Refused`, a failure), not only the target
    empty_refused_by_server = False

    def __init__(self, owner: Owner, spool: Path) -> None:
        self.owner = owner
        self.spool = spool

    @abstractmethod
    def container(self, name: str) -> Container:
        """A container of the workload named `name`."""

    @abstractmethod
    def unicode_containers(self) -> list[Container]:
        """Containers whose names a target must keep apart (accents, emoji, slashes...)."""

    @abstractmethod
    def items(self, count: int) -> list[Payload]:
        """`count` distinct items, as varied as the workload's items are."""

    @abstractmethod
    def empty(self) -> Payload:
        """The workload's empty item."""

    @abstractmethod
    def oversized(self, limit: int) -> Payload:
        """An item over `limit` bytes."""

    def item(self) -> Payload:
        (one,) = self.items(1)
        return one


@dataclass
class TargetUnderTest:
    """One target with a fresh owner, and read-back probes for the contract's assertions."""

    name: str
    workload: str
    kind: str
    target: Target
    owner: Owner
    items: Items
    read_back: Callable[[TargetRef], Stored] = nothing_shown
    # the listing gives each item's stored size; False: -1, the target cannot tell it
    sizes_listed: bool = True
    # a second `put` of a written item returns its ref instead of writing it again; by
    # default only where the target names items itself (server-assigned ids do not)
    put_twice_same_ref: bool | None = None
    # the words a `SkipItem` over `max_item_bytes` says: the limit itself, unless the
    # server is the one that refuses
    over_limit_reason: str | None = None
    # the server behind the target keeps modification times (a WebDAV target declares
    # it may, and finds out per server)
    server_keeps_times: bool = True
    sessions: list[TargetSession] = field(default_factory=list)

    @property
    def capabilities(self) -> Capabilities:
        return self.target.capabilities

    @property
    def reads_back(self) -> bool:
        """Whether `read_back` shows anything: a check of what it shows means nothing
        for a target that has none (every field None)."""
        return self.read_back is not nothing_shown

    @property
    def same_ref_on_second_put(self) -> bool:
        if self.put_twice_same_ref is not None:
            return self.put_twice_same_ref
        return not self.capabilities.server_assigned_ids

    def session(self) -> TargetSession:
        """A new session for the owner, closed after the test."""
        session = self.target.open(self.owner)
        self.sessions.append(session)
        return session

    def end(self, session: TargetSession) -> None:
        """Close `session` now, as a run that ends cleanly does."""
        self.sessions.remove(session)
        session.close()

    def container(self, name: str) -> Container:
        return self.items.container(name)

    def close(self) -> None:
        for session in self.sessions:
            session.close()
