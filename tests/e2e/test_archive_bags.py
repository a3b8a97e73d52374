"""Every archive target's root is a BagIt bag (RFC 8493) that the Library of Congress
validator accepts after `run`, after `sync` of a changed tenant, after a kill -9 and a
rerun, and after an archive written before bags was moved into one."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import bagit
import pytest
from harness import DEADLINE, SECRET_ENV, source_table, start_run, wait_for

from hirondelle.connectors.archive_bag import HASHES_NAME, MANIFEST_NAME
from hirondelle.migrator.operations import check, migrate
from hirondelle.sandbox.faults import Faults
from hirondelle.sandbox.server import Limits, SandboxServer
from hirondelle.sandbox.tenant import Mutation, Tenant, TenantSpec
from hirondelle.workloads.demo import SECRET_ENV as DEMO_SECRET_ENV
from hirondelle.workloads.demo import demo_config

WORKLOADS = ("mail", "files")  # the demo's folders
SPEC = TenantSpec(
    seed=31,
    users=2,
    messages=8,
    large_messages=0,
    files_per_drive=3,
    large_file_bytes=0,
    events_per_user=4,
    contacts_per_user=3,
    teams=1,
    posts_per_channel=2,
    replies_per_post=1,
)
CHANGES = Mutation(
    seed=32,
    new=3,
    flag_changes=3,
    moves=2,
    deletions=2,
    new_events=1,
    event_deletions=1,
    new_contacts=1,
    contact_deletions=1,
    file_creates=2,
    file_changes=1,
    file_renames=1,
    file_moves=1,
    folder_renames=1,
    file_deletions=1,
    chat_posts=1,
    chat_edits=1,
    chat_deletions=1,
)


def assert_valid(root: Path) -> None:
    """Both the library and the command line an archivist would run accept the bag."""
    assert bagit.Bag(str(root)).validate()
    command = shutil.which("bagit.py")
    assert command, "bagit.py is installed with the bagit package"
    done = subprocess.run([command, "--validate", str(root)], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


def base_of(path: str) -> str:
    """A message file's name without its flags: the same message whatever its folder."""
    return Path(path).name.partition(":")[0]


def legacy(root: Path) -> None:
    """Make a bag look like an archive written before bags: its owners straight under
    the root, no bag files, no hash cache."""
    for entry in (root / "data").iterdir():
        entry.rename(root / entry.name)
    (root / "data").rmdir()
    for name in ("bagit.txt", "bag-info.txt", MANIFEST_NAME, "tagmanifest-sha256.txt"):
        (root / name).unlink()
    (root / HASHES_NAME).unlink()


def test_run_then_sync_of_a_changed_tenant_into_bags_and_an_older_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SandboxServer(Tenant.generate(SPEC), tls=True, limits=Limits(enabled=False)) as sandbox:
        monkeypatch.setenv(DEMO_SECRET_ENV, sandbox.client_secret)  # the sandbox's own
        demo = demo_config(sandbox, tmp_path)
        config = dataclasses.replace(demo, targets={w: demo.targets[w] for w in ("mail", "files")})
        archive = tmp_path / "archive"
        assert asyncio.run(migrate(config, "run")).ok
        for name in WORKLOADS:
            assert any((archive / name / "data").iterdir()), name
            assert_valid(archive / name)

        # The mail archive as an earlier version left it; the files archive stays a bag.
        legacy(archive / "mail")
        kept = {k: v for k, v in digests(archive / "mail").items() if "/cur/" in k}
        changed = sandbox.mutate(CHANGES)
        assert changed.new and changed.moved and changed.deleted and changed.files
        synced = asyncio.run(migrate(config, "sync"))
        assert synced.ok
        for name in WORKLOADS:
            assert_valid(archive / name)
        # The older archive moved into data/: what it held is there, its items stayed done
        # (only the new messages were copied) and source, state and files agree.
        assert synced.tallies["mail"].copied == len(changed.new)
        after = digests(archive / "mail" / "data")
        survivors = {base_of(name) for name in after}
        gone = [name for name in kept if base_of(name) not in survivors]
        assert len(gone) <= len(changed.deleted) and len(kept) > 3 * len(changed.deleted)
        reports = asyncio.run(check(config))
        assert all(report.verified for report in reports.values()), reports

        # One changed byte in the archive: both validators refuse the bag.
        victim = next(p for p in (archive / "files" / "data").rglob("*") if p.is_file())
        victim.write_bytes(victim.read_bytes() + b"!")
        with pytest.raises(bagit.BagValidationError):
            bagit.Bag(str(archive / "files")).validate()
        refused = subprocess.run(
            [str(shutil.which("bagit.py")), "--validate", str(archive / "files")],
            capture_output=True,
            timeout=60,
        )
        assert refused.returncode != 0


def messages_in(archive: Path) -> int:
    return sum(1 for _ in archive.glob("data/*/Maildir/**/cur/*"))


def test_a_run_killed_then_resumed_ends_with_a_valid_bag(tmp_path: Path) -> None:
    tenant = Tenant.generate(
        TenantSpec(seed=37, users=2, messages=30, large_messages=0, files_per_drive=0)
    )
    faults = Faults(slow_seconds=0.03)  # stretch the run so the kill lands mid-copy
    with SandboxServer(tenant, tls=True, limits=Limits(enabled=False), faults=faults) as sandbox:
        config = tmp_path / "hirondelle.toml"
        config.write_text(
            f'{source_table(sandbox)}\n[targets.mail]\nkind = "archive"\npath = "archive"\n'
            "[run]\nlease_seconds = 2\n",
            encoding="utf-8",
        )
        env = {SECRET_ENV: sandbox.client_secret}
        run = start_run(config, env)
        archive = tmp_path / "archive"
        assert wait_for(lambda: messages_in(archive) >= 10, run), "the run ended unkilled"
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        # Killed mid-pass: no manifest, so no validator takes the bag for complete.
        assert not (archive / MANIFEST_NAME).exists()
        with pytest.raises(bagit.BagValidationError):
            bagit.Bag(str(archive)).validate()

        sandbox.set_faults(Faults())
        final = start_run(config, env)
        _, err = final.communicate(timeout=DEADLINE)
        assert final.returncode == 0, err.decode()[-2000:]
        assert_valid(archive)
        expected = sum(
            len(tenant.messages(u.id, f.id))
            for u in tenant.users
            for f in tenant.folders(u.id)
            if not f.hidden
        )
        assert messages_in(archive) == expected
