"""Files SharePoint changed after upload: downloads serve other bytes than Graph lists.

SharePoint document libraries (not OneDrive) rewrite some uploaded files, mostly Office
documents, while `size` and `file.hashes.quickXorHash` stay those of the upload; every
download serves the rewritten file, announced by its own Content-Length:
https://github.com/OneDrive/onedrive-api-docs/issues/935 ("When uploading to a standard
OneDrive Business Account, this behavior does not occur"),
https://github.com/rclone/rclone/issues/2036 (download sizes differ from the listed ones),
https://github.com/rclone/rclone/issues/2599 (some Office files come back a few bytes longer).
"""

from __future__ import annotations

import httpx
from sandbox_drive_helpers import client

from hirondelle.mappings.quickxor import quickxor_b64
from hirondelle.sandbox.drive_data import DriveItem, Enrichment, SandboxDrives
from hirondelle.sandbox.server import SandboxServer

OFFICE = (".docx", ".xlsx", ".pptx")


def enriched(drives: SandboxDrives) -> list[DriveItem]:
    return [i for d in drives.drives for i in drives.items(d.id) if i.enrichment is not None]


def download(graph: httpx.Client, item: DriveItem) -> httpx.Response:
    """GET through a fresh /content redirect (a new download URL each time)."""
    redirect = graph.get(f"drives/{item.drive_id}/items/{item.id}/content")
    assert redirect.status_code == 302, redirect.text
    return httpx.get(redirect.headers["Location"])


def test_seeded_office_files_of_a_library_serve_the_same_other_bytes_each_time(
    sb: SandboxServer,
) -> None:
    drives = sb.tenant.drives
    changed = enriched(drives)
    assert len(changed) >= 2
    assert {drives.drive(i.drive_id).drive_type for i in changed} == {"documentLibrary"}
    assert all(i.name.endswith(OFFICE) for i in changed)
    assert {i.enrichment.grows for i in changed if i.enrichment} == {True, False}
    with client(sb) as graph:
        for item in changed:
            listed = graph.get(f"drives/{item.drive_id}/items/{item.id}").json()
            first, second = download(graph, item), download(graph, item)
            body = first.content
            assert second.content == body  # the same rewritten file on every download
            assert int(first.headers["Content-Length"]) == len(body)
            assert body.startswith(b"PK\x03\x04")  # still the Office document (a zip)
            assert listed["size"] == item.size  # the listing keeps the upload's size and hash
            assert listed["file"]["hashes"]["quickXorHash"] == drives.quick_xor(item)
            assert quickxor_b64(body) != listed["file"]["hashes"]["quickXorHash"]
            if item.enrichment and item.enrichment.grows:
                assert len(body) > listed["size"]
            else:
                assert len(body) == listed["size"]


def test_a_range_of_a_changed_file_is_a_range_of_the_served_bytes(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    item = next(i for i in enriched(drives) if i.enrichment and i.enrichment.grows)
    with client(sb) as graph:
        whole = download(graph, item).content
        url = graph.get(f"drives/{item.drive_id}/items/{item.id}/content").headers["Location"]
    start = item.size - 10  # across the end of the uploaded bytes
    tail = httpx.get(url, headers={"Range": f"bytes={start}-"})
    assert tail.status_code == 206
    assert tail.headers["Content-Range"] == f"bytes {start}-{len(whole) - 1}/{len(whole)}"
    assert tail.content == whole[start:]


def test_a_file_changed_at_every_download_differs_between_download_urls(
    mutable: SandboxServer,
) -> None:
    drives = mutable.tenant.drives
    library = next(d for d in drives.drives if d.drive_type == "documentLibrary")
    plain = next(i for i in drives.items(library.id) if i.kind == "file" and i.size > 100)
    with client(mutable) as graph:
        assert quickxor_b64(download(graph, plain).content) == drives.quick_xor(plain)
        item = drives.enrich(library.id, plain.id, Enrichment(per_download=True))
        url = graph.get(f"drives/{item.drive_id}/items/{item.id}/content").headers["Location"]
        first, second = httpx.get(url).content, download(graph, item).content
    assert first != second
    rest = httpx.get(url, headers={"Range": f"bytes={item.size}-"}).content
    assert rest == first[item.size :]  # one URL keeps serving its own bytes
    drives.enrich(library.id, plain.id, None)
    assert b"".join(drives.served_chunks(drives.item(library.id, plain.id))) == b"".join(
        drives.chunks(plain)
    )


def test_no_onedrive_file_is_changed(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    for drive in drives.drives:
        if drive.drive_type == "business":
            assert all(i.enrichment is None for i in drives.items(drive.id))
