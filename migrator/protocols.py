"""The three roles a workload plugs into the engine: source, mapper, target.

Contracts live in the docstrings; connectors implement them, the engine relies
on nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence, Set
from typing import Any, Protocol, runtime_checkable

from .model import Blob, Capabilities, Container, Entry, Item, Owner, Page, Payload, TargetRef


class Source(Protocol):
    """Reads one workload out of Microsoft Graph (asynchronous)."""

    async def owners(self) -> list[Owner]:
        """Every owner (user) of the tenant the workload can read."""
        ...

    async def containers(self, owner: Owner) -> list[Container]:
        """The owner's containers with counts and sizes (cheap calls only)."""
        ...

    def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """Pages of changes since `cursor` (a stored next or delta link), or everything.

        Raises `CursorExpired` when the service no longer accepts `cursor`.
        """
        ...

    async def fetch(self, container: Container, item: Item) -> bytes | Blob:
        """The item's content: bytes (a MIME message, an event's JSON) or, for large
        items, a `Blob` spooled to disk. Raises `SkipItem` if it cannot be read."""
        ...

    async def listing(self, container: Container) -> list[Item]:
        """Every item of the container as it is now (ids and metadata), for plan and verify."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PagedListing(Protocol):
    """Optional for a `Source`: its listing a page at a time, so `verify` of a large
    container never holds it whole."""

    def listing_pages(self, container: Container) -> AsyncIterator[Sequence[Item]]:
        """The items `listing` returns, in pages as the service gives them."""
        ...


@runtime_checkable
class LiveSource(Protocol):
    """Optional: a source that can hand a large item's content while it is still arriving."""

    async def fetch_live(self, container: Container, item: Item) -> bytes | Blob:
        """`fetch`, except that large content may come as a live `Blob` (`Blob.live`):
        only for a target whose `Capabilities.live_content` says it takes one."""
        ...


Mapper = Callable[[Item, Any], Payload]
"""Pure: listed metadata plus content (bytes or a `Blob`, as the workload's source
gives) in, target payload out (no I/O)."""


class TargetSession(Protocol):
    """One owner's connection to a target. Blocking: the engine runs it in a pool.

    A session is used by one thread at a time.
    """

    def ensure_container(self, container: Container) -> str:
        """Create the target folder if missing (succeeds if it exists); return its name."""
        ...

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """What an earlier, possibly interrupted, attempt wrote for `payload`, or None.

        `exclude` holds the refs already owned by other items, so that two source
        items with the same fingerprint each keep their own copy.
        """
        ...

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Write the item. Raises `SkipItem` (too large...) or `FatalError` (quota...)."""
        ...

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Bring the stored item's attributes (flags...) in line with `payload`."""
        ...

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """Move a stored item to another folder of the same owner."""
        ...

    def remove(self, ref: TargetRef) -> None:
        """Delete a stored item; succeeds if it is already gone."""
        ...

    def listing(self, folder: str) -> list[Entry]:
        """Every item of the folder with its fingerprint and size, for `verify`."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StreamedListing(Protocol):
    """Optional for a `TargetSession`: its listing streamed, in any order."""

    def listing_stream(self, folder: str) -> Iterator[Entry]:
        """The entries `listing` returns, produced one at a time."""
        ...


class Target(Protocol):
    """A destination protocol (IMAP, WebDAV, archive...)."""

    capabilities: Capabilities

    def open(self, owner: Owner) -> TargetSession:
        """Log in as (or on behalf of) `owner`. Raises `FatalError` if refused."""
        ...

    def check(self) -> list[str]:
        """Connectivity and capability findings for `doctor` (empty when all is well)."""
        ...
