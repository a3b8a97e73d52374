"""Files SharePoint changed after upload, end to end: sandbox Graph -> engine -> archive.

SharePoint document libraries rewrite some Office files after upload while Graph keeps
listing the upload's size and quickXorHash, so no download ever matches the listing
(https://github.com/OneDrive/onedrive-api-docs/issues/935,
https://github.com/rclone/rclone/issues/2036). The seeded Finances library holds three
such files (sandbox/drive_seed.py). They must land as served, named in the audit log and
by verify, be written once only, and never be mistaken for a cut download.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from harness import SECRET_ENV, source_table

from hirondelle.cli import main
from hirondelle.connectors.graph import budget
from hirondelle.mappings.quickxor import quickxor_b64
from hirondelle.migrator import operations
from hirondelle.migrator.config import Config, load_config
from hirondelle.sandbox.drive_data import DriveItem, Enrichment, SandboxDrives
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Tenant, TenantSpec
from hirondelle.state.store import open_store
from hirondelle.tests.servers import WebDavServer

SITE = "site:Finances"
SPEC = TenantSpec(
    seed=23, users=1, messages=2, large_messages=0, files_per_drive=4, large_file_bytes=0
)


@dataclass
class Library:
    sandbox: SandboxServer
    config: Config
    directory: Path  # the configuration's
    files_root: Path  # where the target keeps the files, on this machine's disk

    @property
    def drives(self) -> SandboxDrives:
        return self.sandbox.tenant.drives

    def changed(self) -> list[DriveItem]:
        """The files SharePoint changed after upload, as they are now."""
        return [i for d in self.drives.drives for i in self.drives.items(d.id) if i.enrichment]

    def served(self, item: DriveItem) -> bytes:
        return b"".join(self.drives.served_chunks(item))

    def archived(self, item: DriveItem) -> Path | None:
        """The item's file on the target (the seeded names are unique), if any."""
        found = [p for p in self.files_root.rglob(item.name) if p.is_file()]
        assert len(found) <= 1, found
        return found[0] if found else None

    def audit(self, run_id: int) -> list[dict[str, Any]]:
        path = self.directory / "audit" / f"run-{run_id:06d}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def migrate(self, mode: str) -> operations.RunResult:
        return asyncio.run(operations.migrate(self.config, mode, workers=1))


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> Iterator[Library]:
    """The Finances site from a fresh sandbox into `target` (a `[targets.files]` table);
    `files_root` is the archive's, to be changed for another target."""
    with SandboxServer(Tenant.generate(SPEC), tls=True, limits=Limits(enabled=False)) as sb:
        monkeypatch.setenv(SECRET_ENV, sb.client_secret)
        (tmp_path / "users.csv").write_text(f"{SITE}\n")
        path = tmp_path / "hirondelle.toml"
        path.write_text(f'{source_table(sb)}\n[users]\nfile = "users.csv"\n\n{target}')
        yield Library(sb, load_config(path), tmp_path, tmp_path / "archive")


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Library]:
    yield from serve(tmp_path, monkeypatch, '[targets.files]\nkind = "archive"\npath = "archive"\n')


def test_changed_files_land_as_served_noted_by_audit_and_verify_and_written_once(
    library: Library,
) -> None:
    changed = library.changed()
    assert len(changed) == 3
    plan = asyncio.run(operations.plan(library.config))
    findings = {f.container: f for f in plan.findings if f.kind == "sharepoint-modified"}
    assert set(findings) == {"Finances/Documents", "Finances/Archives"}  # both hold some
    office = [
        i
        for i in library.drives.items(changed[0].drive_id)
        if i.kind == "file" and i.name.endswith((".docx", ".xlsx", ".pptx"))
    ]
    assert findings["Finances/Documents"].detail.startswith(f"{len(office)} Office file(s)")

    # Downloads cut now and then on the way: resumed, never taken for SharePoint's change.
    library.sandbox.set_faults(Faults(truncate_rate=0.3, seed=3))
    first = library.migrate("run")
    library.sandbox.set_faults(Faults())
    assert first.ok, first.as_dict()
    assert library.sandbox.stats()["faults"].get("truncate")
    stamps = {}
    for item in changed:
        path = library.archived(item)
        assert path is not None, item.name
        assert path.read_bytes() == library.served(item)
        stamps[item.name] = path.stat().st_mtime_ns
    noted = {
        line["path"].rsplit("/", 1)[-1]: line
        for line in library.audit(first.run_id)
        if line.get("note") == "modified by SharePoint"
    }
    assert set(noted) == {item.name for item in changed}
    for item in changed:
        line = noted[item.name]
        assert (line["action"], line["result"]) == ("put", "done")
        assert line["published_quickXorHash"] == library.drives.quick_xor(item)
        assert line["received_quickXorHash"] == quickxor_b64(library.served(item))
        assert line["published_size"] == item.size
        assert line["size"] == len(library.served(item))

    report = asyncio.run(operations.check(library.config))["files"]
    assert report.verified, report.differences
    assert report.notes == 3 and report.failed == 0
    notes = [n for c in report.containers for _, n in c.notes]
    assert all("modified by SharePoint after upload" in n for n in notes)
    said = CliRunner().invoke(main, ["-c", str(library.directory / "hirondelle.toml"), "verify"])
    assert said.exit_code == 0, said.output
    assert said.output.count("note: ") == 3 and "3 noted above" in said.output
    flat = " ".join(said.output.split())  # the console wraps long lines
    assert "Compte rendu du comité budgétaire.docx: modified by SharePoint" in flat

    for mode in ("run", "sync"):
        again = library.migrate(mode)
        tally = again.tallies["files"]
        assert again.ok and (tally.copied, tally.updated, tally.failed) == (0, 0, 0), mode
        assert not [line for line in library.audit(again.run_id) if line["action"] == "put"]
    for item in changed:
        path = library.archived(item)
        assert path is not None and path.stat().st_mtime_ns == stamps[item.name]


