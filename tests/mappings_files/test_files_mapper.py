"""The files mapper on driveItem shapes from Microsoft's documentation.

The JSON bodies below follow the examples of the Microsoft Graph v1.0 reference
(https://learn.microsoft.com/graph/api/driveitem-get, .../driveitem-delta,
.../resources/driveitem, .../resources/package, .../resources/remoteitem and
.../resources/hashes), trimmed to the properties the mapper reads.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hirondelle.mappings.files import (
    ONENOTE_REASON,
    attrs_only,
    content_changed,
    drive_item_kind,
    drive_item_meta,
    map_drive_item,
    parse_mtime,
    sharepoint_note,
)
from hirondelle.mappings.quickxor import quickxor_b64
from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Blob, Item

CONTENT = b"Rapport annuel 2024\n" * 100

# driveitem-get, "Get item" response, with the `file` facet and `fileSystemInfo` of the
# driveItem resource page; quickXorHash as in the hashes resource.
DOCX: dict[str, Any] = {
    "createdDateTime": "2016-03-21T20:01:37Z",
    "cTag": '"c:{86EB4C8E-D20D-46B9-AD41-23B8868DDA8A},0"',
    "eTag": '"{86EB4C8E-D20D-46B9-AD41-23B8868DDA8A},1"',
    "id": "01NKDM7HMOJTVYMDOSXFDK2QJDXCDI3WUK",
    "lastModifiedDateTime": "2016-03-21T20:01:37Z",
    "name": "Rapport.docx",
    "parentReference": {
        "driveId": "b!-RIj2DuyvEyV1T4NlOaMHk8XkS_I8MdFlUCq1BlcjgmhRfAj3-Z8RY2VpuvV_tpd",
        "driveType": "business",
        "id": "01NKDM7HOI3SJ4ILNFSFEJ3NT3BBNSEAF4",
    },
    "size": len(CONTENT),
    "file": {
        "mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "hashes": {"quickXorHash": quickxor_b64(CONTENT)},
    },
    "fileSystemInfo": {
        "createdDateTime": "2015-11-02T09:15:00Z",
        "lastModifiedDateTime": "2015-11-03T17:42:10Z",
    },
}

# driveitem-get on the drive root: a folder facet with childCount.
FOLDER: dict[str, Any] = {
    "cTag": '"c:{86EB4C8E-D20D-46B9-AD41-23B8868DDA8A},0"',
    "eTag": '"{86EB4C8E-D20D-46B9-AD41-23B8868DDA8A},1"',
    "folder": {"childCount": 120},
    "id": "01NKDM7HOI3SJ4ILNFSFEJ3NT3BBNSEAF4",
    "lastModifiedDateTime": "2016-03-21T20:01:37Z",
    "name": "Docs",
    "size": 157286400,
    "fileSystemInfo": {"lastModifiedDateTime": "2016-03-21T20:01:37Z"},
}

# A OneNote notebook: the package facet of the driveItem resource ({"type": "oneNote"}).
NOTEBOOK: dict[str, Any] = {
    "id": "01NKDM7HNOTEBOOK",
    "eTag": '"{0AB8C1F3-0000-0000-0000-000000000000},2"',
    "name": "Carnet de l'équipe",
    "package": {"type": "oneNote"},
    "size": 24576,
    "fileSystemInfo": {"lastModifiedDateTime": "2023-01-12T08:00:00Z"},
}

# An "Add shortcut to My files" item: a remoteItem pointing into another drive.
SHORTCUT: dict[str, Any] = {
    "id": "01NKDM7HSHORTCUT",
    "eTag": '"{1F7A2B3C-0000-0000-0000-000000000000},1"',
    "name": "Partagé par Bob",
    "remoteItem": {
        "id": "01BYE5RZ5MYLM2SMX75ZBIPQZIHT6OAYPB",
        "parentReference": {"driveId": "b!remote", "driveType": "business"},
        "folder": {"childCount": 3},
    },
    "fileSystemInfo": {"lastModifiedDateTime": "2023-02-01T10:00:00Z"},
}


def item_of(drive_item: dict[str, Any], path: str) -> Item:
    return Item(drive_item["id"], drive_item["eTag"], drive_item_meta(drive_item, path))


def blob_of(tmp_path: Path, content: bytes) -> Blob:
    path = tmp_path / "spooled"
    path.write_bytes(content)
    hashes = {"sha256": hashlib.sha256(content).hexdigest(), "quickXorHash": quickxor_b64(content)}
    return Blob(path, len(content), hashes)


def test_meta_of_a_documented_file() -> None:
    meta = drive_item_meta(DOCX, "Docs/2024/Rapport.docx")
    assert meta == {
        "kind": "file",
        "name": "Rapport.docx",
        "path": "Docs/2024/Rapport.docx",
        "parentId": "01NKDM7HOI3SJ4ILNFSFEJ3NT3BBNSEAF4",
        "size": len(CONTENT),
        "mtime": "2015-11-03T17:42:10Z",  # fileSystemInfo, not the service's own time
        "cTag": DOCX["cTag"],
        "quickXorHash": quickxor_b64(CONTENT),
        "mimeType": DOCX["file"]["mimeType"],
        "packageType": None,
        "webUrl": None,
        "driveType": "business",  # parentReference.driveType
        "shared": None,  # no shared facet
    }


def test_kinds_of_documented_items() -> None:
    assert drive_item_kind(FOLDER) == "folder"
    assert drive_item_kind({"id": "r", "root": {}, "name": "root"}) == "folder"
    assert drive_item_kind(NOTEBOOK) == "package"
    assert drive_item_kind({**NOTEBOOK, "folder": {"childCount": 2}}) == "package"
    assert drive_item_kind(SHORTCUT) == "remote"
    # driveitem-delta: a minimal page entry still says what it is.
    assert drive_item_kind({"id": "123010204abac", "name": "file.txt", "file": {}}) == "file"


def test_file_maps_to_its_blob_with_sha256_fingerprint(tmp_path: Path) -> None:
    blob = blob_of(tmp_path, CONTENT)
    payload = map_drive_item(item_of(DOCX, "Docs/2024/Rapport.docx"), blob)
    assert payload.source_id == DOCX["id"]
    assert payload.content == b"" and payload.blob is blob
    assert payload.fingerprint == "sha256:" + hashlib.sha256(CONTENT).hexdigest()
    assert payload.size == len(CONTENT)
    assert payload.attrs == {
        "kind": "file",
        "path": "Docs/2024/Rapport.docx",
        "mtime": datetime(2015, 11, 3, 17, 42, 10, tzinfo=UTC),
        "size": len(CONTENT),
        "quickXorHash": quickxor_b64(CONTENT),
    }


def test_folder_maps_to_no_content() -> None:
    payload = map_drive_item(item_of(FOLDER, "Docs"), b"")
    assert payload.content == b"" and payload.blob is None and payload.fingerprint == ""
    assert payload.attrs["kind"] == "folder" and payload.attrs["size"] == 0
    assert payload.attrs["mtime"] == datetime(2016, 3, 21, 20, 1, 37, tzinfo=UTC)


def test_onenote_and_shortcuts_are_skipped_with_a_reason() -> None:
    with pytest.raises(SkipItem, match="OneNote notebook: export it from OneNote"):
        map_drive_item(item_of(NOTEBOOK, "Carnet de l'équipe"), b"")
    assert "not carried" in ONENOTE_REASON
    with pytest.raises(SkipItem, match="shortcut"):
        map_drive_item(item_of(SHORTCUT, "Partagé par Bob"), b"")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"path": ""}, "path"),
        ({"path": None}, "path"),
        ({"size": -1}, "size"),
        ({"size": "12"}, "size"),
        ({"mtime": None}, "modification time"),
        ({"mtime": "yesterday"}, "Invalid isoformat"),
        ({"kind": "album"}, "kind"),
    ],
)
def test_malformed_meta_is_skipped_with_a_reason(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    item = item_of(DOCX, "Docs/Rapport.docx")
    broken = Item(item.source_id, item.version, {**item.meta, **change})
    with pytest.raises(SkipItem, match="malformed driveItem metadata") as caught:
        map_drive_item(broken, blob_of(tmp_path, CONTENT))
    assert problem in str(caught.value)


def test_blob_without_sha256_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "spooled"
    path.write_bytes(CONTENT)
    with pytest.raises(SkipItem, match="SHA-256"):
        map_drive_item(item_of(DOCX, "Docs/Rapport.docx"), Blob(path, len(CONTENT), {}))


def test_attrs_only_carries_no_content() -> None:
    payload = attrs_only(item_of(DOCX, "Archives/Rapport.docx"))
    assert payload.content == b"" and payload.blob is None and payload.fingerprint == ""
    assert payload.attrs["path"] == "Archives/Rapport.docx"
    assert payload.attrs["size"] == len(CONTENT)


def test_content_changed_follows_ctag_hash_and_size() -> None:
    before = drive_item_meta(DOCX, "Docs/Rapport.docx")
    renamed = item_of({**DOCX, "name": "Bilan.docx", "eTag": '"{X},2"'}, "Docs/Bilan.docx")
    assert not content_changed(before, renamed)  # eTag changed, cTag did not
    edited = item_of({**DOCX, "cTag": '"c:{86EB},1"'}, "Docs/Rapport.docx")
    assert content_changed(before, edited)
    longer = item_of({**DOCX, "size": DOCX["size"] + 1}, "Docs/Rapport.docx")
    assert content_changed(before, longer)
    rehashed = dict(before, cTag=None, quickXorHash="AAAA")
    assert content_changed(rehashed, item_of({**DOCX, "cTag": None}, "Docs/Rapport.docx"))
    assert not content_changed(before, item_of(FOLDER, "Docs"))


def test_verify_notes_a_file_written_as_sharepoint_served_it() -> None:
    """Written from bytes that differ from the listed hash, the listing unchanged since:
    SharePoint changed the file after upload (OneDrive/onedrive-api-docs#935)."""
    listed = item_of(DOCX, "Docs/Rapport.docx")
    served = quickxor_b64(CONTENT + b"<property/>")
    note = sharepoint_note(listed, listed.meta, f"quickXorHash:{served}")
    assert note is not None and note.startswith("Docs/Rapport.docx: modified by SharePoint")
    assert DOCX["file"]["hashes"]["quickXorHash"] in note and served in note
    as_listed = f"quickXorHash:{quickxor_b64(CONTENT)}"
    assert sharepoint_note(listed, listed.meta, as_listed) is None
    assert sharepoint_note(listed, listed.meta, "sha256:00") is None  # an older state's row
    before = dict(listed.meta, quickXorHash=served)  # changed at the source since: sync's job
    assert sharepoint_note(listed, before, f"quickXorHash:{served}") is None
    assert sharepoint_note(item_of(FOLDER, "Docs"), {}, None) is None


def test_parse_mtime_accepts_graph_forms() -> None:
    assert parse_mtime("2016-03-21T20:01:37Z") == datetime(2016, 3, 21, 20, 1, 37, tzinfo=UTC)
    assert parse_mtime("2016-03-21T20:01:37.123+01:00").utcoffset() is not None
    assert parse_mtime("2016-03-21T20:01:37").tzinfo is UTC
