"""The values every workload moves through the engine.

The engine knows nothing about mail, files or chat: it moves `Item`s out of a
`Container` of a source owner, asks the workload's mapper for a `Payload`, and
hands that payload to a target session. Everything here is immutable.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict, cast

if TYPE_CHECKING:
    from .feed import ContentFeed


@dataclass(frozen=True, slots=True)
class Owner:
    """A source identity (a mailbox, a drive owner) and where it goes on the target."""

    upn: str
    source_id: str
    display_name: str = ""
    target_login: str = ""  # the target identity; defaults to the UPN


@dataclass(frozen=True, slots=True)
class Container:
    """One resumable grain of work: a mail folder, a drive, a channel, a calendar."""

    workload: str
    owner: str  # the owner's UPN
    source_id: str  # immutable Graph id
    path: tuple[str, ...]  # display names from the root, for the target and the plan
    role: str | None = None  # Graph well-known name ("inbox", "sentitems", ...)
    path_roles: tuple[str | None, ...] = ()  # well-known name of each folder along `path`
    total_items: int = 0
    size_bytes: int = 0

    @property
    def display_path(self) -> str:
        return "/".join(self.path)


class ListedMeta(TypedDict, total=False):
    """The keys of an item's metadata the engine itself reads, whatever the workload.

    Each workload declares its whole metadata as a TypedDict beside the source that lists
    it (`MailMeta`, `DriveItemMeta`, `ChatMeta`, `EventMeta`), these keys among them where
    the workload has them; the engine reads nothing else.
    """

    size: int | None  # the listed size in bytes (memory held, target size limit)
    path: str  # where the item lies in its container, as its owner names it (log lines)
    # What the item is, where a workload lists several kinds (files: "file", "folder",
    # "package", "remote"). Only "file" says its content is exactly `size` bytes, so only
    # a file is held to the target's size limit before it is downloaded. A folder's listed
    # size counts what is inside it; a message's is the store's, not its MIME's (Exchange
    # counts the message as it stores it, base64 attachments are larger as MIME): those
    # the target's own check decides once the content is in hand.
    kind: str


@dataclass(frozen=True, slots=True)
class Item:
    """One source object as listed (no content): its id, version and metadata.

    `meta` is the workload's own (a TypedDict of its source, stored with the item's row
    and handed to its mapper as it is); the engine reads it only through `listed`.
    """

    source_id: str
    version: str  # changeKey / cTag / eTag: a new value means the item changed
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def listed(self) -> ListedMeta:
        """The metadata keys the engine reads (see `ListedMeta`)."""
        return cast(ListedMeta, self.meta)

    @property
    def content_size(self) -> int | None:
        """The exact size of the item's content as listed (a file's), or None (see
        `ListedMeta.kind`)."""
        return self.listed_size if self.listed.get("kind") == "file" else None

    @property
    def listed_size(self) -> int | None:
        """The content size the source listed, None when it listed none (or no number)."""
        size = self.listed.get("size")
        try:
            return None if size is None else int(size)
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of changes from a source enumeration.

    `next_link` is only a progress marker (the enumeration is not finished);
    `delta_link` is the bookmark to store once every item of the page is settled.
    `unchecked`, beside a bookmark, says what the source did not read again in this
    pass and since when (a source that re-reads a container in turns); the summary
    shows it. None: the source read everything a change could hide in.
    """

    items: tuple[Item, ...]
    removed: tuple[str, ...] = ()
    next_link: str | None = None
    delta_link: str | None = None
    unchecked: str | None = None