def test_downloads_cut_every_time_are_never_kept(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every download of the library is cut halfway: two copies would be the same cut
    bytes, but their answers announced more, so none is kept; a later pass writes them."""
    monkeypatch.setattr(budget, "MAX_BACKOFF_S", 0.0)  # the retries of a cut body, at once
    library.sandbox.set_faults(Faults(truncate_rate=1.0))
    cut = library.migrate("run")
    library.sandbox.set_faults(Faults())
    assert not cut.ok and cut.tallies["files"].failed
    for item in library.changed():
        assert library.archived(item) is None, item.name
    store = open_store(library.config.state_url)
    try:
        failed = {row.source_id: row.last_error for _, row in store.failed("files", SITE)}
    finally:
        store.engine.dispose()
    for item in library.changed():
        assert failed[item.id], item.name
        assert "came twice" not in (failed[item.id] or "")
    assert not [
        line for line in library.audit(cut.run_id) if line.get("note") == "modified by SharePoint"
    ]

    whole = library.migrate("retry-failed")  # knows the library from each item's own state
    assert whole.ok, whole.as_dict()
    for item in library.changed():
        path = library.archived(item)
        assert path is not None and path.read_bytes() == library.served(item)


def test_downloads_that_differ_stay_failed_saying_why_until_they_agree(
    library: Library,
) -> None:
    item = library.changed()[0]
    library.drives.enrich(item.drive_id, item.id, Enrichment(per_download=True))
    first = library.migrate("run")
    assert not first.ok and first.tallies["files"].failed == 1
    assert library.archived(item) is None
    report = asyncio.run(operations.check(library.config))["files"]
    (difference,) = report.differences
    assert difference.source_id == item.id
    assert "two downloads gave different bytes" in difference.detail

    library.drives.enrich(item.drive_id, item.id, Enrichment())  # the file settled
    second = library.migrate("sync")
    assert second.ok, second.as_dict()
    path = library.archived(item)
    assert path is not None and path.read_bytes() == library.served(item)
    report = asyncio.run(operations.check(library.config))["files"]
    assert report.verified and report.notes == 3


def test_changed_files_reach_webdav_as_served_and_a_sync_leaves_them(
    tmp_path: Path, rclone_dav: WebDavServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rclone's WebDAV keeps no checksum: verify compares the size written, the served one."""
    user = rclone_dav.new_user()
    passwords = rclone_dav.password_file(tmp_path / "dav-passwords.txt", user)
    target = (
        f'[targets.files]\nkind = "webdav"\nurl = "{rclone_dav.url}"\n'
        f'password_file = "{passwords}"\nsite_login = "{user.login}"\n'
    )
    for library in serve(tmp_path, monkeypatch, target):
        library.files_root = rclone_dav.path_of(user.login)
        first = library.migrate("run")
        assert first.ok, first.as_dict()
        for item in library.changed():
            path = library.archived(item)
            assert path is not None and path.read_bytes() == library.served(item)
        report = asyncio.run(operations.check(library.config))["files"]
        assert report.verified and report.notes == 3, report.differences
        again = library.migrate("sync")
        tally = again.tallies["files"]
        assert (tally.copied, tally.updated, tally.failed) == (0, 0, 0)
        assert not [line for line in library.audit(again.run_id) if line["action"] == "put"]
