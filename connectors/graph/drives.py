"""The files `Source`: OneDrive and SharePoint document libraries, read through their delta.

Owners are the tenant's users (their OneDrive) and the SharePoint sites, a site
being `Owner(upn="site:<name>")`; a unit is one drive. Every drive request counts
against one tenant-wide SharePoint resource-unit budget (lane "sharepoint"), at the
documented cost: a single item, a download or a delta with a token 1 RU, a listing or
a delta without a token 2 RU, permissions 5 RU.
https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online

Delta reports each item's latest state and never its `parentReference.path` (a
renamed folder's descendants are not reported again), so items are tracked by id and
each path is computed from parent ids: the delta pages seed an id -> (name, parent)
map, and an unknown ancestor costs one GET by id, cached for the enumeration.
https://learn.microsoft.com/en-us/graph/api/driveitem-delta#remarks
Names come only from `name` fields (never from a path string, whose encoding varies).

Drive URLs are written out rather than built with the SDK's request builders: those
address the root as `items/root` and call delta as `delta()`, where Microsoft documents
`/drives/{id}/root/delta`. Answers are read as raw JSON, like every listing here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kiota_abstractions.api_error import APIError

from ...mappings.files import LIBRARY_ROLE, drive_item_meta
from ...migrator.errors import SkipItem
from ...migrator.model import Blob, Container, Item, Owner, Page
from .budget import MailboxBudget
from .client import GraphClient
from .directory import tenant_users
from .download import SHAREPOINT, DriveDownloader
from .errors import Call

RU_ITEM = 1  # one item by id
RU_DELTA_TOKEN = 1  # a delta request carrying a token (every nextLink and deltaLink)
RU_LISTING = 2  # children, drives, sites, versions; a delta without a token
RU_PERMISSIONS = 5  # every permission operation
# Delta pages hold 200 items unless asked for more; the service caps pages at 1,000
# (OneDrive/onedrive-api-docs issues 319 and 1285). Bigger pages, fewer resource units.
DELTA_PAGE = 999
FILES = "Files.Read.All"
SITES = "Sites.Read.All"
SITE_PREFIX = "site:"
ONENOTE_REASON = "OneNote notebook: export it from OneNote; not carried"
REMOTE_REASON = (
    "shortcut or item shared from another drive (remoteItem): not carried here; "
    "it is carried with the drive that holds it"
)
_SAFE = "!,-._~"  # drive ids ("b!..."), site ids ("host,guid,guid") stay readable


@dataclass(frozen=True, slots=True)
class DriveItemVersion:
    """One earlier version of a file, as `versions` lists it."""

    version_id: str
    modified: str | None
    size: int
    modified_by: str


@dataclass(frozen=True, slots=True)
class SharingGrant:
    """Who can reach an item and how, for the sharing report (one principal per record).

    `kind` is "user", "group", "application", "siteUser", "siteGroup" or "link"; for a
    link, `who` is its scope ("anonymous", "organization", "users") and the people a
    link names get their own records with the link's `link_type`.
    """

    path: str
    kind: str
    who: str
    roles: tuple[str, ...]
    link_type: str | None = None
    expires: str | None = None
    inherited: bool = False


@dataclass(slots=True)
class _Node:
    name: str
    parent_id: str | None
    package_type: str | None = None  # set on OneNote notebooks (and other packages)


@dataclass
class _Tree:
    """One drive's id -> (name, parent) map for one enumeration; the root maps to ""."""

    nodes: dict[str, _Node] = field(default_factory=dict)
    roots: set[str] = field(default_factory=set)

    def record(self, entry: Mapping[str, Any]) -> None:
        if "root" in entry:
            self.roots.add(entry["id"])
            return
        package = entry.get("package") or {}
        package_type = (package.get("type") or "package") if "package" in entry else None
        self.nodes[entry["id"]] = _Node(entry.get("name") or "", _parent_id(entry), package_type)


def sharepoint_budget(
    units_per_minute: int = 1200, concurrency: int = 16, window_seconds: float = 60.0
) -> MailboxBudget:
    """The budget of a drive client: one tenant-wide lane of resource units per minute.

    1,200 RU a minute is the smallest tier (tenants up to 1,000 licences); a larger tenant
    may set its own tier from the page cited above. `window_seconds` shrinks the minute
    (with the units) for tests and benchmarks against a scaled sandbox.
    """
    return MailboxBudget(concurrency, units_per_minute, window_seconds)


