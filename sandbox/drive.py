"""The sandbox's drive resources: OneDrive, SharePoint sites and libraries, delta, downloads.

Routes, paging and the driveItem wire format
(https://learn.microsoft.com/en-us/graph/api/resources/driveitem) over `SandboxDrives`.
Every request is charged its SharePoint resource units through the server's pipeline
(`gate`). `/content` answers 302 to a short-lived, pre-authenticated `/_download/<ticket>`
URL served by `download` outside the bearer-token pipeline, as SharePoint's download
host is: it honours `Range` and meets the same injected faults (a truncation fault cuts
the body halfway and resets the connection). A file SharePoint enriched after upload
(`drive_data.Enrichment`) serves its rewritten bytes, announced by their own
Content-Length, while its listed size and quickXorHash stay those of the upload.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from hirondelle.sandbox.drive_data import (
    DriveItem,
    ItemVersion,
    SandboxDrive,
    SandboxDrives,
    Tombstone,
)
from hirondelle.sandbox.faults import Fate
from hirondelle.sandbox.mail import GraphRequest, GraphResponse
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    decode_token,
    encode_token,
    error_body,
    iso,
    preferences,
    select_keys,
)
from hirondelle.sandbox.resource_units import ResourceUnitThrottle
from hirondelle.sandbox.service import Gate

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

PAGE_DEFAULT = 200
PAGE_MAX = 999
TICKET_SECONDS = 60.0
QUOTA_TOTAL = 1 << 40
_DELTA = re.compile(r"^(microsoft\.graph\.)?delta(\(\)|\(token='(?P<token>[^']*)'\))?$", re.I)
# https://learn.microsoft.com/en-us/onedrive/developer/rest-api/concepts/errors
RESYNC_MESSAGE = (
    "Resync required. Replace any local items with the server's version (including deletes) "
    "if you're sure that the service was up to date with your local changes when you last "
    "sync'd. Upload any local changes that the server doesn't know about."
)


@dataclass(frozen=True)
class _Ticket:
    drive_id: str
    item_id: str
    version: str | None
    expires: float
    serial: int  # which download URL this is (an enrichment may differ per download)


@dataclass(frozen=True)
class _Target:
    """What a drive request addresses: the drive, maybe an item, and what follows it."""

    drive: SandboxDrive
    item: DriveItem | None
    rest: list[str]


class DriveService:
    """Routes Graph requests on drives, sites and drive items; serves the download URLs."""

    def __init__(
        self,
        tenant: Tenant,
        throttle: ResourceUnitThrottle,
        fate: Callable[[], Fate] = lambda: Fate.NORMAL,
        faults: Counter[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant = tenant
        self.throttle = throttle
        self.ticket_seconds = TICKET_SECONDS
        self._fate = fate
        self._faults = faults if faults is not None else Counter()
        self._clock = clock
        self._tickets: dict[str, _Ticket] = {}
        self._issued = 0

    @property
    def drives(self) -> SandboxDrives:
        return self.tenant.drives

    # -- the Service protocol ---------------------------------------------------------

    def owns(self, request: GraphRequest) -> bool:
        names = request.names
        if names and names[0] in ("drives", "sites"):
            return True
        return (
            len(names) >= 3 and names[0] in ("users", "groups") and names[2] in ("drive", "drives")
        )

    def gate(self, request: GraphRequest) -> Gate | None:
        return self.throttle.gate(resource_units(request))

    def handle(self, request: GraphRequest) -> GraphResponse:
        if request.method not in ("GET", "HEAD"):
            raise GraphError(405, "notSupported", f"{request.method} is not supported here.")
        try:
            response = self._route(request)
        except _Resync as resync:
            # https://learn.microsoft.com/en-us/graph/api/driveitem-delta: 410 Gone, a Location
            # to restart from scratch, and what to do with local items in the inner code.
            response = GraphResponse(410, resync_body(resync), dict(resync.headers))
        response.headers.update(self.throttle.rate_limit_headers())
        return response

    # -- routing ----------------------------------------------------------------------

    def _route(self, request: GraphRequest) -> GraphResponse:
        names, segments = request.names, request.segments
        match names:
            case ["sites"] | ["sites", "getallsites" | "getallsites()"]:
                return self._sites(request)
            case ["sites", _]:
                return _entity(request, "sites/$entity", site_json(self._site(segments[1])))
            case ["sites", _, "drives"]:
                site = self._site(segments[1])
                return self._drive_list(request, self.drives.site_drives(site.id))
            case ["users", _, "drives"]:
                return self._drive_list(request, [self._user_drive(segments[1])])
        target = self._target(request)
        if target.item is None:
            drive = drive_json(target.drive, self.drives, self._owner_of(target.drive))
            return _entity(request, "drives/$entity", select_keys(drive, _select(request)))
        return self._item_route(request, target)

    def _item_route(self, request: GraphRequest, target: _Target) -> GraphResponse:
        item, rest = target.item, [name.lower() for name in target.rest]
        assert item is not None
        match rest:
            case []:
                return _entity(request, "drives/items/$entity", self._item_entity(request, item))
            case ["children"]:
                return self._children(request, item)
            case [delta] if _DELTA.match(delta):
                return self._delta(request, item, _DELTA.match(delta))
            case ["content"]:
                return self._redirect(request, item, None)
            case ["versions"]:
                return self._versions(request, item)
            case ["versions", _]:
                return GraphResponse(body=version_json(item, self._version(item, target.rest[1])))
            case ["versions", _, "content"]:
                return self._redirect(request, item, self._version(item, target.rest[1]).id)
            case ["permissions"]:
                permissions = permissions_of(item, self.drives, self._owner_of(target.drive))
                return GraphResponse(body={"value": permissions})
            case ["permissions", wanted]:
                for permission in permissions_of(item, self.drives, self._owner_of(target.drive)):
                    if permission["id"].lower() == wanted:
                        return GraphResponse(body=permission)
                raise GraphError(404, "itemNotFound", "The permission could not be found.")
        path = "/".join(request.segments)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.")

    def _target(self, request: GraphRequest) -> _Target:
        names, segments = request.names, request.segments
        match names:
            case ["drives", _, *rest]:
                drive = self._drive(segments[1])
            case ["users", _, "drive", *rest]:
                drive = self._user_drive(segments[1])
            case ["sites", _, "drive", *rest]:
                drive = self._library(self._site(segments[1]).id)
            case ["sites", _, "drives", _, *rest]:
                drive = self._drive(segments[3])
            case ["groups", _, "drive", *rest]:
                drive = self._group_drive(segments[1])
            case _:
                raise GraphError(400, "BadRequest", "Resource not found for the segment.")
        tail = segments[len(segments) - len(rest) :]
        return self._item_of(drive, tail)

    def _item_of(self, drive: SandboxDrive, tail: list[str]) -> _Target:
        if not tail:
            return _Target(drive, None, [])
        head = tail[0].lower()
        try:
            if head == "root":
                return _Target(drive, self.drives.item(drive.id, "root"), tail[1:])
            if head == "items" and len(tail) > 1:
                return _Target(drive, self.drives.item(drive.id, tail[1]), tail[2:])
            if head.startswith("root:"):
                path, rest = _split_path(tail)
                return _Target(drive, self.drives.by_path(drive.id, path), rest)
        except KeyError:
            raise GraphError(404, "itemNotFound", "The resource could not be found.") from None
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[0]}'.")

    # -- owners, sites and drives ---------------------------------------------------------

    def _site(self, key: str) -> Any:
        try:
            return self.drives.site(key)
        except KeyError:
            raise GraphError(404, "itemNotFound", "Requested site could not be found") from None

    def _drive(self, key: str) -> SandboxDrive:
        try:
            return self.drives.drive(key)
        except KeyError:
            raise GraphError(404, "itemNotFound", "The drive could not be found.") from None

    def _user_drive(self, key: str) -> SandboxDrive:
        try:
            user = self.tenant.user(key)
        except KeyError:
            message = f"The requested user '{key}' is invalid."
            raise GraphError(404, "itemNotFound", message) from None
        drive_id = self.drives.user_drives.get(user.id)
        if drive_id is None:
            raise GraphError(404, "ResourceNotFound", "User's mysite not found.")
        return self.drives.drive(drive_id)

    def _library(self, site_id: str) -> SandboxDrive:
        """A site's default library: its "Documents"."""
        return next(d for d in self.drives.site_drives(site_id) if d.name == "Documents")

    def _group_drive(self, group_id: str) -> SandboxDrive:
        for site in self.drives.sites:
            if site.group_id and site.group_id.lower() == group_id.lower():
                return self._library(site.id)
        raise GraphError(404, "itemNotFound", "The group could not be found.")

    def _owner_of(self, drive: SandboxDrive) -> JSON:
        if drive.drive_type == "business":
            user = {"id": drive.owner_id, "displayName": drive.owner_name}
            return {"user": user | {"email": drive.owner_email}}
        site = self.drives.site(drive.owner_id)
        if site.group_id:
            group = {"id": site.group_id, "displayName": site.display_name}
            email = f"{site.name}@{self.tenant.spec.domain if self.tenant.spec else 'contoso.test'}"
            return {"group": group | {"email": email}}
        return {"user": {"displayName": "System Account"}}

    def _sites(self, request: GraphRequest) -> GraphResponse:
        search = (request.query.get("search") or "*").strip('"').lower()
        sites = [
            s
            for s in self.drives.sites
            if search == "*" or search in s.display_name.lower() or search in s.name.lower()
        ]
        body = {"@odata.context": f"{request.base_url}/$metadata#sites"}
        return GraphResponse(body=body | {"value": [site_json(s) for s in sites]})

    def _drive_list(self, request: GraphRequest, drives: list[SandboxDrive]) -> GraphResponse:
        select = _select(request)
        value = [select_keys(drive_json(d, self.drives, self._owner_of(d)), select) for d in drives]
        body = {"@odata.context": f"{request.base_url}/$metadata#drives", "value": value}
        return GraphResponse(body=body)

    # -- items ------------------------------------------------------------------------------

    def _item_entity(self, request: GraphRequest, item: DriveItem, sizes: Any = None) -> JSON:
        entity = item_json(item, self.drives, self._owner_of(self.drives.drive(item.drive_id)))
        entity["size"] = self._size(item, sizes)
        if item.kind == "file":
            entity["@microsoft.graph.downloadUrl"] = self._ticket_url(request, item, None)
        return select_keys(entity, _select(request))

    def _size(self, item: DriveItem, sizes: dict[str, int] | None) -> int:
        if item.kind in ("root", "folder"):
            sizes = self.drives.folder_sizes(item.drive_id) if sizes is None else sizes
            return sizes.get(item.id, 0)
        return item.size

    def _children(self, request: GraphRequest, parent: DriveItem) -> GraphResponse:
        if parent.kind not in ("root", "folder", "package"):
            return GraphResponse(body={"value": []})
        children = self.drives.children(parent.drive_id, parent.id)
        size = _page_size(request)
        token = request.query.get("$skiptoken") or request.query.get("skiptoken")
        start = int(decode_token(token).get("o", 0)) if token else 0
        sizes = self.drives.folder_sizes(parent.drive_id)
        page = [self._item_entity(request, c, sizes) for c in children[start : start + size]]
        where = f"drives('{parent.drive_id}')/items('{parent.id}')/children"
        body: JSON = {"@odata.context": f"{request.base_url}/$metadata#{where}", "value": page}
        if start + size < len(children):
            body["@odata.nextLink"] = request.link(skiptoken=encode_token({"o": start + size}))
        return GraphResponse(body=body)

    def _versions(self, request: GraphRequest, item: DriveItem) -> GraphResponse:
        if item.kind != "file":
            raise GraphError(400, "invalidRequest", "Only files have versions.")
        current = self._version(item, item.version_id)
        older = [self._version(item, v.id) for v in reversed(item.versions)]
        value = [version_json(item, v) for v in (current, *older)]
        return GraphResponse(body={"value": value})

    def _version(self, item: DriveItem, version_id: str) -> ItemVersion:
        if version_id.lower() in (item.version_id, "current"):
            return ItemVersion(item.version_id, item.content, item.size, item.modified)
        for older in item.versions:
            if older.id == version_id:
                return older
        raise GraphError(404, "itemNotFound", "The version could not be found.")

    # -- delta ------------------------------------------------------------------------------

    def _delta(self, request: GraphRequest, root: DriveItem, match: Any) -> GraphResponse:
        """root/delta: an initial enumeration, or the changes since a token, by pages.

        Business drives only enumerate from the root. Items come as their latest state;
        each changed item is followed by its ancestors not yet on the page unless the
        `deltaExcludeParent` preference is given, as OneDrive does
        (github.com/OneDrive/onedrive-api-docs/issues/295). cTag is omitted, and name too
        for deleted items (the remarks of the driveItem delta page).
        """
        if root.kind != "root":
            raise GraphError(501, "notSupported", "view.delta can only be called on the root.")
        token = match.group("token") or request.query.get("token")
        drive_id = root.drive_id
        link = f"{request.base_url}/drives/{drive_id}/root/delta"
        if token == "latest":
            latest = encode_token(
                {"d": drive_id, "s": self.drives.seq, "g": self.drives.delta_epoch}
            )
            return _delta_page(request, [], None, f"{link}?token={latest}")
        state = self._delta_state(request, drive_id, token, link)
        keyed = self._delta_keys(drive_id, state)
        cursor = state.get("k")
        if cursor is not None:
            keyed = [pair for pair in keyed if pair[0] > list(cursor)]
        page = keyed[: int(state.get("top") or PAGE_DEFAULT)]  # $top holds for the round
        chosen = [entry for _, entry in page]
        entries = self._delta_entries(request, chosen, state["m"] == "c", tuple(state["sel"]))
        if len(keyed) > len(page):
            following = encode_token({**state, "k": page[-1][0]})
            return _delta_page(request, entries, f"{link}?token={following}", None)
        settled = {"d": drive_id, "s": state["t"], "g": state["g"], "sel": state["sel"]}
        settled["top"] = state.get("top")
        settled_link = f"{link}?token={encode_token(settled)}"
        return _delta_page(request, entries, None, settled_link)

    def _delta_state(
        self, request: GraphRequest, drive_id: str, token: str | None, link: str
    ) -> dict[str, Any]:
        if token is None:
            fresh = {"d": drive_id, "m": "i", "s": 0, "t": self.drives.seq}
            carried = {"sel": list(_select(request)), "top": _page_size(request)}
            return fresh | {"g": self.drives.delta_epoch} | carried
        state = decode_token(token)
        if state.get("d") != drive_id:
            raise GraphError(400, "invalidRequest", "The token belongs to another drive.")
        if state.get("g") != self.drives.delta_epoch:
            raise _Resync(link)
        if "m" not in state:  # a deltaLink: a new round of changes
            return {**state, "m": "c", "t": self.drives.seq, "sel": state.get("sel", [])}
        return state

    def _delta_keys(
        self, drive_id: str, state: dict[str, Any]
    ) -> list[tuple[list[int], DriveItem | Tombstone]]:
        keyed: list[tuple[list[int], DriveItem | Tombstone]] = []
        if state["m"] == "i":
            for item in self.drives.items(drive_id):
                keyed.append(([len(self.drives.ancestors(item)), item.ordinal], item))
        else:
            changed, removed = self.drives.changes_since(drive_id, int(state["s"]))
            keyed += [([i.seq, i.ordinal], i) for i in changed if i.seq <= int(state["t"])]
            keyed += [([t.seq, 0], t) for t in removed if t.seq <= int(state["t"])]
        return sorted(keyed, key=lambda pair: pair[0])

    def _delta_entries(
        self,
        request: GraphRequest,
        entries: list[DriveItem | Tombstone],
        parents: bool,
        select: tuple[str, ...],
    ) -> list[JSON]:
        prefer = preferences(request.headers.get("Prefer"))
        parents = parents and "deltaexcludeparent" not in prefer
        parents = parents and "deltaExcludeParent" not in request.headers
        sent = {entry.id for entry in entries}
        drive = self.drives.drive(entries[0].drive_id) if entries else None
        sizes = self.drives.folder_sizes(drive.id) if drive else {}
        found: list[JSON] = []
        for entry in entries:
            if isinstance(entry, Tombstone):
                found.append(tombstone_json(entry, self.drives.drive(entry.drive_id)))
                lineage = self._lineage(entry)
            else:
                found.append(select_keys(self._delta_item(entry, sizes), select))
                lineage = self.drives.ancestors(entry)
            for ancestor in lineage if parents else []:
                if ancestor.id not in sent:
                    sent.add(ancestor.id)
                    found.append(select_keys(self._delta_item(ancestor, sizes), select))
        return found

    def _lineage(self, tombstone: Tombstone) -> list[DriveItem]:
        try:
            parent = self.drives.item(tombstone.drive_id, tombstone.parent_id or "")
        except KeyError:
            return []
        return [parent, *self.drives.ancestors(parent)]

    def _delta_item(self, item: DriveItem, sizes: dict[str, int]) -> JSON:
        entity = item_json(item, self.drives, self._owner_of(self.drives.drive(item.drive_id)))
        entity["size"] = self._size(item, sizes)
        entity.pop("cTag", None)
        entity["parentReference"].pop("path", None)
        return entity

    # -- downloads --------------------------------------------------------------------------

    def _redirect(
        self, request: GraphRequest, item: DriveItem, version: str | None
    ) -> GraphResponse:
        """302 to a pre-authenticated download URL (driveitem-get-content)."""
        if item.kind != "file":
            raise GraphError(400, "invalidRequest", "Only files have content to download.")
        location = self._ticket_url(request, item, version)
        return GraphResponse(status=302, headers={"Location": location})

    def _ticket_url(self, request: GraphRequest, item: DriveItem, version: str | None) -> str:
        now = self._clock()
        self._tickets = {k: t for k, t in self._tickets.items() if t.expires > now}
        ticket = secrets.token_urlsafe(24)
        self._issued += 1
        expires = now + self.ticket_seconds
        self._tickets[ticket] = _Ticket(item.drive_id, item.id, version, expires, self._issued)
        origin = request.base_url.rsplit("/v1.0", 1)[0]
        return f"{origin}/_download/{ticket}"

    async def download(self, request: web.Request) -> web.StreamResponse:
        """GET or HEAD on a download URL: no bearer token, expires, honours `Range`."""
        fate = self._fate()
        if fate is Fate.RESET:
            self._faults["reset"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if fate is Fate.ERROR:
            self._faults["error"] += 1
            return _text(503, "Service unavailable.", {"Retry-After": "1"})
        ticket = self._tickets.get(request.match_info["ticket"])
        if ticket is None or ticket.expires <= self._clock():
            return _text(401, "The download URL has expired or is not valid.")
        try:
            item = self.drives.item(ticket.drive_id, ticket.item_id)
            size = self.drives.served_size(item, ticket.version, ticket.serial)
        except KeyError:
            return _text(404, "The file is gone.")
        wanted = _byte_range(request.headers.get("Range"), size)
        if wanted is None:
            return _text(416, "Range not satisfiable.", {"Content-Range": f"bytes */{size}"})
        return await self._stream(request, item, ticket, wanted, size, fate is Fate.TRUNCATE)

    async def _stream(
        self,
        request: web.Request,
        item: DriveItem,
        ticket: _Ticket,
        wanted: tuple[int, int, bool],
        size: int,
        truncate: bool,
    ) -> web.StreamResponse:
        start, end, partial = wanted
        headers = {"Accept-Ranges": "bytes", "ETag": item.etag}
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        stream = web.StreamResponse(status=206 if partial else 200, headers=headers)
        stream.content_type = item.mime_type or "application/octet-stream"
        stream.content_length = end - start
        await stream.prepare(request)
        if request.method == "HEAD":
            return stream
        limit = start + (end - start) // 2 if truncate else end
        for chunk in self.drives.served_chunks(item, start, limit, ticket.version, ticket.serial):
            await stream.write(chunk)
        if truncate:
            self._faults["truncate"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # the connection is gone mid-body
        await stream.write_eof()
        return stream


class _Resync(GraphError):
    """410 Gone: the token is too old; Location restarts a full enumeration."""

    def __init__(self, restart: str) -> None:
        super().__init__(410, "resyncRequired", RESYNC_MESSAGE, {"Location": restart})


def resource_units(request: GraphRequest) -> int:
    """The documented RU cost of a Graph drive request."""
    names = request.names
    expand = (request.query.get("$expand") or request.query.get("expand") or "").lower()
    if "permissions" in names or "permissions" in expand:
        return 5
    last = names[-1] if names else ""
    delta = _DELTA.match(last)
    if delta:
        return 1 if (delta.group("token") or request.query.get("token")) else 2
    if last == "content":
        return 1
    if last in ("children", "drives", "versions", "sites", "getallsites", "getallsites()"):
        return 2
    return 1


def _split_path(tail: list[str]) -> tuple[str, list[str]]:
    """`root:/a/b:/children` (split on "/") into ("a/b", ["children"])."""
    parts = [tail[0][len("root:") :], *tail[1:]]
    for index in range(len(parts) - 1, 0, -1):
        if parts[index].endswith(":"):
            return "/".join([*parts[:index], parts[index][:-1]]).strip("/"), parts[index + 1 :]
    return "/".join(parts).strip("/"), []


def _byte_range(header: str | None, size: int) -> tuple[int, int, bool] | None:
    """(start, end exclusive, partial) for a single `bytes=` range; None if unsatisfiable."""
    if not header:
        return 0, size, False
    found = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if found is None or found.group(1) == found.group(2) == "":
        return 0, size, False  # a multi-range or malformed header: the whole body (RFC 9110)
    first, last = found.group(1), found.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        return None
    return start, end, True


def _select(request: GraphRequest) -> tuple[str, ...]:
    chosen = request.query.get("$select") or request.query.get("select") or ""
    return tuple(name.strip() for name in chosen.split(",") if name.strip())


def _page_size(request: GraphRequest) -> int:
    top = request.query.get("$top") or request.query.get("top")
    if top is None:
        return PAGE_DEFAULT
    if not top.isdigit() or not 1 <= int(top) <= PAGE_MAX:
        raise GraphError(400, "invalidRequest", f"$top must be 1 to {PAGE_MAX}.")
    return int(top)


def _entity(request: GraphRequest, context: str, entity: JSON) -> GraphResponse:
    return GraphResponse(
        body={"@odata.context": f"{request.base_url}/$metadata#{context}"} | entity
    )


def _delta_page(
    request: GraphRequest, entries: list[JSON], next_link: str | None, delta_link: str | None
) -> GraphResponse:
    body: JSON = {"@odata.context": f"{request.base_url}/$metadata#Collection(driveItem)"}
    if next_link:
        body["@odata.nextLink"] = next_link
    if delta_link:
        body["@odata.deltaLink"] = delta_link
    return GraphResponse(body=body | {"value": entries})


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=message, headers=headers)


# -- the wire format ----------------------------------------------------------------------------


def site_json(site: Any) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/site

    `isPersonalSite` as site-get and site-getallsites show it: the sandbox's sites are
    team and communication sites (its OneDrives are served as user drives only).
    """
    return {
        "id": site.id,
        "name": site.name,
        "displayName": site.display_name,
        "description": "",
        "isPersonalSite": False,
        "webUrl": site.web_url,
        "createdDateTime": iso(site.created),
        "lastModifiedDateTime": iso(site.created),
        "siteCollection": {"hostname": site.id.split(",")[0]},
    }


def drive_json(drive: SandboxDrive, drives: SandboxDrives, owner: JSON) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/drive"""
    used = drives.used_bytes(drive.id)
    return {
        "id": drive.id,
        "driveType": drive.drive_type,
        "name": drive.name,
        "description": "",
        "createdDateTime": iso(drive.created),
        "lastModifiedDateTime": iso(drive.created),
        "webUrl": drive.web_url,
        "createdBy": {"user": {"displayName": "System Account"}},
        "owner": owner,
        "quota": {
            "deleted": 0,
            "remaining": QUOTA_TOTAL - used,
            "state": "normal",
            "total": QUOTA_TOTAL,
            "used": used,
        },
    }


def item_json(item: DriveItem, drives: SandboxDrives, owner: JSON) -> JSON:
    """A driveItem as GET /items/{id} answers it (size is set by the caller)."""
    drive = drives.drive(item.drive_id)
    path = drives.path(item)
    parent: JSON = {"driveType": drive.drive_type, "driveId": drive.id}
    if item.parent_id is not None:
        parent_path = path.rpartition("/")[0]
        parent["id"] = item.parent_id
        parent["path"] = f"/drives/{drive.id}/root:" + (f"/{parent_path}" if parent_path else "")
    if drive.site_id:
        parent["siteId"] = drive.site_id
    entity: JSON = {
        "createdDateTime": iso(item.created),
        "eTag": item.etag,
        "id": item.id,
        "lastModifiedDateTime": iso(item.modified),
        "name": "root" if item.kind == "root" else item.name,
        "webUrl": drive.web_url + (f"/{quote(path)}" if path else ""),
        "cTag": item.ctag,
        "size": item.size,
        "createdBy": owner,
        "lastModifiedBy": owner,
        "parentReference": parent,
        "fileSystemInfo": {
            "createdDateTime": iso(item.created),
            "lastModifiedDateTime": iso(item.fs_modified),
        },
    }
    entity.update(_facets(item, drives))
    return entity


def _facets(item: DriveItem, drives: SandboxDrives) -> JSON:
    facets: JSON = {}
    if item.kind in ("root", "folder"):
        facets["folder"] = {"childCount": len(drives.children(item.drive_id, item.id))}
    if item.kind == "root":
        facets["root"] = {}
    elif item.kind == "file":
        hashes = {"quickXorHash": drives.quick_xor(item)}
        facets["file"] = {"mimeType": item.mime_type, "hashes": hashes}
    elif item.kind == "package":
        facets["package"] = {"type": "oneNote"}
    elif item.kind == "remote":
        facets["remoteItem"] = dict(item.remote or {})
    if item.grants:
        scopes = {g.scope or "users" for g in item.grants}
        scope = next(s for s in ("anonymous", "organization", "users") if s in scopes | {"users"})
        facets["shared"] = {"scope": scope}
    return facets


def tombstone_json(tombstone: Tombstone, drive: SandboxDrive) -> JSON:
    """A deleted item in delta: id, the deleted facet, its last parent; no name nor cTag."""
    parent = {"driveType": drive.drive_type, "driveId": drive.id, "id": tombstone.parent_id}
    entity: JSON = {"id": tombstone.id, "deleted": {"state": "deleted"}, "parentReference": parent}
    entity["folder" if tombstone.kind == "folder" else "file"] = {}
    return entity


def version_json(item: DriveItem, version: ItemVersion) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/driveitemversion"""
    return {
        "id": version.id,
        "lastModifiedDateTime": iso(version.modified),
        "size": version.size,
        "lastModifiedBy": {"user": {"displayName": "System Account"}},
    }


def permissions_of(item: DriveItem, drives: SandboxDrives, owner: JSON) -> list[JSON]:
    """The owner's, those inherited from shared ancestors, then the item's own."""
    drive = drives.drive(item.drive_id)
    root = drives.item(drive.id, "root")
    found = [_owner_permission(drive, owner, None if item.kind == "root" else root)]
    for ancestor in reversed(drives.ancestors(item)):
        found += [_permission(g, drive, ancestor, drives) for g in ancestor.grants]
    found += [_permission(g, drive, None, drives) for g in item.grants]
    return found


def _owner_permission(drive: SandboxDrive, owner: JSON, inherited: DriveItem | None) -> JSON:
    who = owner if "user" in owner or "group" in owner else {}
    permission: JSON = {"id": f"aTowIy5mfG1lbWJlcnNoaXB8{drive.owner_id}", "roles": ["owner"]}
    permission |= {"grantedToV2": who, "grantedTo": who}
    if inherited is not None:
        path = f"/drives/{drive.id}/root:"
        permission["inheritedFrom"] = {"driveId": drive.id, "id": inherited.id, "path": path}
    return permission


def _permission(grant: Any, drive: SandboxDrive, inherited: DriveItem | None, drives: Any) -> JSON:
    """https://learn.microsoft.com/en-us/graph/api/resources/permission"""
    permission: JSON = {"id": grant.id, "roles": list(grant.roles)}
    if grant.kind == "link":
        letter = "v" if grant.link_type == "view" else "e"
        permission["shareId"] = f"s!{grant.id}"
        permission["hasPassword"] = False
        permission["link"] = {
            "scope": grant.scope,
            "type": grant.link_type,
            "webUrl": f"https://{drives.host}/:{letter}:/g/{grant.id}",
            "preventsDownload": False,
        }
    else:
        who = {"id": grant.who_id, "displayName": grant.who_name, "email": grant.who_email}
        permission["grantedToV2"] = {grant.kind: who}
        permission["grantedTo"] = {grant.kind: who}
    if inherited is not None:
        path = drives.path(inherited)
        permission["inheritedFrom"] = {
            "driveId": drive.id,
            "id": inherited.id,
            "path": f"/drives/{drive.id}/root:/{path}",
        }
    return permission


def resync_body(error: GraphError) -> JSON:
    """The documented resync error, with the inner code saying what to do."""
    body = error_body(error.code, error.message)
    body["error"]["innerError"]["code"] = "resyncChangesApplyDifferences"
    return body
