"""The three roles a workload plugs into the engine: source, mapper, target.

Contracts live in the docstrings; connectors implement them, the engine relies
on nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence, Set
from typing import Any, Protocol, runtime_checkable

from .errors import ItemError, Retriable
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
class BatchFetch(Protocol):
    """Optional for a `Source`: several items fetched in one round trip. The answer holds
    each item's content, or the `ItemError` that keeps that item from being carried, or
    the `Retriable` that kept it from coming this time (that item fails alone)."""

    async def fetch_many(
        self, container: Container, items: Sequence[Item]
    ) -> list[bytes | ItemError | Retriable]: ...


@runtime_checkable
class FolderTree(Protocol):
    """Optional for a `Source` whose containers form a tree with hidden parts (mail): the
    visible containers and the hidden ones' display paths from one walk, for the plan."""

    async def folder_tree(self, owner: Owner) -> tuple[list[Container], list[str]]: ...


@runtime_checkable
class HiddenFolders(Protocol):
    """Optional for a `Source`: the display paths of the containers `containers` leaves
    out on purpose (hidden folders), which the plan reports as not carried."""

    async def hidden_folders(self, owner: Owner) -> list[str]: ...


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
class BatchPut(Protocol):
    """Optional for a `TargetSession`: several items stored in one round trip (IMAP
    MULTIAPPEND). The answer holds each payload's ref, or the `ItemError` that kept that
    one item out; a `Retriable` raised means any part of the batch may have landed."""

    def put_many(self, folder: str, payloads: Sequence[Payload]) -> list[TargetRef | ItemError]: ...


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


@runtime_checkable
class Discovery(Protocol):
    """Optional for a `Target` that discovers where each owner's data goes (CalDAV and
    CardDAV home sets): what its last `check` found, which `doctor` shows."""

    found: list[str]
