"""The nextcloud profile against Nextcloud's documented protocol (no server runs here):
chunked upload v2, resume, 423 on assembly, capabilities, checksums.

Protocol: https://docs.nextcloud.com/server/latest/developer_manual/client_apis/WebDAV/
chunking.html and .../WebDAV/basic.html (request headers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import respx

from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
from hirondelle.connectors.webdav_chunked import MIN_CHUNK_BYTES, transfer_id
from hirondelle.connectors.webdav_session import WebDavSession
from hirondelle.migrator.errors import OwnerFailed, Retriable
from hirondelle.migrator.model import Container, Owner, TargetRef
from hirondelle.tests.webdav.payloads import MTIME, file

pytestmark = pytest.mark.usefixtures("respx_pool")  # the requests go where respx answers
SERVER = "https://cloud.example"
LOGIN = "alice"
FILES = f"{SERVER}/remote.php/dav/files/{LOGIN}"
UPLOADS = f"{SERVER}/remote.php/dav/uploads/{LOGIN}"
CAPABILITIES = {
    "ocs": {
        "meta": {"status": "ok"},
        "data": {
            "capabilities": {
                "files": {
                    "forbidden_filename_characters": ["\\\\", "/", ":"],
                    "forbidden_filenames": [".htaccess"],
                    "forbidden_filename_extensions": [".part", ".filepart"],
                }
            }
        },
    }
}
MULTISTATUS = (
    '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
)


def _response(href: str, size: int | None = None, checksums: str = "") -> str:
    kind = (
        "<d:resourcetype/>"
        if size is not None
        else "<d:resourcetype><d:collection/></d:resourcetype>"
    )
    length = f"<d:getcontentlength>{size}</d:getcontentlength>" if size is not None else ""
    sums = (
        f"<oc:checksums><oc:checksum>{checksums}</oc:checksum></oc:checksums>" if checksums else ""
    )
    return (
        f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>{kind}{length}{sums}"
        "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
    )


def multistatus(*responses: str) -> httpx.Response:
    return httpx.Response(207, text=MULTISTATUS + "".join(responses) + "</d:multistatus>")


@pytest.fixture
def nextcloud(tmp_path: Path) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=SERVER, assert_all_called=False) as router:
        router.get("/ocs/v1.php/cloud/capabilities").respond(json=CAPABILITIES)
        router.route(method="MKCOL").respond(201)
        router.route(method="PROPFIND", url__startswith=FILES, name="files").respond(404)
        yield router


def session_for(tmp_path: Path, **options: Any) -> WebDavSession:
    passwords = tmp_path / "passwords"
    passwords.write_text(f"{LOGIN}:secret\n", encoding="utf-8")
    passwords.chmod(0o600)
    settings = WebDavSettings(
        url=f"{SERVER}/remote.php/dav/files/{{login}}/",
        profile="nextcloud",
        password_file=passwords,
        chunk_bytes=MIN_CHUNK_BYTES,
        **options,
    )
    return WebDavTarget(settings).open(Owner(upn=LOGIN, source_id="alice-id"))


def big_content() -> bytes:
    """21 MiB: four chunks of 5 MiB and a last one of 1 MiB."""
    return bytes(range(256)) * (21 * 4096)


def test_new_upload_sends_numbered_chunks_then_assembles(
    nextcloud: respx.MockRouter, tmp_path: Path
) -> None:
    content = big_content()
    payload = file(tmp_path, "Vidéos/film.mp4", content, "item-big")
    folder = f"{UPLOADS}/{transfer_id(payload, MIN_CHUNK_BYTES)}"
    nextcloud.route(method="PROPFIND", url=folder + "/").respond(404)
    chunks = nextcloud.route(method="PUT", url__startswith=folder + "/").respond(201)
    assemble = nextcloud.route(method="MOVE", url=folder + "/.file").respond(201)
    session = session_for(tmp_path)
    drive = session.ensure_container(Container("files", LOGIN, "d", ("OneDrive",)))
    ref = session.put(drive, payload)
    assert ref == TargetRef("Microsoft 365/OneDrive", "Vidéos/film.mp4")
    destination = f"{FILES}/Microsoft%20365/OneDrive/Vid%C3%A9os/film.mp4"
    mkcol = [c.request for c in nextcloud.calls if c.request.method == "MKCOL"]
    assert mkcol[-1].url == folder and mkcol[-1].headers["Destination"] == destination
    sent = [c.request for c in chunks.calls]
    assert [r.url.path.rsplit("/", 1)[1] for r in sent] == [
        "00001",
        "00002",
        "00003",
        "00004",
        "00005",
    ]
    assert b"".join(r.content for r in sent) == content
    assert [len(r.content) for r in sent] == [MIN_CHUNK_BYTES] * 4 + [1024 * 1024]
    for request in sent:
        assert request.headers["Destination"] == destination
        assert request.headers["OC-Total-Length"] == str(len(content))
    final = assemble.calls.last.request
    assert final.headers["Destination"] == destination
    assert final.headers["OC-Total-Length"] == str(len(content))
    assert final.headers["X-OC-Mtime"] == str(int(MTIME.timestamp()))
    assert final.headers["OC-Checksum"] == "SHA256:" + hashlib.sha256(content).hexdigest()


def test_resume_sends_only_the_missing_chunks(nextcloud: respx.MockRouter, tmp_path: Path) -> None:
    content = big_content()
    payload = file(tmp_path, "film.mp4", content, "item-big")
    upload_id = transfer_id(payload, MIN_CHUNK_BYTES)
    folder = f"{UPLOADS}/{upload_id}"
    href = f"/remote.php/dav/uploads/{LOGIN}/{upload_id}"
    present = [_response(f"{href}/")]
    present += [_response(f"{href}/0000{n}", MIN_CHUNK_BYTES) for n in (1, 2, 3)]
    nextcloud.route(method="PROPFIND", url=folder + "/").mock(return_value=multistatus(*present))
    chunks = nextcloud.route(method="PUT", url__startswith=folder + "/").respond(201)
    nextcloud.route(method="MOVE", url=folder + "/.file").respond(201)
    session = session_for(tmp_path)
    drive = session.ensure_container(Container("files", LOGIN, "d", ("OneDrive",)))
    session.put(drive, payload)
    sent = [c.request for c in chunks.calls]
    assert [r.url.path.rsplit("/", 1)[1] for r in sent] == ["00004", "00005"]
    assert b"".join(r.content for r in sent) == content[3 * MIN_CHUNK_BYTES :]
    assert not [c for c in nextcloud.calls if c.request.url == folder]  # no new MKCOL


def test_locked_assembly_is_retried_then_reported_retriable(
    nextcloud: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("hirondelle.connectors.webdav_chunked.time.sleep", pauses.append)
    payload = file(tmp_path, "film.mp4", big_content(), "item-big")
    folder = f"{UPLOADS}/{transfer_id(payload, MIN_CHUNK_BYTES)}"
    nextcloud.route(method="PROPFIND", url=folder + "/").respond(404)
    nextcloud.route(method="PUT", url__startswith=folder + "/").respond(201)
    locked = httpx.Response(423, text="locked")
    assemble = nextcloud.route(method="MOVE", url=folder + "/.file")
    assemble.side_effect = [locked, locked, httpx.Response(201)]
    session = session_for(tmp_path)
    drive = session.ensure_container(Container("files", LOGIN, "d", ("OneDrive",)))
    session.put(drive, payload)
    assert assemble.call_count == 3 and pauses == [1.0, 2.0]
    assemble.side_effect = None
    assemble.return_value = locked
    with pytest.raises(Retriable, match="423"):
        session.put(drive, payload)


def test_small_file_is_one_put_with_mtime_and_checksum(
    nextcloud: respx.MockRouter, tmp_path: Path
) -> None:
    put = nextcloud.route(method="PUT").respond(201, headers={"X-OC-MTime": "accepted"})
    session = session_for(tmp_path)
    drive = session.ensure_container(Container("files", LOGIN, "d", ("OneDrive",)))
    payload = file(tmp_path, "Notes/a.txt", b"hello")
    session.put(drive, payload)
    request = put.calls.last.request
    assert request.url == f"{FILES}/Microsoft%20365/OneDrive/Notes/a.txt"
    assert request.content == b"hello"
    assert request.headers["X-OC-Mtime"] == str(int(MTIME.timestamp()))
    assert request.headers["OC-Checksum"] == payload.fingerprint.replace("sha256", "SHA256")
    assert not [c for c in nextcloud.calls if c.request.method in ("MOVE", "PROPPATCH")]


def test_names_follow_the_published_capabilities(
    nextcloud: respx.MockRouter, tmp_path: Path
) -> None:
    put = nextcloud.route(method="PUT").respond(201)
    session = session_for(tmp_path)
    drive = session.ensure_container(Container("files", LOGIN, "d", ("OneDrive",)))
    ref = session.put(drive, file(tmp_path, "Réunion 10:30.txt", b"x"))
    assert ":" not in ref.ref and ref.ref.startswith("Réunion 10_30")
    assert put.calls.last.request.url.raw_path.decode().endswith(quote(ref.ref))


def test_capabilities_unreadable_fall_back_to_the_preset(tmp_path: Path) -> None:
    with respx.mock(base_url=SERVER, assert_all_called=False) as router:
        router.get("/ocs/v1.php/cloud/capabilities").respond(503)
        router.route(method="PROPFIND").respond(404)  # the space, looked at by open()
        session = session_for(tmp_path)
        assert session.rules.label == "nextcloud" and ":" not in session.rules.forbidden_chars


def test_listing_fingerprints_come_from_oc_checksums(
    nextcloud: respx.MockRouter, tmp_path: Path
) -> None:
    root = f"/remote.php/dav/files/{LOGIN}/Microsoft%20365/OneDrive"
    digest = hashlib.sha256(b"hello").hexdigest()
    listed = multistatus(
        _response(f"{root}/"),
        _response(f"{root}/Docs/"),
        _response(f"{root}/Docs/a.txt", 5, f"SHA1:abc SHA256:{digest.upper()}"),
        _response(f"{SERVER}{root}/b.bin", 7, "MD5:0123"),
    )
    nextcloud["files"].mock(return_value=listed)
    session = session_for(tmp_path)
    entries = session.listing("Microsoft 365/OneDrive")
    assert [(e.ref.ref, e.fingerprint, e.size) for e in entries] == [
        ("Docs", "", 0),
        ("Docs/a.txt", f"sha256:{digest}", 5),
        ("b.bin", "", 7),
    ]


def test_quota_full_fails_the_owner_naming_the_user(
    nextcloud: respx.MockRouter, tmp_path: Path
) -> None:
    nextcloud.route(method="PUT").respond(507, text="Insufficient Storage")
    session = session_for(tmp_path)
    drive = session.ensure_container(Container("files", LOGIN, "d", ("OneDrive",)))
    with pytest.raises(OwnerFailed, match=f"no storage left for {LOGIN}"):
        session.put(drive, file(tmp_path, "a.txt", b"x"))
