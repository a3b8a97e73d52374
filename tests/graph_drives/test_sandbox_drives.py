"""The drive source through the real client against the sandbox's drives."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from hirondelle.connectors.graph.budget import MailboxBudget
from hirondelle.connectors.graph.client import GraphClient
from hirondelle.connectors.graph.drives import GraphDriveSource
from hirondelle.migrator.model import Blob, Container, Item, Page
from hirondelle.sandbox import faults as faults_module
from hirondelle.sandbox import server
from hirondelle.sandbox import tenant as tenant_module
from hirondelle.tests.graph.conftest import run, sandbox_settings

SECRET_ENV = "HIRONDELLE_TEST_GRAPH_SECRET"
GIB = 1 << 30
KINDS = {"file": "file", "folder": "folder", "package": "package", "remote": "remote"}


def small_spec(**overrides: Any) -> tenant_module.TenantSpec:
    fields: dict[str, Any] = {
        "seed": 7,
        "users": 2,
        "messages": 4,
        "large_messages": 0,
        "files_per_drive": 12,
        "large_file_bytes": 0,
        **overrides,
    }
    return tenant_module.TenantSpec(**fields)


def start(monkeypatch: pytest.MonkeyPatch, spec: tenant_module.TenantSpec) -> server.SandboxServer:
    tenant = tenant_module.Tenant.generate(spec)
    sandbox = server.SandboxServer(tenant, tls=True)
    monkeypatch.setenv(SECRET_ENV, sandbox.client_secret)
    return sandbox


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with start(monkeypatch, small_spec()) as sandbox:
        yield sandbox


def make_source(sb: Any, tmp_path: Path) -> GraphDriveSource:
    settings = sandbox_settings(sb, client_secret_env=SECRET_ENV)
    budget = MailboxBudget(concurrency=16, requests_per_window=1200, window_seconds=60.0)
    return GraphDriveSource(GraphClient(settings, budget), temp_dir=tmp_path / "spool")


async def drive_containers(source: GraphDriveSource) -> list[Container]:
    containers: list[Container] = []
    for owner in await source.owners():
        containers += await source.containers(owner)
    return containers


def expected_paths(sb: Any, drive_id: str) -> dict[str, str]:
    drives = sb.tenant.drives
    return {item.id: drives.path(item) for item in drives.items(drive_id) if item.kind != "root"}


def test_every_seeded_item_appears_once_with_its_computed_path(sb: Any, tmp_path: Path) -> None:
    async def survey() -> dict[str, tuple[Container, list[Item]]]:
        source = make_source(sb, tmp_path)
        try:
            return {
                c.source_id: (c, await source.listing(c)) for c in await drive_containers(source)
            }
        finally:
            await source.aclose()

    listed = run(survey())
    drives = sb.tenant.drives
    assert set(listed) == {drive.id for drive in drives.drives}
    for drive in drives.drives:
        container, items = listed[drive.id]
        assert len(items) == len({item.source_id for item in items})
        assert {item.source_id: item.meta["path"] for item in items} == expected_paths(sb, drive.id)
        for item in items:
            seeded = drives.item(drive.id, item.source_id)
            assert item.meta["kind"] == KINDS[seeded.kind], item.meta["path"]
            if seeded.kind == "file":
                assert item.meta["size"] == seeded.size
                assert item.meta["quickXorHash"] == drives.quick_xor(seeded)
        if drive.drive_type == "business":
            assert container.path == ("OneDrive",) and container.role == "personal"
        else:
            site = drives.site(drive.owner_id)
            assert container.owner == f"site:{site.name}"
            assert container.path == (site.display_name, drive.name)


def test_small_files_download_with_their_hashes_through_faults(sb: Any, tmp_path: Path) -> None:
    """Resets, cut bodies and 503s on the way: every file still arrives whole."""
    drives = sb.tenant.drives
    drive = next(d for d in drives.drives if d.drive_type == "business")
    seeded = [i for i in drives.items(drive.id) if i.kind == "file" and i.size > 0][:8]

    async def fetch_all() -> list[tuple[Any, Blob]]:
        source = make_source(sb, tmp_path)
        try:
            container = next(c for c in await drive_containers(source) if c.source_id == drive.id)
            by_id = {item.source_id: item for item in await source.listing(container)}
            sb.set_faults(
                faults_module.Faults(reset_rate=0.15, error_rate=0.05, truncate_rate=0.3, seed=4)
            )
            blobs = []
            for wanted in seeded:
                blob = await source.fetch(container, by_id[wanted.id])
                assert isinstance(blob, Blob)
                blobs.append((wanted, blob))
            return blobs
        finally:
            sb.set_faults(faults_module.Faults())
            await source.aclose()

    for wanted, blob in run(fetch_all()):
        content = b"".join(drives.chunks(wanted, 0, wanted.size))
        assert blob.read_bytes() == content
        assert blob.hashes["sha256"] == hashlib.sha256(content).hexdigest()
        assert blob.hashes["quickXorHash"] == drives.quick_xor(wanted)
        blob.discard()
    assert sb.stats()["faults"], "the faults were meant to hit some requests"


def test_incremental_delta_reports_exactly_the_mutated_items(sb: Any, tmp_path: Path) -> None:
    drives = sb.tenant.drives
    drive = next(d for d in drives.drives if d.drive_type == "business")
    before = {item.id: item.etag for item in drives.items(drive.id)}

    async def first_round() -> tuple[Container, str]:
        source = make_source(sb, tmp_path)
        try:
            container = next(c for c in await drive_containers(source) if c.source_id == drive.id)
            pages = [page async for page in source.changes(container, None)]
            assert pages[-1].delta_link
            return container, pages[-1].delta_link
        finally:
            await source.aclose()

    async def second_round(container: Container, cursor: str) -> list[Page]:
        source = make_source(sb, tmp_path)
        try:
            return [page async for page in source.changes(container, cursor)]
        finally:
            await source.aclose()

    container, cursor = run(first_round())
    mutation = tenant_module.Mutation(
        file_creates=2,
        file_changes=2,
        file_renames=2,
        file_moves=1,
        folder_renames=1,
        file_deletions=1,
        folder_deletions=1,
        drive=drive.id,
    )
    result = sb.mutate(mutation)
    pages = run(second_round(container, cursor))

    reported = {item.source_id: item for page in pages for item in page.items}
    removed = {gone for page in pages for gone in page.removed}
    touched = set(result.files)
    alive = {item.id for item in drives.items(drive.id)}
    assert removed == touched - alive
    assert removed  # a file and a folder (with what it held) were deleted
    assert touched & alive <= set(reported)
    for extra in set(reported) - touched:  # ancestors delta adds, unchanged
        assert reported[extra].meta["kind"] == "folder"
        assert reported[extra].version == before[extra]
    paths = expected_paths(sb, drive.id)
    for item_id, item in reported.items():
        assert item.meta["path"] == paths[item_id]
    renamed = result.files_by_change.get("folder_renames", [])
    assert renamed and all(reported[f].meta["path"] == paths[f] for f in renamed)


def test_one_gib_file_downloads_with_flat_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with start(monkeypatch, small_spec(users=1, files_per_drive=2, large_file_bytes=GIB)) as sb:
        drives = sb.tenant.drives
        drive = next(d for d in drives.drives if d.drive_type == "business")
        large = max(drives.items(drive.id), key=lambda item: item.size)
        assert large.size == GIB
        expected_quickxor = drives.quick_xor(large)  # computed by the sandbox, before measuring
        process = psutil.Process(os.getpid())
        peak = {"rss": 0}
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.02):
                peak["rss"] = max(peak["rss"], process.memory_info().rss)

        async def fetch() -> Blob:
            source = make_source(sb, tmp_path)
            try:
                container = next(
                    c for c in await drive_containers(source) if c.source_id == drive.id
                )
                item = next(i for i in await source.listing(container) if i.source_id == large.id)
                watcher = threading.Thread(target=watch, daemon=True)
                baseline = process.memory_info().rss
                peak["rss"] = baseline
                watcher.start()
                try:
                    blob = await source.fetch(container, item)
                finally:
                    done.set()
                    watcher.join()
                peak["growth"] = peak["rss"] - baseline
                assert isinstance(blob, Blob)
                return blob
            finally:
                await source.aclose()

        blob = run(fetch())
        try:
            assert blob.size == GIB and blob.path is not None
            assert blob.path.stat().st_size == GIB
            assert blob.hashes["quickXorHash"] == expected_quickxor
            digest = hashlib.sha256()
            for chunk in drives.chunks(large, 0, large.size):
                digest.update(chunk)
            assert blob.hashes["sha256"] == digest.hexdigest()
        finally:
            blob.discard()
        assert peak["growth"] < 50 * 1024 * 1024, f"RSS grew by {peak['growth']} bytes"