class GraphDriveSource:
    """Reads OneDrive and SharePoint libraries; implements `migrator.protocols.Source`."""

    workload = "files"

    def __init__(
        self, client: GraphClient, *, temp_dir: Path | None = None, include_sites: bool = True
    ) -> None:
        self.client = client
        self.include_sites = include_sites
        self.downloader = DriveDownloader(client, temp_dir=temp_dir)
        self._graph = client.graph_url

    async def owners(self) -> list[Owner]:
        """Every user (for their OneDrive) and, unless disabled, every SharePoint site."""
        users = await tenant_users(self.client)
        return users + (await self.sites() if self.include_sites else [])

    async def sites(self) -> list[Owner]:
        """SharePoint sites (personal OneDrive sites left out), as `site:<name>` owners.

        `getAllSites` is the documented app-only enumeration; `/sites?search=*` serves
        where it is not available.
        https://learn.microsoft.com/en-us/graph/api/site-getallsites
        """
        call = Call("list SharePoint sites", permission=SITES, item=True)
        try:
            entries = await self._collect(f"{self._graph}/sites/getAllSites", call)
        except SkipItem:
            entries = await self._collect(f"{self._graph}/sites?search=*", call)
        except APIError as exc:
            if exc.response_status_code not in (400, 501):
                raise
            entries = await self._collect(f"{self._graph}/sites?search=*", call)
        owners: dict[str, Owner] = {}
        for site in entries:
            if not _personal(site):
                name = site.get("name") or site.get("displayName") or site["id"]
                display = site.get("displayName") or name
                owners.setdefault(site["id"], Owner(SITE_PREFIX + name, site["id"], display))
        return list(owners.values())

    async def containers(self, owner: Owner) -> list[Container]:
        """The owner's drives: a user's OneDrive, or every document library of a site."""
        if owner.upn.startswith(SITE_PREFIX):
            return await self._libraries(owner)
        url = f"{self._graph}/users/{_segment(owner.upn)}/drive"
        call = Call(f"OneDrive of {owner.upn}", permission=FILES, item=True)
        try:
            drive = await self.client.get_json(url, SHAREPOINT, call, cost=RU_ITEM)
        except SkipItem:
            raise SkipItem(
                f"{owner.upn} has no OneDrive (never provisioned, or no license)"
            ) from None
        return [_container(owner.upn, drive, ("OneDrive",), "personal")]

    async def changes(self, container: Container, cursor: str | None) -> AsyncIterator[Page]:
        """Delta pages of the drive since `cursor` (a stored next or delta link), or all of it.

        Raises `CursorExpired` when Graph answers 410 (resync required).
        """
        tree = _Tree()
        target = cursor or f"{self._drive(container)}/root/delta?$top={DELTA_PAGE}"
        call = Call(f"changes of {_label(container)}", permission=FILES, cursor=cursor is not None)
        while True:
            body = await self.client.get_json(target, SHAREPOINT, call, cost=_delta_cost(target))
            yield await self._page(container, tree, body)
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            target = next_link
            call = Call(call.what, permission=FILES, cursor=True)

    async def latest_cursor(self, container: Container) -> str:
        """A delta link for "from now on" (`token=latest`), without enumerating the drive."""
        url = f"{self._drive(container)}/root/delta?token=latest"
        call = Call(f"latest delta link of {_label(container)}", permission=FILES)
        body = await self.client.get_json(url, SHAREPOINT, call, cost=RU_DELTA_TOKEN)
        return str(body["@odata.deltaLink"])

    async def fetch(self, container: Container, item: Item) -> bytes | Blob:
        """A file's content as a `Blob`; b"" for a folder; `SkipItem` for what is not carried.

        In a document library, a file whose downloads differ from its listed hash the same
        way twice is kept as SharePoint changed it (see `download`); not in a OneDrive.
        """
        return await self._fetch(container, item, live=False)

    async def fetch_live(self, container: Container, item: Item) -> bytes | Blob:
        """`fetch`, but a file of the downloader's `stream_bytes` or more comes as a live
        `Blob` whose content is still arriving (`migrator.feed`)."""
        return await self._fetch(container, item, live=True)

    async def _fetch(self, container: Container, item: Item, live: bool) -> bytes | Blob:
        kind = item.meta.get("kind")
        if kind == "folder":
            return b""
        if kind == "package":
            raise SkipItem(ONENOTE_REASON)
        if kind == "remote":
            raise SkipItem(REMOTE_REASON)
        expected = item.meta.get("quickXorHash")
        if item.meta.get("size") == 0:
            empty = self.downloader.empty()
            if not expected or empty.hashes["quickXorHash"] == expected:
                return empty
            empty.discard()
        url = f"{self._item(container, item.source_id)}/content"
        call = Call(
            f"content of {item.meta.get('path')!r} in {_label(container)}",
            permission=FILES,
            item=True,
        )
        listed = item.meta.get("size")
        library = in_library(container, item)
        if live and isinstance(listed, int) and listed >= self.downloader.stream_bytes:
            return await self.downloader.stream(
                url, call, expected, listed_size=listed, sharepoint_library=library
            )
        return await self.downloader.download(
            url,
            call,
            expected,
            sharepoint_library=library,
            listed_size=listed if isinstance(listed, int) else None,
        )

    async def listing(self, container: Container) -> list[Item]:
        """Every item of the drive now, by a delta without token.

        Cheaper than a children walk: a delta page costs 2 RU first and 1 RU after (its
        nextLink carries a token) for hundreds of items, where a walk costs 2 RU per
        folder, empty ones included; and delta is the enumeration Microsoft guarantees
        complete while the drive changes.
        """
        items: dict[str, Item] = {}
        async for page in self.changes(container, None):
            for item in page.items:
                items[item.source_id] = item
            for gone in page.removed:
                items.pop(gone, None)
        return list(items.values())

    async def versions(self, container: Container, item: Item) -> list[DriveItemVersion]:
        """The file's versions, newest first (2 RU per page: ask only when wanted)."""
        url = f"{self._item(container, item.source_id)}/versions"
        call = Call(f"versions of {item.meta.get('path')!r}", permission=FILES, item=True)
        return [
            _version(entry)
            for entry in await self._collect(url, call)
            if isinstance(entry.get("id"), str)
        ]

    async def fetch_version(self, container: Container, item: Item, version_id: str) -> Blob:
        """One earlier version's content as a `Blob` (Graph publishes no hash for it)."""
        base = self._item(container, item.source_id)
        url = f"{base}/versions/{_segment(version_id)}/content"
        what = f"version {version_id} of {item.meta.get('path')!r}"
        return await self.downloader.download(url, Call(what, permission=FILES, item=True))

    async def permissions(self, container: Container, item: Item) -> list[SharingGrant]:
        """Who has access to the item and how (5 RU per page: ask only when wanted)."""
        url = f"{self._item(container, item.source_id)}/permissions"
        path = str(item.meta.get("path") or "")
        call = Call(f"permissions of {path!r}", permission=FILES, item=True)
        entries = await self._collect(url, call, cost=RU_PERMISSIONS)
        return [grant for entry in entries for grant in sharing_grants(path, entry)]

    async def aclose(self) -> None:
        """Close the client this source was given (its pool and credential)."""
        await self.client.aclose()

    # -- delta pages and paths ------------------------------------------------------

    async def _page(self, container: Container, tree: _Tree, body: Mapping[str, Any]) -> Page:
        """One delta answer as a `Page`: the page seeds the tree first, then paths are read."""
        latest: dict[str, Mapping[str, Any]] = {}
        for entry in body.get("value", []):
            latest.pop(entry["id"], None)
            latest[entry["id"]] = entry  # the last occurrence of an item wins
        removed: list[str] = []
        for entry in latest.values():
            if "deleted" in entry:
                tree.nodes.pop(entry["id"], None)
                removed.append(entry["id"])
            else:
                tree.record(entry)
        items: list[Item] = []
        for entry in latest.values():
            if "deleted" in entry or "root" in entry:
                continue
            located = await self._locate(container, tree, entry["id"])
            if located is None:  # an ancestor is gone: the item went with it
                removed.append(entry["id"])
                continue
            items.append(_item(entry, *located))
        return Page(tuple(items), tuple(removed), body.get("@odata.nextLink"), _delta_link(body))

    async def _locate(
        self, container: Container, tree: _Tree, item_id: str
    ) -> tuple[str, str | None] | None:
        """The item's path and the type of the package it lies in; None when unreachable."""
        names: list[str] = []
        package_type: str | None = None
        current: str | None = item_id
        while current is not None and current not in tree.roots:
            node = tree.nodes.get(current)
            if node is None:
                if not await self._fetch_node(container, tree, current):
                    return None
                continue  # now known: the root, or a node
            names.append(node.name)
            package_type = node.package_type or package_type
            current = node.parent_id
            if len(names) > 4096:
                raise SkipItem(f"{_label(container)}: parent loop above item {item_id}")
        return "/".join(reversed(names)), package_type

    async def _fetch_node(self, container: Container, tree: _Tree, item_id: str) -> bool:
        """Read an ancestor unknown to this enumeration by id (1 RU); False when it is gone."""
        url = f"{self._item(container, item_id)}?$select=id,name,parentReference,root,package"
        call = Call(f"parent {item_id} in {_label(container)}", permission=FILES, item=True)
        try:
            entry = await self.client.get_json(url, SHAREPOINT, call, cost=RU_ITEM)
        except SkipItem:
            return False
        if "root" in entry or _parent_id(entry) is None:
            tree.roots.add(item_id)
        else:
            tree.record({**entry, "id": item_id})
        return True

    # -- plumbing ---------------------------------------------------------------------

    async def _libraries(self, owner: Owner) -> list[Container]:
        url = f"{self._graph}/sites/{_segment(owner.source_id)}/drives"
        call = Call(f"document libraries of {owner.upn}", permission=SITES, item=True)
        site = owner.display_name or owner.upn.removeprefix(SITE_PREFIX)
        return [
            _container(owner.upn, drive, (site, drive.get("name") or drive["id"]), LIBRARY_ROLE)
            for drive in await self._collect(url, call)
        ]

    async def _collect(self, url: str, call: Call, cost: int = RU_LISTING) -> list[dict[str, Any]]:
        """Every entry of a paged collection, each page at `cost` resource units."""
        pages = self.client.pages(url, SHAREPOINT, call, cost=cost)
        return [entry async for page in pages for entry in page.get("value", [])]

    def _drive(self, container: Container) -> str:
        return f"{self._graph}/drives/{_segment(container.source_id)}"

    def _item(self, container: Container, item_id: str) -> str:
        return f"{self._drive(container)}/items/{_segment(item_id)}"


