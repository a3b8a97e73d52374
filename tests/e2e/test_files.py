"""Drives end to end: sandbox Graph -> engine -> a real WebDAV server (rclone serve webdav)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import SECRET_ENV, source_table

from hirondelle.mappings.quickxor import QuickXorHash
from hirondelle.migrator import operations
from hirondelle.migrator.config import load_config
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.tests.servers import MailUser, WebDavServer

PART = ".hirondelle-part"


@dataclass
class Drives:
    tenant: Tenant
    sandbox: SandboxServer
    server: WebDavServer
    user: MailUser
    config_path: Path
    env: dict[str, str]


def drives_setup(
    tmp_path: Path, server: WebDavServer, spec: TenantSpec, faults: Faults | None = None
) -> Iterator[Drives]:
    tenant = Tenant.generate(spec)
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        user = server.new_user()
        upn = tenant.users[0].upn
        passwords = server.password_file(tmp_path / "dav-passwords.txt", user)
        (tmp_path / "users.csv").write_text(f"{upn},{user.login}\n")
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f"""
{source_table(sandbox)}
[users]
file = "users.csv"

[targets.files]
kind = "webdav"
url = "{server.url}"
password_file = "{passwords}"
"""
        )
        yield Drives(tenant, sandbox, server, user, config, {SECRET_ENV: sandbox.client_secret})


def source_hashes(tenant: Tenant) -> Counter[str]:
    """The QuickXorHash of every carried file of the user's OneDrive, as a multiset."""
    drives = tenant.drives
    drive_id = drives.user_drives[tenant.users[0].upn.lower()]
    items = {i.id: i for i in drives.items(drive_id)}

    def carried(item_id: str | None) -> bool:
        while item_id is not None:
            item = items[item_id]
            if item.kind in ("package", "remote"):
                return False
            item_id = item.parent_id
        return True

    return Counter(
        drives.quick_xor(i) for i in items.values() if i.kind == "file" and carried(i.id)
    )


def target_hashes(server: WebDavServer, login: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for directory, _, names in os.walk(server.path_of(login)):
        for name in names:
            assert PART not in name, f"a temporary file is left: {name}"
            hasher = QuickXorHash()
            with open(Path(directory) / name, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    hasher.update(chunk)
            found[hasher.b64digest()] += 1
    return found


@pytest.fixture
def drives(
    tmp_path: Path, rclone_dav: WebDavServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Drives]:
    spec = TenantSpec(
        seed=17,
        users=1,
        messages=2,
        large_messages=0,
        files_per_drive=25,
        large_file_bytes=3 * 1024 * 1024,
    )
    for setup in drives_setup(tmp_path, rclone_dav, spec):
        for name, value in setup.env.items():
            monkeypatch.setenv(name, value)
        yield setup


def test_run_then_sync_moves_renames_and_deletions(drives: Drives) -> None:
    config = load_config(drives.config_path)
    first = asyncio.run(operations.migrate(config, "run"))
    assert first.ok, first.as_dict()
    assert target_hashes(drives.server, drives.user.login) == source_hashes(drives.tenant)
    assert asyncio.run(operations.check(config))["files"].verified
    drive_id = drives.tenant.drives.user_drives[drives.tenant.users[0].upn.lower()]
    changed = drives.sandbox.mutate(
        Mutation(
            drive=drive_id,
            seed=9,
            file_creates=3,
            file_changes=2,
            file_renames=2,
            file_moves=2,
            folder_renames=1,
            file_deletions=2,
            folder_deletions=1,
        )
    )
    assert changed.files
    second = asyncio.run(operations.migrate(config, "sync"))
    tally = second.tallies["files"]
    assert second.ok and tally.copied >= 3 and tally.updated >= 7 and tally.removed >= 3
    assert target_hashes(drives.server, drives.user.login) == source_hashes(drives.tenant)
    report = asyncio.run(operations.check(config))["files"]
    assert report.verified, report.differences[:5]
    quiet = asyncio.run(operations.migrate(config, "sync")).tallies["files"]
    assert (quiet.copied, quiet.updated, quiet.removed) == (0, 0, 0)


def test_kill_nine_during_a_large_file_and_many_small_ones(
    tmp_path: Path, rclone_dav: WebDavServer
) -> None:
    """1 GiB file plus small ones; killed mid-transfer three times; no half file, no loss.
    The first kill lands while the large file is uploaded as it downloads (streamed)."""
    spec = TenantSpec(
        seed=19, users=1, messages=2, large_messages=0, files_per_drive=60, large_file_bytes=1 << 30
    )
    rng = random.Random(11)
    for setup in drives_setup(tmp_path, rclone_dav, spec, Faults(slow_seconds=0.01)):
        command = [sys.executable, "-m", "hirondelle.cli", "-c", str(setup.config_path), "run"]
        env = {**os.environ, **setup.env}
        home = rclone_dav.path_of(setup.user.login)
        kills = 0
        streaming = False
        for attempt in range(3):
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 120
            delay = rng.uniform(0.0, 1.5)
            while process.poll() is None and time.monotonic() < deadline:
                parts = list(home.rglob(f"*{PART}")) if home.exists() else []
                if attempt == 0 and any(_size(p) > 50 << 20 for p in parts):
                    spools = tmp_path.rglob("hirondelle-drive-*.part")
                    streaming = any(0 < _size(p) < spec.large_file_bytes for p in spools)
                    break  # the large file is half uploaded
                if (
                    attempt > 0
                    and (tmp_path / "audit").exists()
                    and time.monotonic() > (deadline - 120 + 2.0 + delay)
                ):
                    break
                time.sleep(0.01)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.wait(timeout=30)
            sizes = _sizes(setup.tenant)
            for path in home.rglob("*") if home.exists() else []:
                if path.is_file() and PART not in path.name:  # no half file at a final path
                    assert _size(path) in sizes | {-1}, path
        assert kills >= 2
        assert streaming  # its download was still running when the part file was killed
        setup.sandbox.set_faults(Faults())
        final = subprocess.run(command, env=env, capture_output=True, timeout=300)
        assert final.returncode == 0, final.stderr.decode()[-2000:]
        assert target_hashes(rclone_dav, setup.user.login) == source_hashes(setup.tenant)
        assert not list(home.rglob(f"*{PART}"))  # the killed runs' part files were reused


def _sizes(tenant: Tenant) -> set[int]:
    drives = tenant.drives
    drive_id = drives.user_drives[tenant.users[0].upn.lower()]
    return {drives.size_of(i) for i in drives.items(drive_id) if i.kind == "file"}


def _size(path: Path) -> int:
    """The file's size, or -1 when it went away meanwhile (a finished temporary file)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1
