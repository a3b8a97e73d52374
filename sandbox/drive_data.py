"""The sandbox's drives: OneDrive, SharePoint libraries, their items, content and change log.

Deterministic from the tenant's seed: ids are hashes of the seed and a position,
dates count back from a fixed epoch, and file content is generated from (seed,
item id, content number, size) on demand (`drive_content`), so a multi-GB file costs
nothing until it is read. Every change gets a rising sequence number, which is what a drive
delta token remembers. Items are frozen snapshots: a change replaces them.

    drives = SandboxDrives.generate(spec, users)
    drives.sites / drives.drives / drives.items(drive_id) / drives.item(drive_id, item_id)
    drives.path(item) -> "Docs/2024/Rapport.docx"    # root excluded
    drives.changes_since(drive_id, seq) -> (changed items, deleted tombstones)
    drives.chunks(item, start, end) / drives.quick_xor(item) / drives.mutate(mutation)
    drives.served_chunks(item, start, end, serial=n) / drives.served_size(item)   # downloads

An item may carry an `Enrichment`: SharePoint changed the file after upload, so its
downloads serve other bytes than the size and quickXorHash Graph lists (see `Enrichment`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hirondelle.mappings.quickxor import QuickXorHash

from .drive_content import ContentSource, property_block
from .tenant_records import EPOCH

if TYPE_CHECKING:
    from .tenant import Mutation, TenantSpec
    from .tenant_records import SandboxUser


@dataclass(frozen=True)
class SandboxSite:
    id: str  # "<host>,<site collection guid>,<web guid>"
    name: str  # the URL name ("ProjetHirondelle")
    display_name: str
    web_url: str
    created: datetime
    group_id: str | None = None  # the Microsoft 365 group of a team site


@dataclass(frozen=True)
class SandboxDrive:
    id: str  # "b!..."
    name: str  # "OneDrive", "Documents", "Archives"
    drive_type: str  # "business" (a user's OneDrive) | "documentLibrary"
    owner_id: str  # the user's id, or the site's id
    owner_name: str
    owner_email: str | None
    site_id: str | None
    root_id: str
    web_url: str
    created: datetime


@dataclass(frozen=True)
class ItemVersion:
    id: str  # "1.0", "2.0"...
    content: int  # the content number its bytes are generated from
    size: int
    modified: datetime


@dataclass(frozen=True)
class Enrichment:
    """SharePoint changed this file after upload: its downloads differ from what Graph lists.

    SharePoint document libraries (not OneDrive) rewrite some uploaded files, mostly Office
    documents, writing library properties into them (SharePoint's "property promotion and
    demotion"); `size` and `file.hashes.quickXorHash` stay those of the bytes uploaded,
    while downloads serve the rewritten file, the same bytes each time:
    https://github.com/OneDrive/onedrive-api-docs/issues/935 (SharePoint, not OneDrive for
    Business), https://github.com/rclone/rclone/issues/2036 (download sizes differ from the
    listed ones), https://github.com/rclone/rclone/issues/2599 (some Office files, a few
    bytes longer), https://github.com/abraunegg/onedrive/issues/2654 (doc, docx, xls, xlsx).

    `grows`: the properties are added (the file grows) or written over its last bytes (same
    size, other hash). `per_download`: each download URL serves other bytes (a file being
    saved again and again), for tests of downloads that disagree.
    """

    grows: bool = True
    per_download: bool = False


@dataclass(frozen=True)
class Grant:
    """One permission set on an item: a sharing link, or access given to a user or group."""

    id: str
    roles: tuple[str, ...]  # "read" | "write" | "owner"
    kind: str  # "link" | "user" | "group"
    scope: str | None = None  # links: "anonymous" | "organization" | "users"
    link_type: str | None = None  # links: "view" | "edit"
    who_id: str | None = None
    who_name: str | None = None
    who_email: str | None = None


@dataclass(frozen=True)
class DriveItem:
    id: str
    drive_id: str
    name: str
    parent_id: str | None  # None for the root
    kind: str  # "root" | "folder" | "file" | "package" | "remote"
    ordinal: int  # creation order, a stable tie-break
    seq: int  # sequence number of its last change
    created: datetime
    modified: datetime  # lastModifiedDateTime (the service's)
    fs_modified: datetime  # fileSystemInfo.lastModifiedDateTime (the client's)
    size: int = 0
    mime_type: str | None = None
    content: int = 1  # content number: bumped by every content change
    revision: int = 1  # bumped by every change (the eTag's number)
    versions: tuple[ItemVersion, ...] = ()  # older versions, oldest first
    grants: tuple[Grant, ...] = ()
    remote: dict[str, object] | None = None  # remoteItem of shortcuts / shared from outside
    pinned: bool = False  # part of the seeded showcase: mutations leave it alone
    enrichment: Enrichment | None = None  # what SharePoint did to it after upload

    @property
    def guid(self) -> str:
        return str(uuid.UUID(bytes=hashlib.md5(self.id.encode()).digest())).upper()

    @property
    def etag(self) -> str:
        return f'"{{{self.guid}}},{self.revision}"'

    @property
    def ctag(self) -> str:
        return f'"c:{{{self.guid}}},{self.content}"'

    @property
    def version_id(self) -> str:
        return f"{len(self.versions) + 1}.0"


@dataclass(frozen=True)
class Tombstone:
    id: str
    drive_id: str
    parent_id: str | None
    kind: str
    seq: int


@dataclass
class FileChanges:
    """Ids touched by one mutation, per kind of change (disjoint)."""

    by_change: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [i for ids in self.by_change.values() for i in ids]


def drive_id(*parts: object) -> str:
    digest = hashlib.sha256("|".join(map(str, ("drive", *parts))).encode()).digest()
    return "b!" + base64.urlsafe_b64encode(digest + digest[:15]).decode().rstrip("=")


def item_id(*parts: object) -> str:
    digest = hashlib.sha256("|".join(map(str, ("item", *parts))).encode()).digest()[:20]
    return "01" + base64.b32encode(digest).decode()


def guid(*parts: object) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:16]))


# --- the drives -------------------------------------------------------------------------------


class SandboxDrives:
    """Sites, drives and items with a change log; safe to share between threads."""

    def __init__(self, seed: int, domain: str) -> None:
        self.seed = seed
        tenant_name = domain.split(".")[0] or "contoso"
        self.host = f"{tenant_name}.sharepoint.com"
        self.my_host = f"{tenant_name}-my.sharepoint.com"
        self.content = ContentSource(seed)
        self._lock = threading.RLock()
        self.sites: list[SandboxSite] = []
        self.drives: list[SandboxDrive] = []
        self._by_id: dict[str, SandboxDrive] = {}  # every drive by id: a lookup per request
        self.user_drives: dict[str, str] = {}  # user id -> drive id
        self._items: dict[str, dict[str, DriveItem]] = {}  # drive id -> item id -> item
        self._tombstones: dict[str, list[Tombstone]] = {}
        self._hashes: dict[tuple[str, int], str] = {}
        self._seq = 0
        self._ordinal = 0
        self.delta_epoch = 0  # raised by expire_delta_tokens: older tokens are too old

    @classmethod
    def generate(cls, spec: TenantSpec, users: Sequence[SandboxUser]) -> SandboxDrives:
        """Every user's OneDrive and the seeded sites' libraries, identical for identical specs."""
        drives = cls(spec.seed, spec.domain)
        from .drive_seed import _Layout  # the seeded layout needs this module's types

        _Layout(drives, spec, users).build()
        return drives

    # --- building ---------------------------------------------------------------------------

    def add_site(self, site: SandboxSite) -> None:
        with self._lock:
            self.sites.append(site)

    def add_drive(self, drive: SandboxDrive, created: datetime) -> None:
        with self._lock:
            self.drives.append(drive)
            self._by_id[drive.id] = drive
            self._items[drive.id] = {}
            self._tombstones[drive.id] = []
            self.add_item(drive.id, drive.root_id, "root", None, "root", created)
            if drive.drive_type == "business":
                self.user_drives[drive.owner_id] = drive.id

    def add_item(
        self,
        drive: str,
        identifier: str,
        name: str,
        parent_id: str | None,
        kind: str,
        created: datetime,
        **fields: object,
    ) -> DriveItem:
        """Store a new item as the latest change (its seq and ordinal are assigned here)."""
        with self._lock:
            self._seq += 1
            self._ordinal += 1
            modified = fields.pop("modified", created)
            item = DriveItem(
                id=identifier,
                drive_id=drive,
                name=name,
                parent_id=parent_id,
                kind=kind,
                ordinal=self._ordinal,
                seq=self._seq,
                created=created,
                modified=modified,  # type: ignore[arg-type]  # `fields` holds DriveItem's own keywords
                fs_modified=fields.pop("fs_modified", modified),  # type: ignore[arg-type]  # `fields` holds DriveItem's own keywords
                **fields,  # type: ignore[arg-type]  # `fields` holds DriveItem's own keywords
            )
            self._items[drive][identifier] = item
            return item

    # --- reads ------------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return self._seq

    def site(self, key: str) -> SandboxSite:
        """A site by id, name or display name (case-insensitive); KeyError."""
        for site in self.sites:
            if key.lower() in (site.id.lower(), site.name.lower(), site.display_name.lower()):
                return site
        raise KeyError(key)

    def drive(self, key: str) -> SandboxDrive:
        return self._by_id[key]

    def site_drives(self, site_id: str) -> list[SandboxDrive]:
        return [d for d in self.drives if d.site_id == site_id]

    def items(self, drive: str) -> list[DriveItem]:
        with self._lock:
            return list(self._items[drive].values())

    def item(self, drive: str, key: str) -> DriveItem:
        """An item by id, or the root by "root"; KeyError when gone."""
        with self._lock:
            if key.lower() == "root":
                key = self.drive(drive).root_id
            return self._items[drive][key]

    def children(self, drive: str, parent: str) -> list[DriveItem]:
        """An item's children, by name (OneDrive's default order)."""
        return sorted(
            (i for i in self.items(drive) if i.parent_id == parent), key=lambda i: i.name.lower()
        )

    def by_path(self, drive: str, path: str) -> DriveItem:
        item = self.item(drive, "root")
        for name in (part for part in path.split("/") if part):
            matches = [c for c in self.children(drive, item.id) if c.name.lower() == name.lower()]
            if not matches:
                raise KeyError(path)
            item = matches[0]
        return item

    def path(self, item: DriveItem) -> str:
        """The item's path from the drive root, "/" between levels, root excluded."""
        names: list[str] = []
        with self._lock:
            items = self._items[item.drive_id]
            while item.parent_id is not None:
                names.append(item.name)
                item = items[item.parent_id]
        return "/".join(reversed(names))

    def ancestors(self, item: DriveItem) -> list[DriveItem]:
        """The item's parent, its parent's parent... up to the root."""
        found: list[DriveItem] = []
        with self._lock:
            items = self._items[item.drive_id]
            while item.parent_id is not None and item.parent_id in items:
                item = items[item.parent_id]
                found.append(item)
        return found

    def folder_sizes(self, drive: str) -> dict[str, int]:
        """Each folder's size: the sum of the files below it (Graph's folder size)."""
        sizes: dict[str, int] = {}
        for item in self.items(drive):
            if item.kind in ("file", "package"):
                for ancestor in self.ancestors(item):
                    sizes[ancestor.id] = sizes.get(ancestor.id, 0) + item.size
        return sizes

    def used_bytes(self, drive: str) -> int:
        """Quota used: every file's current and older versions."""
        return sum(
            i.size + sum(v.size for v in i.versions)
            for i in self.items(drive)
            if i.kind in ("file", "package")
        )

    def changes_since(self, drive: str, seq: int) -> tuple[list[DriveItem], list[Tombstone]]:
        """Items changed after `seq` (latest state) and items deleted after it, by sequence."""
        with self._lock:
            changed = sorted((i for i in self.items(drive) if i.seq > seq), key=lambda i: i.seq)
            removed = [t for t in self._tombstones[drive] if t.seq > seq]
        return changed, removed

    def expire_delta_tokens(self) -> None:
        """Every drive delta token issued so far becomes too old (410 Gone)."""
        with self._lock:
            self.delta_epoch += 1

    # --- content ----------------------------------------------------------------------------

    def chunks(
        self, item: DriveItem, start: int = 0, end: int | None = None, version: str | None = None
    ) -> Iterator[bytes]:
        content, size = self._content_of(item, version)
        return self.content.chunks(item.name, item.id, content, size, start, end)

    def size_of(self, item: DriveItem, version: str | None = None) -> int:
        return self._content_of(item, version)[1]

    def served_size(self, item: DriveItem, version: str | None = None, serial: int = 0) -> int:
        """How many bytes a download of the item serves (`size_of` unless it was enriched)."""
        keep, block = self._served(item, version, serial)
        return keep + len(block or b"")

    def served_chunks(
        self,
        item: DriveItem,
        start: int = 0,
        end: int | None = None,
        version: str | None = None,
        serial: int = 0,
    ) -> Iterator[bytes]:
        """The bytes [start, end) a download serves: the listed content, or for an enriched
        file its first `keep` bytes followed by SharePoint's property block. `serial` numbers
        the download URL, for enrichments that differ per download."""
        keep, block = self._served(item, version, serial)
        if block is None:
            yield from self.chunks(item, start, end, version)
            return
        end = keep + len(block) if end is None else min(end, keep + len(block))
        if start < keep:
            yield from self.chunks(item, start, min(end, keep), version)
        if end > keep:
            yield block[max(0, start - keep) : end - keep]

    def _served(
        self, item: DriveItem, version: str | None, serial: int
    ) -> tuple[int, bytes | None]:
        """(bytes of the listed content kept, the property block after them) of an enriched
        current version; (size, None) for content served as listed (older versions too)."""
        enrichment = item.enrichment
        size = self.size_of(item, version)
        if enrichment is None or version not in (None, item.version_id):
            return size, None
        block = property_block(self.seed, item, serial if enrichment.per_download else 0)
        if enrichment.grows:
            return size, block
        block = block[:size]
        return size - len(block), block

    def quick_xor(self, item: DriveItem) -> str:
        """The base64 QuickXorHash of the item's current content, computed once."""
        key = (item.id, item.content)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            hasher = QuickXorHash()
            for chunk in self.chunks(item):
                hasher.update(chunk)
            known = hasher.b64digest()
            with self._lock:
                self._hashes[key] = known
        return known

    def _content_of(self, item: DriveItem, version: str | None) -> tuple[int, int]:
        if version is None or version == item.version_id:
            return item.content, item.size
        for older in item.versions:
            if older.id == version:
                return older.content, older.size
        raise KeyError(version)

    # --- changes ----------------------------------------------------------------------------

    def clock(self) -> datetime:
        """Mutation time: after the generated items, from the sequence (never the wall clock)."""
        return EPOCH + timedelta(minutes=self._seq + 1)

    def mutate(self, mutation: Mutation) -> FileChanges:
        """Create, change, rename, move and delete items, deterministically from the seed."""
        with self._lock:
            from .drive_mutations import DriveMutator

            return DriveMutator(self, mutation).apply()

    def enrich(self, drive: str, key: str, enrichment: Enrichment | None) -> DriveItem:
        """Have SharePoint change (or stop changing) a file's downloads. Not a change Graph
        reports: the listed size, hash and tags stay. SharePoint does it in document
        libraries; a test may set it anywhere, to see it refused elsewhere."""
        with self._lock:
            item = self.item(drive, key)
            if item.kind != "file":
                raise ValueError(f"{item.name!r} is not a file")
            updated = dataclasses.replace(item, enrichment=enrichment)
            self._items[drive][item.id] = updated
            return updated

    def replace(self, item: DriveItem, **changes: object) -> DriveItem:
        """A new snapshot of `item` as the latest change."""
        with self._lock:
            self._seq += 1
            updated = dataclasses.replace(
                item,
                seq=self._seq,
                revision=item.revision + 1,
                modified=self.clock() - timedelta(minutes=1),
                **changes,  # type: ignore[arg-type]  # `changes` holds DriveItem's own keywords
            )
            self._items[item.drive_id][item.id] = updated
            return updated

    def delete(self, item: DriveItem) -> str:
        with self._lock:
            self._seq += 1
            del self._items[item.drive_id][item.id]
            tombstone = Tombstone(item.id, item.drive_id, item.parent_id, item.kind, self._seq)
            self._tombstones[item.drive_id].append(tombstone)
            return item.id

    def next_ordinal(self) -> int:
        return self._ordinal + 1


# --- the seeded layout ------------------------------------------------------------------------