def in_library(container: Container, item: Item) -> bool:
    """Whether the item lies in a SharePoint document library: its own `driveType` says
    (it travels with the item in the state, for a retry), else its container's role."""
    return (item.meta.get("driveType") or container.role) == LIBRARY_ROLE


def _item(entry: Mapping[str, Any], path: str, package_type: str | None) -> Item:
    """A delta entry as an `Item`; the meta is the files mapper's own flattening."""
    meta = drive_item_meta(entry, path, package_type)
    return Item(entry["id"], entry.get("eTag") or entry.get("cTag") or "", meta)


def sharing_grants(path: str, permission: Mapping[str, Any]) -> list[SharingGrant]:
    """One permission resource as records, one per principal (and one for a link itself).

    `grantedTo`/`grantedToIdentities` are deprecated for their V2 forms:
    https://learn.microsoft.com/en-us/graph/api/resources/permission
    """
    roles = tuple(str(role) for role in permission.get("roles") or ())
    expires = permission.get("expirationDateTime")
    inherited = bool(permission.get("inheritedFrom"))
    link = permission.get("link")
    link_type = link.get("type") if isinstance(link, dict) else None
    grants: list[SharingGrant] = []
    if isinstance(link, dict):
        scope = str(link.get("scope") or "users")
        grants.append(SharingGrant(path, "link", scope, roles, link_type, expires, inherited))
    identities = permission.get("grantedToIdentitiesV2") or permission.get("grantedToIdentities")
    single = permission.get("grantedToV2") or permission.get("grantedTo")
    for identity_set in [*(identities or []), *([single] if single else [])]:
        kind, who = _principal(identity_set)
        if kind:
            grants.append(SharingGrant(path, kind, who, roles, link_type, expires, inherited))
    return grants


