"""The sandbox's drive wire format: sites, drives, driveItems, versions and permissions as JSON.

https://learn.microsoft.com/en-us/graph/api/resources/driveitem and its sibling resource
pages; `drive.DriveService` routes requests and serves these bodies.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hirondelle.sandbox.drive_data import (
    DriveItem,
    ItemVersion,
    SandboxDrive,
    SandboxDrives,
    Tombstone,
)
from hirondelle.sandbox.odata import JSON, GraphError, error_body, iso

QUOTA_TOTAL = 1 << 40


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