@dataclass(frozen=True, slots=True)
class Blob:
    """Downloaded content with its hashes: spooled to a local temporary file (`path`), so
    memory stays flat whatever its size, or held in memory (`data`) when it is small.

    A source that downloads large items (drive files) hands one of these instead of
    bytes; the engine discards it (deletes the file) once the item is settled.

    A blob whose content is still arriving has `live` (see `migrator.feed`): no path, no
    hashes yet, `size` the length the download announced; `live.result()` is the whole
    content once checked, an ordinary `Blob`.
    """

    path: Path | None
    size: int
    hashes: Mapping[str, str] = field(default_factory=dict)  # "sha256", "quickXorHash"...
    # What the source noticed about this content, for the item's audit line (ids, hashes
    # and sizes, never content): e.g. that it differs from the hash the source publishes.
    remark: Mapping[str, Any] = field(default_factory=dict)
    data: bytes | None = None  # the content itself, for a blob held in memory
    live: ContentFeed | None = None  # content still arriving

    def open(self) -> IO[bytes]:
        if self.live is not None:
            return self.live.result().open()
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None, "a Blob has a path or data"
        return self.path.open("rb")

    def read_bytes(self) -> bytes:
        """The whole content (for targets that send small items in one piece)."""
        with self.open() as stream:
            return stream.read()

    def discard(self) -> None:
        """Remove the spooled file (for a live blob: stop its download; event loop)."""
        if self.live is not None:
            self.live.discard()
            return
        if self.path is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@dataclass(frozen=True, slots=True)
class Payload:
    """What a mapper produced and a target writes: content plus target attributes.

    Small content travels as `content` bytes; large content as a spooled `blob`
    (then `content` is empty). With a live blob (content still arriving) the fingerprint
    and the attributes that come from the content wait for its end: `settled()` is the
    payload the mapper's `remap` makes of the finished content.
    """

    source_id: str
    content: bytes
    fingerprint: str  # how a target recognises the item again (Message-ID or a digest)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    blob: Blob | None = None
    remap: Callable[[Blob], Payload] | None = None  # for a live blob: the finished payload

    @property
    def live(self) -> bool:
        return self.blob is not None and self.blob.live is not None

    def settled(self) -> Payload:
        """This payload with its content finished and checked (blocking, worker thread)."""
        if self.blob is None or self.blob.live is None:
            return self
        assert self.remap is not None, "a live payload comes with its remap"
        return self.remap(self.blob.live.result())

    async def asettled(self) -> Payload:
        """`settled()` for the event loop."""
        if self.blob is None or self.blob.live is None:
            return self
        assert self.remap is not None, "a live payload comes with its remap"
        return self.remap(await self.blob.live.finished())

    @property
    def size(self) -> int:
        return self.blob.size if self.blob is not None else len(self.content)

    @property
    def remark(self) -> Mapping[str, Any]:
        """The source's remark on the content (see `Blob.remark`), for the audit log."""
        return self.blob.remark if self.blob is not None else {}


@dataclass(frozen=True, slots=True)
class TargetRef:
    """Where a target stored an item: the target folder and the target's own id."""

    folder: str
    ref: str
    # The size of what the target stored when it differs from the payload's (IMAP stores
    # CRLF line endings): what `verify` compares with the target's listing.
    stored_size: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Entry:
    """One item as listed on the target, for `verify`."""

    ref: TargetRef
    fingerprint: str
    size: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a target can do; gaps are declared here instead of failing later.

    The engine reads `moves`, `max_item_bytes` and `live_content`; the plan reads
    `max_item_bytes`; the others are declarations the conformance suite checks (what to
    expect of the target), which no engine decision depends on yet.
    """

    server_assigned_ids: bool  # the target names what it stores (IMAP UIDs, event ids)
    keeps_timestamps: bool  # the source's times survive the write (INTERNALDATE, mtime)
    # Larger items are skipped, with the reason, before they are downloaded (the plan
    # counts them as blockers); None: no limit.
    max_item_bytes: int | None
    checksums: bool  # the target lists a content hash `verify` can compare
    # An item that moved between containers is moved on the target; False: it is written
    # afresh in its new folder and the old copy is settled as a removal (`deletions`).
    moves: bool
    special_folders: tuple[str, ...] = ()  # the folder roles the target has a place for
    # `put` takes a live payload (content still arriving) and publishes it only once its
    # `settled()` content is the one it streamed; other sessions get settled payloads.
    live_content: bool = False
    # The setting that sets `max_item_bytes` ("targets.files.max_upload_bytes"), named in
    # the reason of an item skipped over it, so the operator knows what to change.
    limit_setting: str = ""
    # The target keeps one item per owner, in one place whatever the container (a user's
    # Sieve script): a second item written there replaces the first.
    single_item: bool = False
