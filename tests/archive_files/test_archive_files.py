"""The files archive target on a temporary directory."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hirondelle.connectors import archive_files
from hirondelle.connectors.archive_files import FilesArchiveSession, FilesArchiveTarget
from hirondelle.migrator.errors import FatalError, Refused, SkipItem
from hirondelle.migrator.model import Blob, Container, Owner, Payload, TargetRef

OWNER = Owner(upn="alice@contoso.test", source_id="u-1", target_login="alice@example.test")
SITE = Owner(upn="site:Ventes", source_id="s-1", display_name="Ventes")
ONEDRIVE = Container("files", OWNER.upn, "drive-1", ("OneDrive",), "personal")
LIBRARY = Container("files", SITE.upn, "drive-2", ("Ventes", "Documents partagés"))
FOLDER_TIME = datetime(2019, 5, 4, 3, 2, 1, tzinfo=UTC)
FILE_TIME = datetime(2021, 6, 1, 8, 30, tzinfo=UTC)


def folder(source_id: str, path: str, when: datetime = FOLDER_TIME) -> Payload:
    attrs = {"kind": "folder", "path": path, "mtime": when, "size": 0, "quickXorHash": None}
    return Payload(source_id, b"", "", attrs)


def file(
    tmp_path: Path, source_id: str, path: str, content: bytes, when: datetime = FILE_TIME
) -> Payload:
    spooled = tmp_path / f"spool-{source_id}-{hashlib.md5(content).hexdigest()}"
    spooled.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    blob = Blob(spooled, len(content), {"sha256": digest})
    attrs = {"kind": "file", "path": path, "mtime": when, "size": len(content)}
    return Payload(source_id, b"", f"sha256:{digest}", attrs, blob=blob)


@pytest.fixture
def target(tmp_path: Path) -> FilesArchiveTarget:
    return FilesArchiveTarget(tmp_path / "archive", durable=False)


@pytest.fixture
def session(target: FilesArchiveTarget) -> Iterator[FilesArchiveSession]:
    session = target.open(OWNER)
    yield session
    session.close()


@pytest.fixture
def drive(session: FilesArchiveSession) -> str:
    return session.ensure_container(ONEDRIVE)


def mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def test_tree_is_written_with_mtimes(
    tmp_path: Path, target: FilesArchiveTarget, session: FilesArchiveSession, drive: str
) -> None:
    assert drive == "OneDrive"
    root = target.payload / "alice@example.test" / "OneDrive"
    assert session.put(drive, folder("f1", "Docs")) == TargetRef("OneDrive", "Docs")
    assert session.put(drive, folder("f2", "Docs/2024")) == TargetRef("OneDrive", "Docs/2024")
    ref = session.put(drive, file(tmp_path, "i1", "Docs/2024/Rapport.docx", b"rapport"))
    assert ref == TargetRef("OneDrive", "Docs/2024/Rapport.docx")
    written = root / "Docs" / "2024" / "Rapport.docx"
    assert written.read_bytes() == b"rapport"
    assert mtime(written) == FILE_TIME
    # Writing the file did not disturb its folders' own times.
    assert mtime(root / "Docs" / "2024") == FOLDER_TIME
    assert mtime(root / "Docs") == FOLDER_TIME
    assert sorted(os.listdir(root / "Docs" / "2024")) == ["Rapport.docx"]  # no temp left


def test_parents_are_created_when_a_file_comes_first(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    session.put(drive, file(tmp_path, "i1", "A/B/C/deep.txt", b"x"))
    assert (session.drive_dir(drive) / "A" / "B" / "C" / "deep.txt").read_bytes() == b"x"


def test_site_library_layout(target: FilesArchiveTarget) -> None:
    session = target.open(SITE)
    assert session.ensure_container(LIBRARY) == "Ventes/Documents partagés"
    assert (target.payload / "site:Ventes" / "Ventes" / "Documents partagés").is_dir()


def test_find_matches_path_and_size(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    payload = file(tmp_path, "i1", "notes.txt", b"hello")
    assert session.find(drive, payload, frozenset()) is None
    ref = session.put(drive, payload)
    assert session.find(drive, payload, frozenset()) == ref
    assert session.find(drive, payload, frozenset({ref.ref})) is None
    longer = file(tmp_path, "i1", "notes.txt", b"hello world")
    assert session.find(drive, longer, frozenset()) is None
    session.put(drive, folder("f1", "Docs"))
    assert session.find(drive, folder("f1", "Docs"), frozenset()) == TargetRef(drive, "Docs")


def test_second_put_of_the_same_bytes_replaces(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    first = session.put(drive, file(tmp_path, "i1", "notes.txt", b"one"))
    assert session.put(drive, file(tmp_path, "i1", "notes.txt", b"one")) == first
    assert len(session.listing(drive)) == 1
    # Other bytes of the same size may be another item's (a twin name): never overwritten.
    other = session.put(drive, file(tmp_path, "i2", "notes.txt", b"two"))
    assert other != first and (session.drive_dir(drive) / "notes.txt").read_bytes() == b"one"


def test_interrupted_write_leaves_no_file_at_the_final_path(
    tmp_path: Path, session: FilesArchiveSession, drive: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = file(tmp_path, "i1", "big.bin", b"x" * 100_000)

    def broken_chunks(payload: Payload) -> Iterator[bytes]:
        yield b"half"
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(archive_files, "_content_chunks", broken_chunks)
    with pytest.raises(OSError):
        session.put(drive, payload)
    assert os.listdir(session.drive_dir(drive)) == []
    assert session.find(drive, payload, frozenset()) is None


def test_leftover_temporary_is_ignored_by_listing_and_find(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    base = session.drive_dir(drive)
    (base / f".hirondelle-{'0' * 32}.tmp").write_bytes(b"half")  # a killed run's leftover
    payload = file(tmp_path, "i1", "doc.txt", b"content")
    assert session.find(drive, payload, frozenset()) is None
    assert session.listing(drive) == []


def test_update_renames_a_file_and_restamps_it(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    ref = session.put(drive, file(tmp_path, "i1", "Docs/old.txt", b"same"))
    later = datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
    moved = folder("i1", "Archives/new.txt", later)
    moved = Payload("i1", b"", "", {**moved.attrs, "kind": "file", "size": 4})
    new_ref = session.update(ref, moved)
    assert new_ref == TargetRef(drive, "Archives/new.txt")
    base = session.drive_dir(drive)
    assert not (base / "Docs" / "old.txt").exists()
    assert (base / "Archives" / "new.txt").read_bytes() == b"same"
    assert mtime(base / "Archives" / "new.txt") == later


def test_update_of_a_folder_moves_its_subtree(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    ref = session.put(drive, folder("f1", "Projet"))
    session.put(drive, file(tmp_path, "i1", "Projet/a/b.txt", b"b"))
    new_ref = session.update(ref, folder("f1", "Projet 2025"))
    assert new_ref.ref == "Projet 2025"
    # The engine rewrites stored refs "Projet/" -> "Projet 2025/": they resolve again.
    assert (session.drive_dir(drive) / "Projet 2025" / "a" / "b.txt").read_bytes() == b"b"
    assert session.find(drive, file(tmp_path, "i1", "Projet 2025/a/b.txt", b"b"), frozenset())


def test_update_with_content_rewrites(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    ref = session.put(drive, file(tmp_path, "i1", "doc.txt", b"v1"))
    session.update(ref, file(tmp_path, "i1", "doc.txt", b"version 2"))
    assert (session.drive_dir(drive) / "doc.txt").read_bytes() == b"version 2"


def test_update_after_a_crash_between_rename_and_commit(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    ref = session.put(drive, file(tmp_path, "i1", "a.txt", b"a"))
    renamed = Payload("i1", b"", "", {"kind": "file", "path": "b.txt", "mtime": FILE_TIME})
    session.update(ref, renamed)
    assert session.update(ref, renamed) == TargetRef(drive, "b.txt")  # already moved: fine
    gone = Payload("i1", b"", "", {"kind": "file", "path": "c.txt", "mtime": FILE_TIME})
    with pytest.raises(Refused, match="no longer"):
        session.update(TargetRef(drive, "missing.txt"), gone)


def test_remove_file_folder_and_gone(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    file_ref = session.put(drive, file(tmp_path, "i1", "Docs/a.txt", b"a"))
    folder_ref = TargetRef(drive, "Docs")
    session.put(drive, file(tmp_path, "i2", "Docs/sub/b.txt", b"b"))
    session.remove(file_ref)
    session.remove(file_ref)  # already gone: fine
    session.remove(folder_ref)
    assert os.listdir(session.drive_dir(drive)) == []


def test_listing_gives_sha256_and_sizes(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    session.put(drive, folder("f1", "Docs"))
    session.put(drive, file(tmp_path, "i1", "Docs/a.txt", b"alpha"))
    session.put(drive, file(tmp_path, "i2", "b.bin", b""))
    listed = {e.ref.ref: (e.fingerprint, e.size) for e in session.listing(drive)}
    assert listed == {
        "Docs": ("", 0),
        "Docs/a.txt": ("sha256:" + hashlib.sha256(b"alpha").hexdigest(), 5),
        "b.bin": ("sha256:" + hashlib.sha256(b"").hexdigest(), 0),
    }


def test_names_are_kept_as_linux_takes_them(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    ref = session.put(drive, file(tmp_path, "i1", 'Q&A: "why?" <draft>|v2*.txt', b"q"))
    assert ref.ref == 'Q&A: "why?" <draft>|v2*.txt'
    decomposed = session.put(drive, file(tmp_path, "i2", "Cafe\u0301.txt", b"c"))
    assert decomposed.ref == "Caf\u00e9.txt"  # NFC
    long = session.put(drive, file(tmp_path, "i3", "\u00e9" * 200 + ".txt", b"l"))
    assert len(long.ref.encode()) <= 255 and long.ref.endswith(".txt")
    assert (session.drive_dir(drive) / long.ref).read_bytes() == b"l"


def test_too_long_path_is_skipped(tmp_path: Path, session: FilesArchiveSession, drive: str) -> None:
    deep = "/".join(["d" * 200] * 21) + "/x.txt"
    with pytest.raises(SkipItem, match="over the target's limit"):
        session.put(drive, file(tmp_path, "i1", deep, b"x"))


def test_move_between_drives_is_refused(session: FilesArchiveSession, drive: str) -> None:
    with pytest.raises(SkipItem):
        session.move(TargetRef(drive, "a.txt"), "Other")


def test_refs_cannot_escape_the_drive(session: FilesArchiveSession, drive: str) -> None:
    for bad in ("../other/x", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(SkipItem):
            session.remove(TargetRef(drive, bad))


def test_full_disk_stops_the_run(
    tmp_path: Path, session: FilesArchiveSession, drive: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(payload: Payload) -> Iterator[bytes]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive_files, "_content_chunks", full)
    with pytest.raises(FatalError, match="No space left"):
        session.put(drive, file(tmp_path, "i1", "a.txt", b"a"))


def test_check_reports_an_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert FilesArchiveTarget(blocker / "archive").check()
    assert FilesArchiveTarget(tmp_path / "new" / "archive").check() == []


def test_child_listed_with_its_renamed_folder_resolves_with_a_stale_ref(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    # In one delta page the folder's rename is applied first; the child's stored ref
    # still names the old folder, but its wanted path already exists under the new one.
    folder_ref = session.put(drive, folder("f1", "P"))
    stale = session.put(drive, file(tmp_path, "i1", "P/a.txt", b"a"))
    session.update(folder_ref, folder("f1", "Q"))
    attrs = {"kind": "file", "path": "Q/a.txt", "mtime": FILE_TIME, "size": 1}
    assert session.update(stale, Payload("i1", b"", "", attrs)) == TargetRef(drive, "Q/a.txt")
    assert (session.drive_dir(drive) / "Q" / "a.txt").read_bytes() == b"a"


def test_twins_with_names_at_the_length_limit_are_both_kept_and_found_again(
    tmp_path: Path, session: FilesArchiveSession, drive: str
) -> None:
    """Two NFC/NFD twins whose names are as long as the disk allows: the second one's
    twin name is shortened to fit, and a resumed run finds each where it was written."""
    stem = "é" * 120 + "x"  # 241 bytes: with ".txt", near the 255-byte limit
    first = file(tmp_path, "i1", f"{stem}.txt", b"one")
    second = file(tmp_path, "i2", unicodedata.normalize("NFD", stem) + ".txt", b"two")
    one, two = session.put(drive, first), session.put(drive, second)
    assert one != two and len(two.ref.encode()) <= 255
    assert session.find(drive, first, frozenset()) == one
    assert session.find(drive, second, frozenset({one.ref})) == two
