"""What only files targets keep, beyond the contract (test_contract.py): paths inside a
drive (folders, unicode file names, renames with a subtree, two names that map to one) and
modification times. Run against the WebDAV target on Apache mod_dav, rclone serve webdav,
wsgidav, SabreDAV, lighttpd mod_webdav and nginx, and against the files archive.
"""

from __future__ import annotations

import pytest

from hirondelle.migrator.model import TargetRef
from hirondelle.migrator.protocols import TargetSession
from hirondelle.tests.webdav.payloads import MTIME, file, folder, renamed

from .subject import TargetUnderTest

# ";", "?" and "#" are tested in tests/webdav: wsgidav 4.4 unquotes a MOVE Destination
# before parsing it as a URL, so they cut the name there (a server bug)
UNICODE_NAMES = [
    "Été 2024.txt",
    "日本語.md",
    "🚀 Fusée & co.csv",
    "Ça, là 100%.txt",
    "e\u0301.txt",
]


def paths(session: TargetSession, drive: str) -> list[str]:
    """The drive's folders and files as the listing gives them."""
    return [entry.ref.ref for entry in session.listing(drive)]


def content_of(subject: TargetUnderTest, ref: TargetRef) -> bytes | None:
    return subject.read_back(ref).content


def test_unicode_names_round_trip(files_subject: TargetUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    refs = {}
    for name in UNICODE_NAMES:
        payload = file(files_subject.items.spool, f"Dossier é/{name}", name.encode("utf-8"))
        refs[name] = (payload, session.put(drive, payload))
    later = files_subject.session()
    for name, (payload, ref) in refs.items():
        assert later.find(drive, payload, frozenset()) == ref
        assert content_of(files_subject, ref) == name.encode("utf-8")
    assert len({ref for _, ref in refs.values()}) == len(UNICODE_NAMES)


def test_empty_file_and_folders(files_subject: TargetUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    assert session.put(drive, folder("Vide")) == TargetRef(drive, "Vide")
    ref = session.put(drive, file(files_subject.items.spool, "Vide/zéro.bin", b""))
    assert content_of(files_subject, ref) == b""
    listed = [(e.ref.ref, e.size) for e in session.listing(drive)]
    assert listed == [("Vide", 0), ("Vide/zéro.bin", 0)]


def test_removing_a_folder_removes_its_subtree(files_subject: TargetUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    kept = session.put(drive, file(files_subject.items.spool, "garder.txt", b"k"))
    gone = session.put(drive, folder("jeter"))
    session.put(drive, file(files_subject.items.spool, "jeter/x.txt", b"x"))
    session.remove(gone)
    session.remove(gone)
    assert [e.ref for e in session.listing(drive)] == [kept]


def test_update_renames_a_folder_with_its_subtree(files_subject: TargetUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    projets = folder("Projets")
    session.put(drive, projets)
    document = file(files_subject.items.spool, "Projets/a/b.txt", b"b")
    written = session.put(drive, document)
    assert session.put(drive, document) == written
    # "Projets/a" was never put: a file's parent folders are made with it
    assert paths(session, drive) == ["Projets", "Projets/a", "Projets/a/b.txt"]
    moved = session.update(TargetRef(drive, "Projets"), renamed(projets, "Archivé"))
    assert moved == TargetRef(drive, "Archivé")
    assert paths(session, drive) == ["Archivé", "Archivé/a", "Archivé/a/b.txt"]
    spool = files_subject.items.spool
    content = file(spool, "Archivé/a/b v2.txt", b"b2", document.source_id)
    updated = session.update(TargetRef(drive, "Archivé/a/b.txt"), content)
    assert content_of(files_subject, updated) == b"b2"
    assert paths(session, drive)[-1] == "Archivé/a/b v2.txt"


def test_mtime_is_kept(files_subject: TargetUnderTest) -> None:
    if not files_subject.capabilities.keeps_timestamps:
        pytest.skip("declared gap: keeps_timestamps is False")
    if not files_subject.server_keeps_times:
        # the target finds it out per server: `doctor` must say so
        findings = files_subject.target.check()
        assert any("modification times are not kept" in note for note in findings), findings
        pytest.skip("declared gap: this server keeps no modification time (doctor says so)")
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    ref = session.put(drive, file(files_subject.items.spool, "date.txt", b"d"))
    stored = files_subject.read_back(ref).date
    assert stored is not None and stored.timestamp() == MTIME.timestamp()


def test_two_items_with_one_target_name_are_both_kept(files_subject: TargetUnderTest) -> None:
    """NFC and NFD spellings of one name map to one target name: neither is lost."""
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    spool = files_subject.items.spool
    composed = file(spool, "R\u00e9sum\u00e9.txt", b"first", source_id="nfc")
    decomposed = file(spool, "Re\u0301sume\u0301.txt", b"second!", source_id="nfd")
    refs = [session.put(drive, composed), session.put(drive, decomposed)]
    assert refs[0] != refs[1]
    sizes = {e.ref.ref: e.size for e in session.listing(drive)}
    assert sorted(sizes[r.ref] for r in refs) == [5, 7]
    # a resumed run finds each one again, the other's ref excluded
    assert session.find(drive, decomposed, frozenset({refs[0].ref})) == refs[1]


def test_removing_a_child_after_its_folder_is_fine(files_subject: TargetUnderTest) -> None:
    """A deleted folder is removed with its subtree; its children's removals come after."""
    session = files_subject.session()
    drive = session.ensure_container(files_subject.container("OneDrive"))
    parent = session.put(drive, folder("Réunions/2024"))
    child = session.put(drive, file(files_subject.items.spool, "Réunions/2024/cr.txt", b"cr"))
    session.remove(TargetRef(drive, parent.ref.rpartition("/")[0]))
    session.remove(child)
    session.remove(parent)
    assert session.listing(drive) == []
