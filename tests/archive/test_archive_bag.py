"""Every archive root is a BagIt bag that standard validators accept, kept current without
reading the whole archive again, and an archive written before bags moves into one safely."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import bagit
import pytest

from hirondelle.connectors import archive_bag
from hirondelle.connectors.archive import ArchiveTarget
from hirondelle.connectors.archive_bag import (
    MANIFEST_NAME,
    MOVING_NAME,
    STAGING_PREFIX,
    open_bag,
    seal,
    unseal,
)
from hirondelle.connectors.archive_readme import README_NAME
from hirondelle.migrator.model import Owner, Payload

OWNER = Owner(upn="alice@example.test", source_id="u-1", target_login="alice")
# The mbox's "From " lines carry each message's date, the file's mtime when the payload
# has none: a fixed date writes the same bytes on every pass, whatever the clock did between.
RECEIVED = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def sealed(root: Path) -> archive_bag.Sealed:
    return seal(root, "Microsoft 365 tenant t-1", "Microsoft 365 mail", "Hirondelle test")


def validate_cli(root: Path) -> subprocess.CompletedProcess[str]:
    """The Library of Congress validator's command line, as an archivist runs it."""
    command = shutil.which("bagit.py")
    assert command, "bagit.py is installed with the bagit package"
    return subprocess.run(
        [command, "--validate", str(root)], capture_output=True, text=True, timeout=60
    )


