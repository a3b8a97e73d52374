"""The calendar and contacts archive targets: standard `.ics` and `.vcf` files on disk.

Layout, per owner (the target login, else the UPN), under the bag's payload (`archive_bag`)::

    <root>/data/<login>/calendars/<calendar name>/<resource>.ics   one event (and its exceptions)
    <root>/data/<login>/calendars/<calendar name>.ics              the whole calendar, on close()
    <root>/data/<login>/contacts/<address book>/<resource>.vcf     one contact
    <root>/data/<login>/contacts/<address book>.vcf                the whole address book

Resource names come from the mapper (a digest of the source id), so a rerun rewrites the
same files instead of doubling them. Each file is written to a temporary name and renamed,
so no half file is ever visible. The `TargetRef.folder` is the collection's directory name.

The whole-collection files are what people import: one VCALENDAR holding every event's
components with each VTIMEZONE once (Thunderbird, Nextcloud, BlueMind, Outlook import it),
and the vCards one after the other. They are rebuilt on `close()` for every collection
changed since its file was written.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Set
from dataclasses import dataclass
from pathlib import Path

import icalendar

from ..migrator.errors import Refused, SkipItem
from ..migrator.model import Capabilities, Container, Entry, Owner, Payload, TargetRef
from .archive_root import ArchiveRoot, login_dir_name
from .archive_write import write_atomically
from .dav_wire import payload_resource, payload_uid, resource_uid

log = logging.getLogger(__name__)

MAX_NAME_BYTES = 200  # leaves room for the extension and a temporary suffix under 255
PRODID = "-//Hirondelle//Calendar archive//EN"


@dataclass(frozen=True)
class ArchiveKind:
    """What differs between the calendar and the contacts archive."""

    directory: str  # "calendars" | "contacts"
    extension: str  # ".ics" | ".vcf"
    fallback_name: str


CALENDARS = ArchiveKind("calendars", ".ics", "Calendar")
CONTACTS = ArchiveKind("contacts", ".vcf", "Contacts")


def collection_dir_name(name: str, fallback: str) -> str:
    """A collection's display name made safe as one directory name (no "/", ".", "..").

    Names too long for a file name are cut and given a digest of the full name, so that
    two long names stay apart.
    """
    safe = name.replace("/", "\u2215").replace("\0", "_") or fallback
    if safe.strip(".") == "":
        safe = safe.replace(".", "\u2024")
    encoded = safe.encode("utf-8")
    if len(encoded) <= MAX_NAME_BYTES:
        return safe
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    return encoded[: MAX_NAME_BYTES - 13].decode("utf-8", "ignore") + "~" + digest


def merge_calendars(calendars: Iterator[bytes]) -> bytes:
    """One VCALENDAR with every component of `calendars`, each VTIMEZONE (by TZID) once.

    A file that does not parse is left out of the merge (and logged by name).
    """
    merged = icalendar.Calendar()
    merged.add("prodid", PRODID)
    merged.add("version", "2.0")
    zones: set[str] = set()
    for content in calendars:
        try:
            calendar = icalendar.Calendar.from_ical(content)
        except ValueError as error:
            log.warning("a calendar file does not parse and is left out: %s", error)
            continue
        for component in calendar.subcomponents:
            if component.name == "VTIMEZONE":
                tzid = str(component.get("TZID", ""))
                if tzid in zones:
                    continue
                zones.add(tzid)
            merged.add_component(component)
    return merged.to_ical()


def merge_vcards(cards: Iterator[bytes]) -> bytes:
    """The vCards one after the other, each ending with CRLF."""
    return b"".join(card if card.endswith(b"\n") else card + b"\r\n" for card in cards)


class DavArchiveTarget(ArchiveRoot):
    """Writes calendars or address books under `root` (see the module doc)."""

    kind = CALENDARS
    capabilities = Capabilities(
        server_assigned_ids=False,
        keeps_timestamps=False,
        max_item_bytes=None,
        checksums=False,
        moves=True,
    )

    def open(self, owner: Owner) -> DavArchiveSession:
        directory = self.directory(login_dir_name(owner)) / self.kind.directory
        return DavArchiveSession(directory, self.kind, self.durable)


class IcsArchiveTarget(DavArchiveTarget):
    """Calendars as `.ics` files."""

    kind = CALENDARS


class VcfArchiveTarget(DavArchiveTarget):
    """Address books as `.vcf` files."""

    kind = CONTACTS


class DavArchiveSession:
    """One owner's calendars or address books (`TargetSession`), one thread at a time."""

    def __init__(self, base: Path, kind: ArchiveKind, durable: bool = True) -> None:
        self.base = base  # <root>/<login>/calendars
        self.kind = kind
        self.durable = durable

    # -- collections --------------------------------------------------------------------------

    def ensure_container(self, container: Container) -> str:
        """Create the collection's directory; return its name (the `TargetRef.folder`)."""
        name = container.path[-1] if container.path else container.source_id
        folder = collection_dir_name(name, self.kind.fallback_name)
        self._dir(folder).mkdir(parents=True, exist_ok=True)
        return folder

    def _dir(self, folder: str) -> Path:
        if not folder or "/" in folder or folder in (".", ".."):
            raise SkipItem(f"{folder!r} is not a collection of this archive")
        return self.base / folder

    def _path(self, folder: str, resource: str) -> Path:
        if not resource or "/" in resource or resource.startswith("."):
            raise SkipItem(f"{resource!r} is not a resource of this archive")
        return self._dir(folder) / resource

    def folders(self) -> list[str]:
        """Every collection directory of this owner."""
        if not self.base.is_dir():
            return []
        return sorted(p.name for p in self.base.iterdir() if p.is_dir())

    def collection_file(self, folder: str) -> Path:
        """Where the whole collection goes: `<name>.ics` or `<name>.vcf` beside its directory."""
        return self.base / f"{folder}{self.kind.extension}"

    # -- resources ----------------------------------------------------------------------------

    def _files(self, folder: str) -> list[Path]:
        try:
            entries = sorted(os.scandir(self._dir(folder)), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        return [
            Path(e.path)
            for e in entries
            if e.name.endswith(self.kind.extension) and not e.name.startswith(".") and e.is_file()
        ]

    @staticmethod
    def _stored_uid(path: Path) -> str | None:
        try:
            return resource_uid(path.read_bytes().decode("utf-8", "replace"))
        except FileNotFoundError:
            return None

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The payload's file if it exists, holds the payload's UID and is not excluded."""
        resource = payload_resource(payload)
        if resource in exclude:
            return None
        if self._stored_uid(self._path(folder, resource)) != payload_uid(payload):
            return None
        return TargetRef(folder, resource)

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Write the file; a file of the same name holding another UID is left alone."""
        resource = payload_resource(payload)
        path = self._path(folder, resource)
        stored = self._stored_uid(path) if path.exists() else None
        if stored is not None and stored != payload_uid(payload):
            raise Refused(f"{resource} in {folder} already holds another item (UID {stored})")
        return self._write(folder, resource, payload)

    def _write(self, folder: str, resource: str, payload: Payload) -> TargetRef:
        """Write the file, if its content holds the payload's UID (so `find` knows it again)."""
        content = payload.blob.read_bytes() if payload.blob else payload.content
        found = resource_uid(content.decode("utf-8", "replace"))
        if found != payload_uid(payload):
            raise SkipItem(f"the content holds no item with UID {payload_uid(payload)!r}")
        directory = self._dir(folder)
        directory.mkdir(parents=True, exist_ok=True)
        write_atomically(directory / resource, [content], self.durable, sync_parent=True)
        return TargetRef(folder, resource)

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Replace the stored file with the payload's content."""
        self._path(ref.folder, ref.ref)  # checks the names
        return self._write(ref.folder, ref.ref, payload)

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """Rename the file into another collection of the same owner."""
        if folder == ref.folder:
            return ref
        source, destination = self._path(ref.folder, ref.ref), self._path(folder, ref.ref)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, destination)
        except FileNotFoundError:
            if not destination.exists():
                raise SkipItem(f"{ref.ref} is no longer in {ref.folder}: nothing to move") from None
        return TargetRef(folder, ref.ref)

    def remove(self, ref: TargetRef) -> None:
        """Delete the file; nothing to do if it is already gone."""
        self._path(ref.folder, ref.ref).unlink(missing_ok=True)

    def listing(self, folder: str) -> list[Entry]:
        """Every file of the collection with its UID and exact size."""
        entries = []
        for path in self._files(folder):
            try:
                content = path.read_bytes()
            except FileNotFoundError:  # removed meanwhile
                continue
            uid = resource_uid(content.decode("utf-8", "replace")) or ""
            entries.append(Entry(TargetRef(folder, path.name), f"uid:{uid}", len(content)))
        return entries

    # -- whole-collection files ---------------------------------------------------------------

    def close(self) -> None:
        """Rebuild the whole-collection file of every collection changed since it was written."""
        for folder in self.folders():
            if self._is_stale(folder):
                self.write_collection(folder)

    def _is_stale(self, folder: str) -> bool:
        try:
            written = self.collection_file(folder).stat().st_mtime_ns
        except FileNotFoundError:
            return True
        return written <= self._dir(folder).stat().st_mtime_ns

    def write_collection(self, folder: str) -> Path:
        """Write the collection's `.ics` (merged) or `.vcf` (concatenated) file atomically."""
        files = self._files(folder)
        contents = (path.read_bytes() for path in files if path.exists())
        if self.kind is CALENDARS:
            content = merge_calendars(contents)
        else:
            content = merge_vcards(contents)
        path = self.collection_file(folder)
        write_atomically(path, [content], self.durable, sync_parent=True)
        return path
