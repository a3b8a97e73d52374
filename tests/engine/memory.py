"""A target and a source held in memory, to test the engine's own rules (what is written,
looked up, moved, removed and recorded) without a server: not a stand-in for any real
target, whose behaviour the conformance suite checks against real servers."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence, Set
from dataclasses import dataclass, field

from hirondelle.migrator.errors import ItemError, Retriable, SkipItem
from hirondelle.migrator.model import (
    Capabilities,
    Container,
    Entry,
    Item,
    Owner,
    Page,
    Payload,
    TargetRef,
)
from hirondelle.tests.memory_source import ALICE
from hirondelle.tests.memory_source import MemorySource as HeldSource

OWNER = ALICE


def capabilities(
    moves: bool = True, max_item_bytes: int | None = None, limit_setting: str = ""
) -> Capabilities:
    return Capabilities(
        server_assigned_ids=True,
        keeps_timestamps=False,
        max_item_bytes=max_item_bytes,
        checksums=False,
        moves=moves,
        limit_setting=limit_setting,
    )


@dataclass
class Stored:
    fingerprint: str
    content: bytes


@dataclass
class MemoryTarget:
    """Folders of stored items, each under a ref the target assigns ("<n>")."""

    capabilities: Capabilities = field(default_factory=capabilities)
    folders: dict[str, dict[str, Stored]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, source id or ref)
    refuse: dict[str, ItemError] = field(default_factory=dict)  # source id -> put's refusal
    on_put: Callable[[Payload], None] | None = None  # run before each put is stored
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def open(self, owner: Owner) -> MemorySession:
        return MemorySession(self)

    def check(self) -> list[str]:
        return []

    def held(self, folder: str) -> dict[str, bytes]:
        """The folder's items: fingerprint -> content."""
        return {s.fingerprint: s.content for s in self.folders.get(folder, {}).values()}

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)


class MemorySession:
    def __init__(self, target: MemoryTarget) -> None:
        self.target = target

    def ensure_container(self, container: Container) -> str:
        folder = "/".join(container.path)
        self.target.folders.setdefault(folder, {})
        return folder

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        self.target.calls.append(("find", payload.source_id))
        for ref, stored in self.target.folders.get(folder, {}).items():
            if stored.fingerprint == payload.fingerprint and ref not in exclude:
                return TargetRef(folder, ref)
        return None

    def put(self, folder: str, payload: Payload) -> TargetRef:
        self.target.calls.append(("put", payload.source_id))
        if self.target.on_put is not None:
            self.target.on_put(payload)
        refusal = self.target.refuse.get(payload.source_id)
        if refusal is not None:
            raise refusal
        ref = str(next(self.target._numbers))
        self.target.folders[folder][ref] = Stored(payload.fingerprint, payload.content)
        return TargetRef(folder, ref)

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        self.target.calls.append(("update", ref.ref))
        self.target.folders[ref.folder][ref.ref] = Stored(payload.fingerprint, payload.content)
        return ref

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        self.target.calls.append(("move", ref.ref))
        if folder == ref.folder:
            return ref
        if not self.target.capabilities.moves:  # as the real targets that declare it
            raise SkipItem("items do not move between folders on this target")
        stored = self.target.folders[ref.folder].pop(ref.ref)
        self.target.folders.setdefault(folder, {})[ref.ref] = stored
        return TargetRef(folder, ref.ref)

    def remove(self, ref: TargetRef) -> None:
        self.target.calls.append(("remove", ref.ref))
        self.target.folders.get(ref.folder, {}).pop(ref.ref, None)

    def listing(self, folder: str) -> list[Entry]:
        stored = self.target.folders.get(folder, {})
        return [
            Entry(TargetRef(folder, ref), s.fingerprint, len(s.content))
            for ref, s in stored.items()
        ]

    def close(self) -> None:
        return None


def message(
    source_id: str, version: str = "v1", size: int | None = None, kind: str | None = None
) -> Item:
    """An item as listed; `kind` "file" says its listed size is its content's exactly."""
    meta: dict[str, object] = {} if size is None else {"size": size}
    if kind is not None:
        meta["kind"] = kind
    return Item(source_id, version, meta)


def content_of(source_id: str) -> bytes:
    return f"content of {source_id}".encode()


def map_message(item: Item, content: bytes) -> Payload:
    """The fingerprint is the source id's digest: equal items are told apart."""
    fingerprint = hashlib.sha256(item.source_id.encode()).hexdigest()
    return Payload(item.source_id, content, fingerprint)


@dataclass
class MemorySource(HeldSource):
    """Containers of one owner; `pages[(container id, cursor)]` is what a listing from that
    cursor gives (None: from the start). An unknown cursor lists nothing new."""

    held: Sequence[Container]
    pages: dict[tuple[str, str | None], list[Page]] = field(default_factory=dict)
    errors: dict[str, ItemError | Retriable] = field(default_factory=dict)  # fetch refusals
    fetched: list[str] = field(default_factory=list)

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        for page in self.pages.get((container.source_id, cursor), []):
            yield page

    async def fetch(self, container: Container, item: Item) -> bytes:
        self.fetched.append(item.source_id)
        error = self.errors.get(item.source_id)
        if error is not None:
            raise error
        return content_of(item.source_id)


def folder(source_id: str, name: str) -> Container:
    return Container("mail", OWNER.upn, source_id, (name,))


def page(
    *items: Item,
    removed: Sequence[str] = (),
    next_link: str | None = None,
    delta_link: str | None = None,
) -> Page:
    return Page(tuple(items), tuple(removed), next_link, delta_link)