def tree(directory: Path) -> dict[str, str]:
    """Every file under `directory` by relative path, with its SHA-256."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


def write_mail(root: Path, count: int = 3) -> None:
    session = ArchiveTarget(root, durable=False).open(OWNER)
    for number in range(count):
        content = f"Subject: {number}\r\n\r\nbody {number}\r\n".encode()
        attrs = {"flags": ["\\Seen"], "internal_date": RECEIVED}
        session.put("INBOX", Payload(f"m{number}", content, f"v{number}", attrs))
    session.close()


def test_a_new_archive_is_a_bag_both_validators_accept(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    write_mail(root)
    assert (root / "data" / "alice" / "Maildir" / "cur").is_dir()
    assert (root / README_NAME).exists() and not (root / "data" / README_NAME).exists()
    result = sealed(root)
    assert result.files == 4 and result.hashed_files == 4  # three messages and their mbox
    bag = bagit.Bag(str(root))
    assert bag.validate()
    assert bag.info["Payload-Oxum"] == f"{result.bytes}.4"
    assert "Microsoft 365" in bag.info["Source-Organization"]
    assert "README.txt" in bag.tagfile_entries()
    assert validate_cli(root).returncode == 0


def test_a_changed_file_fails_both_validators(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    write_mail(root)
    sealed(root)
    message = next((root / "data" / "alice" / "Maildir" / "cur").iterdir())
    message.write_bytes(message.read_bytes().replace(b"body", b"BODY"))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(root)).validate()
    assert validate_cli(root).returncode != 0
    sealed(root)  # the next pass's manifest says what is there now
    assert bagit.Bag(str(root)).validate()


def test_while_a_pass_writes_the_bag_claims_nothing(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    write_mail(root)
    sealed(root)
    unseal(root)
    assert not (root / MANIFEST_NAME).exists()
    with pytest.raises(bagit.BagValidationError, match="No manifest"):
        bagit.Bag(str(root)).validate()
    assert validate_cli(root).returncode != 0


def test_a_second_seal_reads_only_the_files_that_changed(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    write_mail(root, count=5)
    first = sealed(root)
    assert sealed(root).hashed_files == 0
    # Same size, same modification time (the targets set it): only the change time moves.
    message = next((root / "data" / "alice" / "Maildir" / "cur").iterdir())
    stat = message.stat()
    message.write_bytes(message.read_bytes().replace(b"body", b"BODY"))
    os.utime(message, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = sealed(root)
    assert (again.hashed_files, again.files) == (1, first.files)
    assert bagit.Bag(str(root)).validate()
    message.unlink()
    assert sealed(root).files == first.files - 1
    assert bagit.Bag(str(root)).validate()


def test_names_with_percent_and_newlines_are_listed_as_validators_read_them(
    tmp_path: Path,
) -> None:
    root = tmp_path / "archive"
    payload = open_bag(root)
    (payload / "100% fini.txt").write_text("a")
    (payload / "deux\nlignes.txt").write_text("b")
    (payload / "Général").mkdir()
    (payload / "Général" / "été.txt").write_text("c")
    sealed(root)
    assert "deux%0Alignes.txt" in (root / MANIFEST_NAME).read_text(encoding="utf-8")
    assert bagit.Bag(str(root)).validate()
    assert validate_cli(root).returncode == 0


def legacy_archive(root: Path) -> dict[str, str]:
    """An archive as written before bags: owners straight under the root, one of them
    even named "data"."""
    write_mail(root)
    for entry in (root / "data").iterdir():
        entry.rename(root / entry.name)
    (root / "data").rmdir()
    for name in ("bagit.txt", ".hirondelle-bag.lock"):
        (root / name).unlink(missing_ok=True)
    (root / "data" / "Maildir" / "cur").mkdir(parents=True)
    (root / "data" / "Maildir" / "cur" / "x:2,S").write_bytes(b"Subject: x\r\n\r\nx\r\n")
    return tree(root)


def test_an_archive_written_before_bags_moves_into_data_once(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    before = legacy_archive(root)
    before.pop(README_NAME)
    write_mail(root)  # a later pass: opens the root, writes the same messages again
    assert tree(root / "data") == before
    assert not list(root.glob(".hirondelle-payload-*")) and not (root / MOVING_NAME).exists()
    sealed(root)
    assert bagit.Bag(str(root)).validate()


@pytest.mark.parametrize("moved", [0, 1, 2])
def test_a_move_killed_midway_is_finished_by_the_next_open(tmp_path: Path, moved: int) -> None:
    """The marker written, `moved` entries renamed, then kill -9."""
    root = tmp_path / "archive"
    before = legacy_archive(root)
    before.pop(README_NAME)
    names = sorted(n for n in os.listdir(root) if n not in (README_NAME,))
    staging = root / f"{STAGING_PREFIX}0123"
    staging.mkdir()
    (root / MOVING_NAME).write_text(json.dumps({"staging": staging.name, "names": names}))
    for name in names[:moved]:
        (root / name).rename(staging / name)
    (root / f"{STAGING_PREFIX}4567").mkdir()  # made by an attempt killed before its marker
    open_bag(root)
    assert tree(root / "data") == before
    assert sorted(os.listdir(root)) == [".hirondelle-bag.lock", README_NAME, "bagit.txt", "data"]


def test_a_move_killed_after_the_payload_rename_only_writes_bagit_txt(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    before = legacy_archive(root)
    before.pop(README_NAME)
    names = sorted(n for n in os.listdir(root) if n != README_NAME)
    staging = root / f"{STAGING_PREFIX}0123"
    staging.mkdir()
    (root / MOVING_NAME).write_text(json.dumps({"staging": staging.name, "names": names}))
    for name in names:
        (root / name).rename(staging / name)
    staging.rename(root / "data")
    open_bag(root)
    assert tree(root / "data") == before and (root / "bagit.txt").exists()


OPEN = """
import sys
from pathlib import Path
from hirondelle.connectors.archive_bag import open_bag
open_bag(Path(sys.argv[1]))
"""


def test_two_processes_opening_an_old_archive_move_it_once(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    before = legacy_archive(root)
    before.pop(README_NAME)
    children = [subprocess.Popen([sys.executable, "-c", OPEN, str(root)]) for _ in range(2)]
    assert [child.wait(timeout=60) for child in children] == [0, 0]
    assert tree(root / "data") == before
