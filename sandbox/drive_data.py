"""The sandbox's drives: OneDrive, SharePoint libraries, their items, content and change log.

Deterministic from the tenant's seed: ids are hashes of the seed and a position,
dates count back from a fixed epoch, and file content is generated from (seed,
item id, content number, size) on demand, so a multi-GB file costs nothing until
it is read. Every change gets a rising sequence number, which is what a drive
delta token remembers. Items are frozen snapshots: a change replaces them.

    drives = SandboxDrives.generate(spec, users)
    drives.sites / drives.drives / drives.items(drive_id) / drives.item(drive_id, item_id)
    drives.path(item) -> "Docs/2024/Rapport.docx"    # root excluded
    drives.changes_since(drive_id, seq) -> (changed items, deleted tombstones)
    drives.chunks(item, start, end) / drives.quick_xor(item) / drives.mutate(mutation)
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from hirondelle.mappings.quickxor import QuickXorHash

if TYPE_CHECKING:
    from .tenant import Mutation, SandboxUser, TenantSpec

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # generated items are older; mutations come after
BLOCK = 160 * 6554  # content block (~1 MiB): a multiple of QuickXorHash's 160-byte width
_BLOCK_CACHE = 16


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


# --- content ----------------------------------------------------------------------------------

_MAGIC = {
    ".pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".mp4": b"\x00\x00\x00\x20ftypisom",
    ".docx": b"PK\x03\x04\x14\x00\x06\x00",
    ".xlsx": b"PK\x03\x04\x14\x00\x06\x00",
    ".pptx": b"PK\x03\x04\x14\x00\x06\x00",
}


class ContentSource:
    """Bytes of any length from (seed, item id, content number), readable at any offset.

    Block k is one pseudo-random base block with k written over its first 8 bytes, so
    blocks never repeat; block 0 starts with the file type's magic bytes.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._blocks: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def chunks(
        self, name: str, item: str, content: int, size: int, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """The bytes [start, end) of the content, a block at most per chunk."""
        end = size if end is None else min(end, size)
        base = self._base(item, content, size) if end > start else None
        position = start
        while position < end and base is not None:
            index, offset = divmod(position, BLOCK)
            block = base.copy()
            if index:
                block[:8] ^= np.frombuffer(index.to_bytes(8, "little"), np.uint8)
            else:
                magic = _MAGIC.get(name[name.rfind(".") :].lower(), b"")[: block.size]
                block[: len(magic)] = np.frombuffer(magic, np.uint8)
            piece = block[offset : min(block.size, offset + end - position)]
            yield piece.tobytes()
            position += piece.size

    def _base(self, item: str, content: int, size: int) -> np.ndarray:
        key = (item, content)
        with self._lock:
            if key in self._blocks:
                self._blocks.move_to_end(key)
                return self._blocks[key]
        digest = hashlib.sha256(f"{self._seed}|content|{item}|{content}".encode()).digest()
        generator = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
        base = np.frombuffer(generator.bytes(min(size, BLOCK)), np.uint8)
        with self._lock:
            self._blocks[key] = base
            while len(self._blocks) > _BLOCK_CACHE:
                self._blocks.popitem(last=False)
        return base


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
        _Layout(drives, spec, users).build()
        return drives

    # --- building ---------------------------------------------------------------------------

    def add_site(self, site: SandboxSite) -> None:
        with self._lock:
            self.sites.append(site)

    def add_drive(self, drive: SandboxDrive, created: datetime) -> None:
        with self._lock:
            self.drives.append(drive)
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
                modified=modified,  # type: ignore[arg-type]
                fs_modified=fields.pop("fs_modified", modified),  # type: ignore[arg-type]
                **fields,  # type: ignore[arg-type]
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
        for drive in self.drives:
            if drive.id == key:
                return drive
        raise KeyError(key)

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
            return _Mutator(self, mutation).apply()

    def replace(self, item: DriveItem, **changes: object) -> DriveItem:
        """A new snapshot of `item` as the latest change."""
        with self._lock:
            self._seq += 1
            updated = dataclasses.replace(
                item,
                seq=self._seq,
                revision=item.revision + 1,
                modified=self.clock() - timedelta(minutes=1),
                **changes,  # type: ignore[arg-type]
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

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
MIME_TYPES = {
    ".pdf": "application/pdf",
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".pptx": PPTX,
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".mp4": "video/mp4",
    ".txt": "text/plain",
}
_STEMS = (
    ("Rapport annuel", ".pdf"),
    ("Compte rendu", ".docx"),
    ("Budget prévisionnel", ".xlsx"),
    ("Plan de masse", ".png"),
    ("Photo chantier", ".jpg"),
    ("Présentation client", ".pptx"),
    ("Notes de réunion", ".txt"),
    ("Contrat cadre", ".pdf"),
)
_ONEDRIVE_FOLDERS = (
    "Documents",
    "Documents/Projets",
    "Documents/Projets/2024",
    "Documents/Projets/2024/Livrables",
    "Images",
    "Images/Chantier",
    "Bureau",
)
# (URL name, display name, Microsoft 365 group?, ((library, folders), ...))
_SITES = (
    (
        "Finances",
        "Finances",
        False,
        (
            ("Documents", ("Budgets", "Budgets/2024", "Budgets/2024/Trimestre 1", "Factures")),
            ("Archives", ("2022", "2022/Clôture", "2022/Clôture/Annexes", "2023")),
        ),
    ),
    (
        "ProjetHirondelle",
        "Projet Hirondelle",
        True,  # a team: its Documents library holds each channel's files folder
        (
            (
                "Documents",
                (
                    "General",
                    "General/Réunions",
                    "General/Réunions/2024",
                    "Chantier",
                    "Chantier/Plans",
                    "Chantier/Photos",
                ),
            ),
        ),
    ),
)
# Names some target refuses or renames (SharePoint itself refuses some of them today, but
# older libraries and synced Mac folders hold them); each is a file in "À trier".
_PROBLEM_NAMES = (
    "Réunion: ordre du jour.docx",
    "Pourquoi?.txt",
    "Notes*.txt",
    'Citation "finale".docx',
    "<brouillon>.txt",
    "Choix A|B.xlsx",
    "Rapport #3.pdf",
    "Remise 20%.xlsx",
    "Version finale.",
    "CON.txt",
    ".htaccess",
    "desktop.ini",
    "~$lock.docx",
    "Résumé.docx",  # NFC
    "Re\u0301sume\u0301.docx",  # NFD: the same name, decomposed
)
_LIBRARY_PROBLEM_NAMES = ("Budget: 2024?.xlsx", "desktop.ini", "~$Budget.xlsx", "Taux 5%.xlsx")


def _long_name(target_bytes: int, extension: str) -> str:
    """A name of exactly `target_bytes` UTF-8 bytes, well under 255 characters."""
    stem = "Procès-verbal de l'assemblée générale extraordinaire "
    while len((stem + extension).encode()) < target_bytes - 1:
        stem += "é"
    if len((stem + extension).encode()) < target_bytes:
        stem += "e"
    return stem + extension


class _Layout:
    """Builds the seeded sites, drives and items, in a fixed order."""

    def __init__(self, drives: SandboxDrives, spec: TenantSpec, users: Sequence[SandboxUser]):
        self.drives, self.spec, self.users = drives, spec, list(users)
        self.seed = spec.seed
        self.rng = random.Random(f"{spec.seed}|drives")
        self.shortcut: dict[str, object] | None = None

    def build(self) -> None:
        for url_name, display, is_team, libraries in _SITES:
            site = self._site(url_name, display, is_team)
            for library, folders in libraries:
                drive = self._drive(
                    library, "documentLibrary", site.id, site.display_name, None, site
                )
                homes = self._folders(drive, folders)
                self._files(drive, homes)
                for name in _LIBRARY_PROBLEM_NAMES:
                    self._file(drive, drive.root_id, name, pinned=True)
                if url_name == "Finances" and library == "Documents":
                    self._remember_shortcut(drive, homes["Budgets"])
        for index, user in enumerate(self.users):
            drive = self._drive("OneDrive", "business", user.id, user.display_name, user, None)
            homes = self._folders(drive, _ONEDRIVE_FOLDERS)
            self._files(drive, homes)
            self._showcase(drive, homes)
            large = self.spec.large_file_bytes  # type: ignore[attr-defined]
            if index == 0 and large > 0:
                home = homes["Images/Chantier"]
                self._file(drive, home, "Tournage chantier.mp4", size=large, pinned=True)

    def _site(self, url_name: str, display: str, is_team: bool) -> SandboxSite:
        host = self.drives.host
        site_id = f"{host},{guid(self.seed, 'site', url_name)},{guid(self.seed, 'web', url_name)}"
        group = guid(self.seed, "group", url_name) if is_team else None
        created = EPOCH - timedelta(days=1200)
        site = SandboxSite(
            site_id, url_name, display, f"https://{host}/sites/{url_name}", created, group
        )
        self.drives.add_site(site)
        return site

    def _drive(
        self,
        name: str,
        drive_type: str,
        owner_id: str,
        owner_name: str,
        user: SandboxUser | None,
        site: SandboxSite | None,
    ) -> SandboxDrive:
        identifier = drive_id(self.seed, owner_id, name)
        if user is not None:
            personal = user.upn.replace("@", "_").replace(".", "_")
            web_url = f"https://{self.drives.my_host}/personal/{personal}/Documents"
        else:
            assert site is not None
            web_url = f"{site.web_url}/{'Shared Documents' if name == 'Documents' else name}"
        drive = SandboxDrive(
            id=identifier,
            name=name,
            drive_type=drive_type,
            owner_id=owner_id,
            owner_name=owner_name,
            owner_email=user.mail if user else None,
            site_id=site.id if site else None,
            root_id=item_id(self.seed, identifier, "root"),
            web_url=web_url,
            created=EPOCH - timedelta(days=1100),
        )
        self.drives.add_drive(drive, drive.created)
        if user is not None:
            self.drives.user_drives[user.upn.lower()] = drive.id
        return drive

    def _folders(self, drive: SandboxDrive, paths: Sequence[str]) -> dict[str, str]:
        homes = {"": drive.root_id}
        for path in paths:
            parent, _, name = path.rpartition("/")
            homes[path] = self._add(drive, homes[parent], name, "folder", path).id
        return homes

    def _files(self, drive: SandboxDrive, homes: dict[str, str]) -> None:
        """The regular files, spread over the folders; a few with versions or sharing."""
        places = sorted(homes)
        others = [u for u in self.users if u.id != drive.owner_id]
        for number in range(self.spec.files_per_drive):  # type: ignore[attr-defined]
            stem, extension = _STEMS[number % len(_STEMS)]
            home = homes[self.rng.choice(places)]
            size = int(10 ** self.rng.uniform(2, 6.4))
            versions = 3 if number < 3 else 1
            grants = self._grants(number, others)
            self._file(drive, home, f"{stem} {number + 1:02d}{extension}", size, versions, grants)
        folder = homes[places[1]]
        self._share_folder(drive, folder, others)

    def _grants(self, number: int, others: Sequence[SandboxUser]) -> tuple[Grant, ...]:
        if number == 0:
            link = Grant(guid(self.seed, "link", number), ("read",), "link", "anonymous", "view")
            return (link,)
        if number == 1:
            group = ("Comptabilité", "comptabilite@" + self.spec.domain)  # type: ignore[attr-defined]
            return (
                Grant(
                    guid(self.seed, "group"), ("read",), "group", None, None, guid(group), *group
                ),
            )
        if number == 2 and others:
            user = others[0]
            return (
                Grant(
                    guid(user.id, "grant"),
                    ("read",),
                    "user",
                    None,
                    None,
                    user.id,
                    user.display_name,
                    user.mail,
                ),
            )
        return ()

    def _share_folder(
        self, drive: SandboxDrive, folder: str, others: Sequence[SandboxUser]
    ) -> None:
        grants: list[Grant] = [
            Grant(guid(self.seed, "orglink", drive.id), ("write",), "link", "organization", "edit")
        ]
        for user in others[:2]:
            grants.append(
                Grant(
                    guid(user.id, drive.id),
                    ("write",),
                    "user",
                    None,
                    None,
                    user.id,
                    user.display_name,
                    user.mail,
                )
            )
        item = self.drives.item(drive.id, folder)
        self.drives._items[drive.id][folder] = dataclasses.replace(item, grants=tuple(grants))

    def _showcase(self, drive: SandboxDrive, homes: dict[str, str]) -> None:
        """Problem names, an empty file, long names and paths, OneNote, a shortcut, a remote."""
        sort = self._add(drive, drive.root_id, "À trier", "folder", "À trier", pinned=True).id
        for name in _PROBLEM_NAMES:
            self._file(drive, sort, name, pinned=True)
        self._file(drive, sort, "Vide.txt", size=0, pinned=True)
        self._file(drive, sort, _long_name(300, ".docx"), pinned=True)
        pending = self._add(drive, sort, "Dossier en cours ", "folder", "pending", pinned=True)
        self._file(drive, pending.id, "Liste.txt", pinned=True)
        parent = sort
        for level in range(4):  # a path over 400 characters
            name = f"Niveau {level + 1} – " + "sous-dossier de classement très détaillé " * 2
            parent = self._add(
                drive, parent, name.strip(), "folder", f"deep{level}", pinned=True
            ).id
        self._file(drive, parent, "Document au bout du chemin.docx", pinned=True)
        self._add(
            drive,
            homes["Documents"],
            "Carnet de notes",
            "package",
            "onenote",
            size=262_144,
            pinned=True,
        )
        if self.shortcut is not None:
            self._add(
                drive,
                drive.root_id,
                "Budgets",
                "remote",
                "shortcut",
                remote=self.shortcut,
                pinned=True,
            )
        self._add(
            drive,
            drive.root_id,
            "Plan partenaire.pdf",
            "remote",
            "external",
            remote=self._external(),
            pinned=True,
        )

    def _remember_shortcut(self, drive: SandboxDrive, folder: str) -> None:
        self.shortcut = {
            "id": folder,
            "name": "Budgets",
            "folder": {"childCount": len(self.drives.children(drive.id, folder))},
            "parentReference": {
                "driveId": drive.id,
                "driveType": "documentLibrary",
                "id": drive.root_id,
            },
            "webUrl": f"{drive.web_url}/Budgets",
        }

    def _external(self) -> dict[str, object]:
        partner = "fabrikam"
        return {
            "id": item_id("external", partner, "plan"),
            "name": "Plan partenaire.pdf",
            "size": 48_213,
            "file": {"mimeType": "application/pdf"},
            "parentReference": {"driveId": drive_id("external", partner), "driveType": "business"},
            "shared": {
                "owner": {
                    "user": {
                        "displayName": "Paul Martin (Fabrikam)",
                        "email": f"paul.martin@{partner}.test",
                    }
                }
            },
            "webUrl": f"https://{partner}-my.sharepoint.com/personal/paul_martin/Documents/Plan%20partenaire.pdf",
        }

    def _file(
        self,
        drive: SandboxDrive,
        parent: str,
        name: str,
        size: int | None = None,
        versions: int = 1,
        grants: tuple[Grant, ...] = (),
        pinned: bool = False,
    ) -> DriveItem:
        extension = name[name.rfind(".") :].lower() if "." in name else ""
        size = int(10 ** self.rng.uniform(2, 5)) if size is None else size
        key = f"{parent}/{name}"
        older = tuple(
            ItemVersion(
                f"{n}.0",
                n,
                int(size * self.rng.uniform(0.5, 1.5)) + 1,
                EPOCH - timedelta(days=60 - n),
            )
            for n in range(1, versions)
        )
        return self._add(
            drive,
            parent,
            name,
            "file",
            key,
            size=size,
            mime_type=MIME_TYPES.get(extension, "application/octet-stream"),
            content=versions,
            versions=older,
            grants=grants,
            pinned=pinned,
        )

    def _add(
        self, drive: SandboxDrive, parent: str, name: str, kind: str, key: str, **fields: object
    ) -> DriveItem:
        created = EPOCH - timedelta(
            days=self.rng.randint(90, 1000), seconds=self.rng.randint(0, 86_399)
        )
        fs_modified = created + timedelta(
            days=self.rng.randint(0, 40), seconds=self.rng.randint(0, 86_399)
        )
        uploaded = fs_modified + timedelta(minutes=self.rng.randint(5, 3000))
        identifier = item_id(self.seed, drive.id, key)
        return self.drives.add_item(
            drive.id,
            identifier,
            name,
            parent,
            kind,
            created,
            modified=uploaded,
            fs_modified=fs_modified,
            **fields,
        )


# --- mutations --------------------------------------------------------------------------------

CHANGE_KINDS = (
    "file_creates",
    "file_changes",
    "file_renames",
    "file_moves",
    "folder_renames",
    "file_deletions",
    "folder_deletions",
)


class _Mutator:
    """Applies one `Mutation`'s file fields; every item is touched at most once."""

    def __init__(self, drives: SandboxDrives, mutation: Mutation) -> None:
        self.drives, self.mutation = drives, mutation
        self.rng = random.Random(f"{drives.seed}|files|{mutation.seed}|{drives.seq}")
        self.changes = FileChanges({kind: [] for kind in CHANGE_KINDS})

    def apply(self) -> FileChanges:
        items = [i for d in self._scope() for i in self.drives.items(d)]
        doomed = self._doomed_folders(items)
        gone = {i.id for folder in doomed for i in self._subtree(items, folder)}
        files = [i for i in items if i.kind == "file" and not i.pinned and i.id not in gone]
        homes = [i for i in items if i.kind in ("root", "folder") and i.id not in gone]
        m = self.mutation
        wanted = m.file_changes + m.file_renames + m.file_moves + m.file_deletions
        picks = iter(self.rng.sample(files, min(wanted, len(files))))
        for _ in range(m.file_creates if homes else 0):
            self._create(self.rng.choice(homes))
        for item in _take(picks, m.file_changes):
            self._change(item)
        for item in _take(picks, m.file_renames):
            self._note(
                "file_renames",
                self.drives.replace(item, name=_renamed(item.name, self.drives.seq + 1)),
            )
        for item in _take(picks, m.file_moves):
            self._move(item, homes)
        renamable = [i for i in homes if i.kind == "folder" and not i.pinned]
        for folder in self.rng.sample(renamable, min(m.folder_renames, len(renamable))):
            self._note(
                "folder_renames",
                self.drives.replace(folder, name=f"{folder.name} (renommé {self.drives.seq + 1})"),
            )
        for item in _take(picks, m.file_deletions):
            self.changes.by_change["file_deletions"].append(self.drives.delete(item))
        for folder in doomed:
            subtree = sorted(
                self._subtree(items, folder), key=lambda i: -len(self.drives.ancestors(i))
            )
            self.changes.by_change["folder_deletions"] += [self.drives.delete(i) for i in subtree]
        return self.changes

    def _scope(self) -> list[str]:
        if self.mutation.drive:
            return [self.drives.drive(self.mutation.drive).id]
        if self.mutation.user:
            key = self.mutation.user.lower()
            found = self.drives.user_drives.get(key) or self.drives.user_drives.get(
                self.mutation.user
            )
            return [found] if found else []
        return [d.id for d in self.drives.drives]

    def _doomed_folders(self, items: list[DriveItem]) -> list[DriveItem]:
        """Folders to delete: none pinned below them, none inside another one chosen."""
        candidates = [
            f
            for f in items
            if f.kind == "folder" and not any(i.pinned for i in self._subtree(items, f))
        ]
        self.rng.shuffle(candidates)
        chosen: list[DriveItem] = []
        for folder in candidates:
            if len(chosen) == self.mutation.folder_deletions:
                break
            lineage = {a.id for a in self.drives.ancestors(folder)}
            if not any(
                c.id in lineage or folder.id in {a.id for a in self.drives.ancestors(c)}
                for c in chosen
            ):
                chosen.append(folder)
        return chosen

    def _subtree(self, items: list[DriveItem], folder: DriveItem) -> list[DriveItem]:
        inside = [i for i in items if folder.id in {a.id for a in self.drives.ancestors(i)}]
        return [folder, *inside]

    def _create(self, home: DriveItem) -> None:
        stem, extension = self.rng.choice(_STEMS)
        sequence = self.drives.seq + 1
        now = self.drives.clock()
        created = self.drives.add_item(
            home.drive_id,
            item_id(self.drives.seed, "created", sequence),
            f"{stem} – nouveau {sequence}{extension}",
            home.id,
            "file",
            now,
            size=int(10 ** self.rng.uniform(2, 5.5)),
            mime_type=MIME_TYPES[extension],
        )
        self._note("file_creates", created)

    def _change(self, item: DriveItem) -> None:
        older = ItemVersion(item.version_id, item.content, item.size, item.modified)
        self._note(
            "file_changes",
            self.drives.replace(
                item,
                content=item.content + 1,
                size=max(1, int(item.size * self.rng.uniform(0.6, 1.6))),
                fs_modified=self.drives.clock(),
                versions=(*item.versions, older),
            ),
        )

    def _move(self, item: DriveItem, homes: list[DriveItem]) -> None:
        places = [h for h in homes if h.drive_id == item.drive_id and h.id != item.parent_id]
        if places:
            self._note(
                "file_moves", self.drives.replace(item, parent_id=self.rng.choice(places).id)
            )

    def _note(self, kind: str, item: DriveItem) -> None:
        self.changes.by_change[kind].append(item.id)


def _renamed(name: str, sequence: int) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot:
        return f"{name} (renommé {sequence})"
    return f"{stem} (renommé {sequence}).{extension}"


def _take(picks: Iterator[DriveItem], count: int) -> list[DriveItem]:
    return [item for _, item in zip(range(count), picks, strict=False)]