def _principal(identity_set: Mapping[str, Any]) -> tuple[str, str]:
    """The most specific principal of an identity set and its best name (e-mail first)."""
    for kind in ("user", "siteUser", "group", "siteGroup", "application", "device"):
        identity = identity_set.get(kind)
        if isinstance(identity, dict):
            for key in ("email", "loginName", "userPrincipalName", "displayName", "id"):
                if identity.get(key):
                    return kind, str(identity[key])
            return kind, ""
    return "", ""


def _version(entry: Mapping[str, Any]) -> DriveItemVersion:
    modified_by = ((entry.get("lastModifiedBy") or {}).get("user") or {}).get("displayName")
    return DriveItemVersion(
        entry["id"],
        entry.get("lastModifiedDateTime"),
        int(entry.get("size") or 0),
        str(modified_by or ""),
    )


def _container(upn: str, drive: Mapping[str, Any], path: tuple[str, ...], role: str) -> Container:
    quota = drive.get("quota") or {}
    return Container(
        workload="files",
        owner=upn,
        source_id=drive["id"],
        path=path,
        role=role,
        size_bytes=int(quota.get("used") or 0),
    )


def _personal(site: Mapping[str, Any]) -> bool:
    """A user's OneDrive site: carried as that user's drive, not as a site."""
    return bool(site.get("isPersonalSite")) or "-my.sharepoint." in str(site.get("webUrl") or "")


def _parent_id(entry: Mapping[str, Any]) -> str | None:
    parent = entry.get("parentReference") or {}
    return parent.get("id") or None


def _delta_cost(url: str) -> int:
    """1 RU for a delta carrying a token (nextLink, deltaLink), 2 RU for the first request."""
    lowered = url.lower()
    return RU_DELTA_TOKEN if "token=" in lowered or "token%3d" in lowered else RU_LISTING


def _delta_link(body: Mapping[str, Any]) -> str | None:
    return None if body.get("@odata.nextLink") else body.get("@odata.deltaLink")


def _label(container: Container) -> str:
    return f"{container.owner} {container.display_path}"


def _segment(value: str) -> str:
    return quote(value, safe=_SAFE)
