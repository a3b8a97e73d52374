"""One owner's connection to a CalDAV or CardDAV server: discovery of its home, its
collections found or created, and its resources written, listed, moved and removed (the
protocol and its idempotency are described in `dav`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Set
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import httpx

from ..migrator.errors import FatalError, Refused, Retriable, SkipItem
from ..migrator.model import Container, Entry, Payload, TargetRef
from . import dav_discovery as discovery
from . import dav_wire as wire
from .dav_discovery import VcardChoice
from .dav_wire import (
    CARDDAV_KIND,
    DAV,
    SUPPORTED_ADDRESS_DATA,
    SUPPORTED_CALENDAR_DATA,
    DavKind,
    DavResponse,
    qname,
)

if TYPE_CHECKING:
    from .dav import DavSettings


MAX_SLUG_ATTEMPTS = 100
_CREATED = (200, 201, 204)


def _refuse_precondition(response: httpx.Response) -> None:
    """`Refused` when a 412 names a DAV precondition rather than the If-None-Match/If-Match.

    Xandikos answers data it cannot take (an empty or broken calendar) with 412 and a
    `valid-calendar-data` error body, where RFC 4791 section 5.3.2.1 has 403 or 409.
    """
    if wire.preconditions(response):
        raise Refused(f"the server refused the item ({wire.server_reason(response)})")


def _content(payload: Payload) -> bytes:
    return payload.blob.read_bytes() if payload.blob is not None else payload.content


class DavSession:
    """One owner's connection to a CalDAV or CardDAV server (`TargetSession`).

    `TargetRef.folder` is the collection's URL path ("/alice%40example.org/work/"),
    `TargetRef.ref` the resource name.
    """

    def __init__(
        self,
        dav: wire.DavConnection,
        kind: DavKind,
        settings: DavSettings,
        on_vcard: Callable[[VcardChoice], None] | None = None,
    ) -> None:
        self._dav = dav
        self.kind = kind
        self._login = dav.login
        self._settings = settings
        self._on_vcard = on_vcard  # told the vCard version an address book takes
        self.principal = ""
        self.principal_via = ""  # how the principal was found, for doctor
        self.home = ""
        self._children: list[DavResponse] | None = None
        self._described: dict[str, DavResponse] = {}  # collection path -> what it takes

    # -- discovery ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Log in and find the owner's home collection (raises `FatalError` if refused)."""
        found_principal = discovery.find_principal(
            self._dav, self.kind.well_known, urlsplit(self._settings.url).path
        )
        self.principal, self.principal_via = found_principal.path, found_principal.via
        found = self._dav.propfind(self.principal, 0, self.kind.home_set)
        home = next((r.href_of(self.kind.home_set) for r in found if r.props), None)
        if not home:
            raise FatalError(
                f"{self._login.login} has no {self.kind.name} home on {self._settings.url}: "
                f"check {self._settings.setting('url')}"
            )
        self.home = wire.url_path(home, self._settings.url)
        if not self.home.endswith("/"):
            self.home += "/"

    def server_classes(self) -> frozenset[str]:
        """The compliance classes the server's OPTIONS answer announces for the home."""
        response = self._dav.send("OPTIONS", self.home, ok=range(200, 300))
        return frozenset(c.strip() for c in response.headers.get("DAV", "").split(",") if c)

    # -- collections --------------------------------------------------------------------------

    def collections(self) -> list[DavResponse]:
        """The home's children (display name and resource type), fetched once per session."""
        if self._children is None:
            props = (qname(DAV, "displayname"), qname(DAV, "resourcetype"))
            found = self._dav.propfind(self.home, 1, *props, *self.kind.collection_props)
            self._children = [r for r in found if not wire.same_path(r.href, self.home)]
        return self._children

    def ensure_container(self, container: Container) -> str:
        """The collection whose display name is the container's name, created if missing."""
        folder = self._ensure(container)
        if self.kind is CARDDAV_KIND and self._on_vcard is not None:
            self._on_vcard(self.vcard_choice(folder))
        return folder

    def _ensure(self, container: Container) -> str:
        name = container.path[-1] if container.path else container.source_id
        existing = self._named(name)
        if existing is not None:
            return existing
        base = wire.slug(name, self.kind.fallback_slug)
        for number in itertools.islice(itertools.count(1), MAX_SLUG_ATTEMPTS):
            candidate = base if number == 1 else f"{base}-{number}"
            if candidate in {wire.last_segment(c.href) for c in self.collections()}:
                continue
            path = f"{self.home}{quote(candidate)}/"
            response = self._dav.send(
                self.kind.create_method,
                path,
                ok=(*_CREATED, 403, 405, 409),
                body=self.kind.create_body(name),
                headers={"Content-Type": wire.XML_TYPE},
            )
            self._children = None
            if response.status_code in _CREATED:
                return path
            existing = self._named(name)  # taken meanwhile, perhaps by this very name
            if existing is not None:
                return existing
        raise FatalError(f"cannot create a {self.kind.name} collection for {name!r} in {self.home}")

    def _named(self, name: str) -> str | None:
        for child in self.collections():
            if (
                child.has_type(self.kind.collection_type)
                and child.text(qname(DAV, "displayname")) == name
            ):
                return child.href if child.href.endswith("/") else child.href + "/"
        return None

    def described(self, folder: str) -> DavResponse:
        """What the collection at `folder` says it takes (its `collection_props`)."""
        if folder not in self._described:
            listed = next((c for c in self.collections() if wire.same_path(c.href, folder)), None)
            if listed is None or not listed.props:
                found = self._dav.propfind(folder, 0, *self.kind.collection_props, ok=(207, 404))
                listed = found[0] if found else DavResponse(folder)
            self._described[folder] = listed
        return self._described[folder]

    def learn_vcard(self) -> None:
        """Tell the target the vCard version of the home's first address book, if any
        (before anything is mapped: items retried from an earlier pass are mapped before
        their address book is looked up again)."""
        books = [c for c in self.collections() if c.has_type(self.kind.collection_type)]
        if books and self._on_vcard is not None:
            self._on_vcard(self.vcard_choice(books[0].href))

    def vcard_choice(self, folder: str) -> VcardChoice:
        """The vCard version for the address book at `folder`: the setting, else the best
        one it lists."""
        if self._settings.vcard_version:
            setting = self._settings.setting("vcard_version")
            return VcardChoice(self._settings.vcard_version, f"set by {setting}")
        listed = discovery.data_types(self.described(folder), SUPPORTED_ADDRESS_DATA)
        return discovery.choose_vcard(listed, f"the address book {folder}")

    def _check_takes(self, folder: str, body: bytes) -> None:
        """`Refused` when the calendar says it does not take this payload's components.

        (Cards are written in the version the mapper was told, see `vcard_choice`.)
        """
        if self.kind is CARDDAV_KIND:
            return
        text = body.decode("utf-8", "replace")
        found = self.described(folder)
        missing = discovery.missing_components(found, wire.top_components(text))
        if missing:
            taken = ", ".join(sorted(discovery.components(found) or ())) or "nothing"
            raise Refused(
                f"the calendar {folder} does not take {', '.join(missing)} "
                f"(its supported-calendar-component-set lists {taken}): "
                "choose or create a calendar for it on the server"
            )
        if not discovery.calendar_takes_icalendar(found):
            listed = discovery.data_types(found, SUPPORTED_CALENDAR_DATA)
            raise Refused(f"the calendar {folder} does not take iCalendar 2.0 (it lists {listed})")

    # -- resources ----------------------------------------------------------------------------

    def _get(self, folder: str, resource: str) -> str | None:
        """The stored resource's text, None if it does not exist."""
        response = self._dav.send("GET", folder + quote(resource), ok=(200, 404, 410), item=True)
        if response.status_code != 200:
            return None
        return response.content.decode("utf-8", "replace")

    def find(self, folder: str, payload: Payload, exclude: Set[str]) -> TargetRef | None:
        """The payload's resource if it exists, holds the payload's UID and is not excluded."""
        resource = wire.payload_resource(payload)
        if resource in exclude:
            return None
        stored = self._get(folder, resource)
        if stored is None or wire.resource_uid(stored) != wire.payload_uid(payload):
            return None
        return TargetRef(folder, resource)

    def put(self, folder: str, payload: Payload) -> TargetRef:
        """Create the resource (`If-None-Match: *`); an existing one with the same UID is it."""
        resource = wire.payload_resource(payload)
        body = _content(payload)  # read once: checked, then sent
        self._check_takes(folder, body)
        headers = {"If-None-Match": "*", "Content-Type": self._content_type(payload)}
        response = self._dav.send(
            "PUT",
            folder + quote(resource),
            ok=(*_CREATED, 412),
            body=body,
            headers=headers,
            item=True,
        )
        if response.status_code == 412:
            _refuse_precondition(response)
            stored = self._get(folder, resource)
            if stored is None:
                raise Retriable(f"{folder}{resource} existed, then vanished: try again")
            uid = wire.resource_uid(stored)
            if uid != wire.payload_uid(payload):
                raise Refused(f"{resource} in {folder} already holds another item (UID {uid})")
        return TargetRef(folder, resource)

    def _content_type(self, payload: Payload) -> str:
        return str(payload.attrs.get("content_type") or self.kind.content_type)

    def update(self, ref: TargetRef, payload: Payload) -> TargetRef:
        """Replace the stored resource, guarded by its ETag; write it anew if it is gone."""
        path = ref.folder + quote(ref.ref)
        response = self._dav.send("HEAD", path, ok=(200, 404, 410), item=True)
        if response.status_code != 200:
            return self.put(ref.folder, payload)
        body = _content(payload)  # read once: checked, then sent
        self._check_takes(ref.folder, body)
        headers = {"Content-Type": self._content_type(payload)}
        etag = response.headers.get("ETag")
        if etag:
            headers["If-Match"] = etag
        response = self._dav.send(
            "PUT", path, ok=(*_CREATED, 412), body=body, headers=headers, item=True
        )
        if response.status_code == 412:
            _refuse_precondition(response)
            raise Retriable(f"{path} changed on the server during the update: try again")
        return ref

    def move(self, ref: TargetRef, folder: str) -> TargetRef:
        """WebDAV MOVE to another collection of the same owner; `SkipItem` if refused."""
        if folder == ref.folder:
            return ref
        destination = self._settings.origin + folder + quote(ref.ref)
        headers = {"Destination": destination, "Overwrite": "F"}
        response = self._dav.send(
            "MOVE",
            ref.folder + quote(ref.ref),
            ok=(*_CREATED, 404, 405, 412, 501, 502),
            headers=headers,
            item=True,
        )
        status = response.status_code
        if status == 404:
            raise SkipItem(f"{ref.ref} is no longer in {ref.folder}: nothing to move")
        if status in (405, 501, 502):
            raise SkipItem(f"the server cannot move {ref.ref} to {folder} ({status})")
        if status == 412:  # an earlier, interrupted move already put it there
            self.remove(ref)
        return TargetRef(folder, ref.ref)

    def remove(self, ref: TargetRef) -> None:
        """DELETE the resource; nothing to do if it is already gone."""
        self._dav.send(
            "DELETE", ref.folder + quote(ref.ref), ok=(200, 202, 204, 404, 410), item=True
        )

    def listing(self, folder: str) -> list[Entry]:
        """Every resource of the collection with its UID (REPORT, else PROPFIND and GET)."""
        headers = {"Depth": "1", "Content-Type": wire.XML_TYPE}
        response = self._dav.send(
            "REPORT", folder, ok=(207, 404, 405, 501), body=self.kind.query_body(), headers=headers
        )
        if response.status_code == 404:
            return []
        if response.status_code != 207:
            return self._listing_one_by_one(folder)
        entries = []
        for found in wire.parse_multistatus(response.content, str(response.url)):
            text = found.text(self.kind.data_prop)
            if text is not None and not wire.same_path(found.href, folder):
                entries.append(self._entry(folder, wire.last_segment(found.href), text))
        return entries

    def _listing_one_by_one(self, folder: str) -> list[Entry]:
        """For servers without the query REPORT: PROPFIND the members, GET each."""
        found = self._dav.propfind(folder, 1, qname(DAV, "resourcetype"), ok=(207, 404))
        entries = []
        for member in found:
            if wire.same_path(member.href, folder) or member.has_type(qname(DAV, "collection")):
                continue
            resource = wire.last_segment(member.href)
            stored = self._get(folder, resource)
            if stored is not None:
                entries.append(self._entry(folder, resource, stored))
        return entries

    @staticmethod
    def _entry(folder: str, resource: str, text: str) -> Entry:
        # size -1: servers may rewrite resources (Radicale re-serialises them)
        return Entry(TargetRef(folder, resource), f"uid:{wire.resource_uid(text) or ''}", -1)

    def close(self) -> None:
        self._dav.close()
