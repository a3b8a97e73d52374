"""The sandbox's drive resources: OneDrive, SharePoint sites and libraries, delta, downloads.

Routes and paging over `SandboxDrives`; the driveItem wire format
(https://learn.microsoft.com/en-us/graph/api/resources/driveitem) is `drive_wire`'s.
Every request is charged its SharePoint resource units through the server's pipeline
(`gate`). `/content` answers 302 to a short-lived, pre-authenticated `/_download/<ticket>`
URL served by `drive_downloads` outside the bearer-token pipeline, as SharePoint's
download host is. A file SharePoint enriched after upload (`drive_data.Enrichment`)
serves its rewritten bytes, while its listed size and quickXorHash stay those of the upload.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hirondelle.sandbox.drive_data import (
    DriveItem,
    ItemVersion,
    SandboxDrive,
    SandboxDrives,
    Tombstone,
)
from hirondelle.sandbox.drive_downloads import DriveDownloads
from hirondelle.sandbox.drive_wire import (
    drive_json,
    item_json,
    permissions_of,
    resync_body,
    site_json,
    tombstone_json,
    version_json,
)
from hirondelle.sandbox.faults import Fate
from hirondelle.sandbox.mail import GraphRequest, GraphResponse
from hirondelle.sandbox.odata import (
    JSON,
    GraphError,
    decode_token,
    encode_token,
    preferences,
    select_keys,
)
from hirondelle.sandbox.resource_units import ResourceUnitThrottle
from hirondelle.sandbox.service import Gate

if TYPE_CHECKING:
    from hirondelle.sandbox.tenant import Tenant

PAGE_DEFAULT = 200
PAGE_MAX = 999
_DELTA = re.compile(r"^(microsoft\.graph\.)?delta(\(\)|\(token='(?P<token>[^']*)'\))?$", re.I)
# https://learn.microsoft.com/en-us/onedrive/developer/rest-api/concepts/errors
RESYNC_MESSAGE = (
    "Resync required. Replace any local items with the server's version (including deletes) "
    "if you're sure that the service was up to date with your local changes when you last "
    "sync'd. Upload any local changes that the server doesn't know about."
)


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
        faults = faults if faults is not None else Counter()
        self.downloads = DriveDownloads(tenant, fate, faults, clock)

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
            entity["@microsoft.graph.downloadUrl"] = self.downloads.ticket_url(request, item, None)
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
        location = self.downloads.ticket_url(request, item, version)
        return GraphResponse(status=302, headers={"Location": location})


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
