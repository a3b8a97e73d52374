"""The files mapper: a driveItem (listed metadata plus spooled content) to a target payload.

Pure: no network, no database, no file I/O (the content stays in the source's `Blob`).
Also the pure helpers of the files plan: `drive_findings` (what the target will rename,
refuse or not receive) and `sharepoint_findings` (library files SharePoint may have
changed after upload; who had access to what is `file_sharing`'s); and `sharepoint_note`,
what `verify` says of a file kept as SharePoint changed it.

`Item.meta` is the flattened shape the drive source lists (see `drive_item_meta`):
{"kind": "file" | "folder" | "package" | "remote", "name", "path" (from the drive root,
root excluded, "/" between levels), "parentId", "size", "mtime"
(fileSystemInfo.lastModifiedDateTime), "cTag", "quickXorHash", "mimeType", "packageType",
"driveType" (parentReference.driveType: "documentLibrary" in a SharePoint library),
"shared" (None, or the shared facet's scope: "anonymous", "organization", "users", or
"shared" when the service sends the facet without its deprecated scope)}.
The target applies its own naming rules (`mappings.file_names`) to `attrs["path"]`.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple, TypedDict, cast

from ..migrator.errors import SkipItem
from ..migrator.model import Blob, Item, Payload
from .file_names import NameRules, target_path, twin_path
from .quickxor import same_quickxor
from .sizes import readable_size

KINDS = ("file", "folder", "package", "remote")
ONENOTE_REASON = "OneNote notebook: export it from OneNote; not carried"
REMOTE_REASON = "shortcut or item shared from another drive: not carried (it lives elsewhere)"
SHARED_SCOPES = {
    "anonymous": "with a link anyone can open",
    "organization": "with a link for the whole organisation",
    "users": "with named people",
}
LARGEST_FILES = 10
LIBRARY_ROLE = "documentLibrary"  # a SharePoint document library's Container.role
# The formats SharePoint writes library properties into after upload (Word, Excel and
# PowerPoint, Open XML and binary): https://github.com/rclone/rclone/issues/2599,
# https://github.com/rclone/rclone/issues/3564 (.dot, .ppt, .pot)
OFFICE_EXTENSIONS = frozenset(
    (".doc", ".docx", ".docm", ".dot", ".dotx", ".dotm")
    + (".xls", ".xlsx", ".xlsm", ".xlsb", ".xlt", ".xltx", ".xltm")
    + (".ppt", ".pptx", ".pptm", ".pot", ".potx", ".potm")
)


class Finding(NamedTuple):
    """A plan finding on one drive; `size` is the bytes of the file it is about when its
    size is the point (the largest files), else 0."""

    severity: str
    kind: str
    path: str
    detail: str
    size: int = 0


# -- driveItem JSON to listed metadata ---------------------------------------------------------


def drive_item_kind(drive_item: Mapping[str, Any], package_type: str | None = None) -> str:
    """Which facet the driveItem carries: package first (a OneNote notebook, or anything
    inside one: `package_type` is the enclosing package's), then remote (shortcuts, items
    shared from elsewhere), folder, file."""
    if package_type is not None or "package" in drive_item:
        return "package"
    if "remoteItem" in drive_item:
        return "remote"
    if "folder" in drive_item or "root" in drive_item:
        return "folder"
    return "file"


class DriveItemMeta(TypedDict):
    """A drive item's `Item.meta`: the files mapper's own flattening of a driveItem."""

    kind: str  # "file", "folder", "package" (OneNote) or "remote" (a shortcut)
    name: str
    path: str  # from the drive's root, computed from parent ids
    parentId: str
    size: int  # a folder's counts what is inside it
    mtime: str | None  # fileSystemInfo.lastModifiedDateTime, as the user's device said
    cTag: str | None
    quickXorHash: str | None
    mimeType: str | None
    packageType: str | None
    webUrl: str | None  # how Teams posts link the file
    driveType: str | None
    shared: str | None  # the sharing scope, when the item was shared


def drive_meta(item: Item) -> DriveItemMeta:
    """The drive item metadata of a files item, typed."""
    return cast(DriveItemMeta, item.meta)


def drive_item_meta(
    drive_item: Mapping[str, Any], path: str, package_type: str | None = None
) -> DriveItemMeta:
    """The flattened `Item.meta` of a driveItem whose path the source computed from parent
    ids (`parentReference.path` is absent from delta responses).

    The modification time is `fileSystemInfo.lastModifiedDateTime`, the one the user's
    device reported, not the service's own `lastModifiedDateTime`
    (https://learn.microsoft.com/graph/api/resources/filesysteminfo).
    """
    file_facet = object_of(drive_item.get("file"))
    system_info = object_of(drive_item.get("fileSystemInfo"))
    return {
        "kind": drive_item_kind(drive_item, package_type),
        "name": drive_item.get("name") or "",
        "path": path,
        "parentId": object_of(drive_item.get("parentReference")).get("id") or "",
        "size": int(drive_item.get("size") or 0),
        "mtime": system_info.get("lastModifiedDateTime") or drive_item.get("lastModifiedDateTime"),
        "cTag": drive_item.get("cTag"),
        "quickXorHash": object_of(file_facet.get("hashes")).get("quickXorHash"),
        "mimeType": file_facet.get("mimeType"),
        "packageType": package_type or object_of(drive_item.get("package")).get("type"),
        "webUrl": drive_item.get("webUrl"),  # how Teams posts link the file
        "driveType": object_of(drive_item.get("parentReference")).get("driveType"),
        "shared": _shared(drive_item),
    }


def _shared(drive_item: Mapping[str, Any]) -> str | None:
    """The item's sharing scope; a non-null `shared` facet means the item was shared, and
    its `scope` is deprecated in favour of /permissions, so it may be absent
    (https://learn.microsoft.com/en-us/graph/api/resources/shared)."""
    if not isinstance(drive_item.get("shared"), Mapping):
        return None
    scope = object_of(drive_item.get("shared")).get("scope")
    return scope if isinstance(scope, str) and scope else "shared"


def object_of(value: Any) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else an empty one (a facet Graph left out)."""
    return value if isinstance(value, Mapping) else {}


# -- the mapper --------------------------------------------------------------------------------


def parse_mtime(value: Any) -> datetime:
    """An aware datetime from Graph's ISO 8601 ("2016-03-21T20:01:37Z"); naive means UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    else:
        raise ValueError(f"no modification time ({value!r})")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def package_reason(package_type: Any) -> str:
    """Why a package item is not carried (OneNote notebooks are the common case)."""
    if package_type in (None, "oneNote"):
        return ONENOTE_REASON
    return f"package of type {package_type!r}: not carried"


def _checked_attrs(item: Item) -> dict[str, Any]:
    """The target attributes of an item, or `SkipItem` naming what is malformed."""
    meta = item.meta
    kind = meta.get("kind")
    if kind == "package":
        raise SkipItem(package_reason(meta.get("packageType")))
    if kind == "remote":
        raise SkipItem(REMOTE_REASON)
    path = meta.get("path")
    size = meta.get("size", 0)
    problems = []
    if kind not in ("file", "folder"):
        problems.append(f"kind {kind!r}")
    if not isinstance(path, str) or not path.strip("/"):
        problems.append(f"path {path!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problems.append(f"size {size!r}")
    try:
        mtime = parse_mtime(meta.get("mtime"))
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise SkipItem(f"malformed driveItem metadata: {', '.join(problems)}")
    return {
        "kind": kind,
        "path": path,
        "mtime": mtime,
        "size": size if kind == "file" else 0,
        "quickXorHash": meta.get("quickXorHash") if kind == "file" else None,
    }


def map_drive_item(item: Item, content: Blob | bytes) -> Payload:
    """A driveItem as the target writes it: a folder (no content) or a file (its `Blob`).

    The fingerprint of a file is "sha256:<hex>" of the content the source streamed (of a
    live `Blob`, still arriving: none until the payload is `settled()`); the attributes
    carry the SOURCE path (the target applies its naming rules), the modification time,
    the size and Graph's quickXorHash.
    """
    attrs = _checked_attrs(item)
    if attrs["kind"] == "folder":
        return Payload(item.source_id, b"", "", attrs)
    if isinstance(content, Blob) and content.live is not None:  # still arriving
        attrs["size"] = content.size
        remap = partial(map_drive_item, item)
        return Payload(item.source_id, b"", "", attrs, blob=content, remap=remap)
    if isinstance(content, Blob):
        sha256 = content.hashes.get("sha256")
        if not sha256:
            raise SkipItem("downloaded content carries no SHA-256 digest")
        attrs["size"] = content.size
        attrs["quickXorHash"] = content.hashes.get("quickXorHash") or attrs["quickXorHash"]
        return Payload(item.source_id, b"", f"sha256:{sha256}", attrs, blob=content)
    if isinstance(content, bytes | bytearray):  # small content handed as bytes
        attrs["size"] = len(content)
        digest = hashlib.sha256(content).hexdigest()
        return Payload(item.source_id, bytes(content), f"sha256:{digest}", attrs)
    raise SkipItem(f"file content of unexpected type {type(content).__name__}")


def attrs_only(item: Item) -> Payload:
    """The item's attributes without content, for a rename, a move or a new mtime."""
    return Payload(item.source_id, b"", "", _checked_attrs(item))


def content_changed(old_meta: Mapping[str, Any], item: Item) -> bool:
    """Whether a file's content differs from what was listed before (`old_meta`).

    The cTag changes with the content only, the eTag also with renames and moves
    (https://learn.microsoft.com/graph/api/resources/driveitem, properties `cTag` and
    `eTag`); the quickXorHash and the size are compared too. Folders have no content.
    """
    new = item.meta
    if new.get("kind") != "file":
        return False
    if old_meta.get("size") != new.get("size"):
        return True
    compared = False
    for key in ("cTag", "quickXorHash"):
        before, after = old_meta.get(key), new.get(key)
        if before and after:
            compared = True
            if before != after:
                return True
    return not compared  # nothing to compare: assume it changed


def sharepoint_note(item: Item, written: Mapping[str, Any], checksum: str | None) -> str | None:
    """What `verify` notes about a file written as SharePoint serves it, not as Graph lists
    it: the QuickXorHash recorded when it was written differs from the listed one, which
    has not changed since. SharePoint rewrote the file after upload and the download was
    kept (two identical, complete copies; see `connectors.graph.download`). None otherwise.
    """
    listed = item.meta
    published = listed.get("quickXorHash")
    kind, _, received = (checksum or "").partition(":")
    if listed.get("kind") != "file" or kind != "quickXorHash" or not published or not received:
        return None
    if written.get("quickXorHash") != published or same_quickxor(published, received):
        return None  # changed at the source since (a sync carries it), or as listed
    return (
        f"{listed.get('path')}: modified by SharePoint after upload (listed "
        f"{listed.get('size')} bytes, quickXorHash {published}; written as served, "
        f"quickXorHash {received})"
    )


# -- plan findings -----------------------------------------------------------------------------


def drive_findings(
    items: Iterable[Item],
    rules: NameRules,
    large_file_bytes: int | None,
    largest: int = LARGEST_FILES,
) -> list[Finding]:
    """What an integrator shows before the move, for one drive, as
    (severity, kind, path, detail) rows: names renamed or refused by the target, paths
    too long, collisions, OneNote notebooks, shortcuts and items shared from elsewhere,
    items shared from this drive (their sharing is not carried), files over the target's
    upload limit (`large_file_bytes`), and the largest files."""
    listed = [i for i in items if isinstance(i.meta.get("path"), str)]
    packages = sorted(i.meta["path"].strip("/") for i in listed if i.meta.get("kind") == "package")
    found: list[Finding] = []
    carried: list[Item] = []
    for item in listed:
        path = item.meta["path"].strip("/")
        owner = _inside(path, packages)
        if owner is not None and owner != path:
            continue  # reported with its notebook
        kind = item.meta.get("kind")
        if kind == "package":
            inside = sum(1 for i in listed if _inside(i.meta["path"].strip("/"), [path]))
            found.append(Finding("warning", "onenote", path, _package_detail(item, inside - 1)))
        elif kind == "remote":
            found.append(Finding("warning", "remote-item", path, REMOTE_REASON))
        else:
            carried.append(item)
            found.extend(_name_findings(path, rules))
        if item.meta.get("shared") and kind != "remote":
            found.append(Finding("warning", "shared", path, _shared_detail(item.meta["shared"])))
    found.extend(_collisions(carried, rules))
    found.extend(_size_findings(carried, large_file_bytes, largest))
    return found


def sharepoint_findings(items: Iterable[Item]) -> list[Finding]:
    """For one SharePoint library: how many of its files are Office documents, which
    SharePoint may have changed after upload, so that their downloads do not match the
    hash Graph lists. One row for the library (path ""), none when it holds none."""
    office = [
        item
        for item in items
        if item.meta.get("kind") == "file"
        and _extension(str(item.meta.get("name") or item.meta.get("path") or ""))
        in OFFICE_EXTENSIONS
    ]
    if not office:
        return []
    detail = (
        f"{len(office)} Office file(s): SharePoint may have changed them after upload, so "
        "their downloads may not match the hash Graph lists; such a file is downloaded "
        "twice and kept as served when both copies are the same (the audit log and verify "
        "say so)"
    )
    return [Finding("info", "sharepoint-modified", "", detail)]


def _extension(name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f".{suffix.lower()}" if dot and stem else ""


def _inside(path: str, roots: Sequence[str]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root + "/"):
            return root
    return None


def _shared_detail(scope: str) -> str:
    how = SHARED_SCOPES.get(scope, "")
    return (
        f"shared{' ' + how if how else ''}: who may open it is not carried; share it again "
        "on the target"
    )


def _package_detail(item: Item, inside: int) -> str:
    detail = package_reason(item.meta.get("packageType"))
    return f"{detail} ({inside} item(s) inside)" if inside > 0 else detail


def _name_findings(path: str, rules: NameRules) -> list[Finding]:
    mapped = target_path(path, rules)
    if mapped.refused is not None:
        return [Finding("blocker", "path-refused", path, f"{mapped.refused}; not carried")]
    for source, target in mapped.renamed:
        if source == path:  # only the item's own name: its folders report theirs
            detail = f"renamed to {target.rsplit('/', 1)[-1]!r} on the target ({rules.label})"
            return [Finding("warning", "renamed", path, detail)]
    return []


def _collisions(items: Sequence[Item], rules: NameRules) -> list[Finding]:
    """Distinct source paths that one target name would hold (NFC or case twins). The run
    keeps them all: whichever is written second takes its twin name (`twin_path`), so the
    finding names the final path each one may get."""
    by_target: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        mapped = target_path(item.meta["path"], rules).path
        key = unicodedata.normalize("NFC", mapped)
        by_target[key.casefold() if rules.case_insensitive else key].append(item)
    found: list[Finding] = []
    for twins in by_target.values():
        if len(twins) > 1:
            twins = sorted(twins, key=lambda i: str(i.meta["path"]))
            names = ", ".join(f"{i.meta['path']!r} as {_twin(i, rules)!r}" for i in twins)
            others = ", ".join(repr(i.meta["path"]) for i in twins[1:])
            detail = (
                f"same target name as {others}: all are kept, each one written after the "
                f"first under its twin name ({names})"
            )
            found.append(Finding("warning", "collision", twins[0].meta["path"], detail))
    return found


def _twin(item: Item, rules: NameRules) -> str:
    return twin_path(target_path(item.meta["path"], rules).path, item.source_id)


def _size_findings(items: Sequence[Item], limit: int | None, largest: int) -> list[Finding]:
    files = [
        (i.meta.get("size") or 0, i.meta["path"]) for i in items if i.meta.get("kind") == "file"
    ]
    found: list[Finding] = []
    if limit is not None:
        for size, path in sorted(files, reverse=True):
            if size <= limit:
                break
            detail = (
                f"{readable_size(size)}, over the target's limit of {readable_size(limit)}; "
                "not carried"
            )
            found.append(Finding("blocker", "oversize", path, detail))
    for size, path in sorted(files, reverse=True)[:largest]:
        found.append(
            Finding("info", "largest", path, f"{readable_size(size)} ({size:,} bytes)", size)
        )
    return found
