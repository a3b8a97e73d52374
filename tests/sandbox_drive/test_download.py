"""/content: 302 to a pre-authenticated URL that honours Range, expires, and meets faults."""

from __future__ import annotations

import httpx
import pytest
from sandbox_drive_helpers import client

from hirondelle.mappings.quickxor import QuickXorHash, quickxor_b64
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec


def location(graph: httpx.Client, drive_id: str, item_id: str, suffix: str = "content") -> str:
    response = graph.get(f"drives/{drive_id}/items/{item_id}/{suffix}")
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def test_served_bytes_hash_to_the_advertised_quick_xor_hash(sb: SandboxServer) -> None:
    drive = sb.tenant.drives.drives[-1]
    with client(sb) as graph:
        page = graph.get(f"drives/{drive.id}/root/delta").json()["value"]
        files = [e for e in page if "file" in e and e["size"] < 5_000_000]
        assert any(e["size"] == 0 for e in files)
        for entry in files:
            url = location(graph, drive.id, entry["id"])
            body = httpx.get(url).content  # no bearer token: the URL is pre-authenticated
            assert len(body) == entry["size"]
            assert quickxor_b64(body) == entry["file"]["hashes"]["quickXorHash"]


def test_range_gives_206_with_content_range_and_the_same_bytes(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    big = next(i for d in drives.drives for i in drives.items(d.id) if i.size == 3_000_000)
    with client(sb) as graph:
        url = location(graph, big.drive_id, big.id)
    whole = b"".join(drives.chunks(big))
    tail = httpx.get(url, headers={"Range": "bytes=2999000-"})
    assert tail.status_code == 206
    assert tail.headers["Content-Range"] == "bytes 2999000-2999999/3000000"
    assert tail.content == whole[2_999_000:]
    middle = httpx.get(url, headers={"Range": "bytes=1048000-1049999"})
    assert middle.content == whole[1_048_000:1_050_000]
    assert httpx.get(url, headers={"Range": "bytes=3000000-"}).status_code == 416
    assert httpx.head(url).headers["Content-Length"] == "3000000"


def test_download_urls_expire(mutable: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    drives = mutable.tenant.drives
    item = next(i for i in drives.items(drives.drives[0].id) if i.kind == "file")
    service = mutable._state.drive.downloads  # the sandbox's own drive service, for its clock
    now = [1000.0]  # its clock moves when the test says, whatever the machine's load
    monkeypatch.setattr(service, "_clock", lambda: now[0])
    with client(mutable) as graph:
        url = location(graph, item.drive_id, item.id)
    assert httpx.get(url).status_code == 200
    now[0] += service.ticket_seconds - 0.5
    assert httpx.get(url).status_code == 200  # still within its lifetime
    now[0] += 1.0
    assert httpx.get(url).status_code == 401


def test_a_truncated_download_resumes_with_range(mutable: SandboxServer) -> None:
    drives = mutable.tenant.drives
    big = next(i for d in drives.drives for i in drives.items(d.id) if i.size == 3_000_000)
    with client(mutable) as graph:
        url = location(graph, big.drive_id, big.id)
    mutable.set_faults(Faults(truncate_rate=1.0))
    received = bytearray()
    with pytest.raises(httpx.HTTPError), httpx.stream("GET", url) as response:
        for chunk in response.iter_bytes():
            received += chunk
    assert 0 < len(received) < big.size
    mutable.set_faults(Faults())
    rest = httpx.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert quickxor_b64(bytes(received) + rest.content) == drives.quick_xor(big)
    assert mutable.stats()["faults"]["truncate"] == 1


def test_older_versions_are_listed_and_downloadable(sb: SandboxServer) -> None:
    drives = sb.tenant.drives
    item = next(i for d in drives.drives for i in drives.items(d.id) if len(i.versions) == 2)
    with client(sb) as graph:
        versions = graph.get(f"drives/{item.drive_id}/items/{item.id}/versions").json()["value"]
        assert [v["id"] for v in versions] == ["3.0", "2.0", "1.0"]
        assert versions[0]["size"] == item.size
        first = httpx.get(location(graph, item.drive_id, item.id, "versions/1.0/content"))
    assert len(first.content) == item.versions[0].size
    assert first.content == b"".join(drives.chunks(item, version="1.0"))


def test_a_one_gib_file_streams_with_its_advertised_hash() -> None:
    spec = TenantSpec(
        seed=3, users=1, messages=1, large_messages=0, files_per_drive=1, large_file_bytes=1 << 30
    )
    tenant = Tenant.generate(spec)
    with SandboxServer(tenant, tls=False, limits=Limits(enabled=False)) as server:
        drives = tenant.drives
        big = next(i for i in drives.items(drives.drives[-1].id) if i.size == 1 << 30)
        with client(server) as graph:
            entry = graph.get(f"drives/{big.drive_id}/items/{big.id}").json()
            hasher, size = QuickXorHash(), 0
            with httpx.stream("GET", location(graph, big.drive_id, big.id)) as response:
                for chunk in response.iter_bytes(1 << 20):
                    hasher.update(chunk)
                    size += len(chunk)
    assert size == entry["size"] == 1 << 30
    assert hasher.b64digest() == entry["file"]["hashes"]["quickXorHash"]
