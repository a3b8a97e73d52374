"""The contract every files target keeps (`TargetSession` for drives), run against the
WebDAV target on Apache mod_dav, rclone serve webdav, wsgidav, SabreDAV, lighttpd
mod_webdav and nginx, and against the files archive. Gaps a target declares are skipped with
"declared gap: ...".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hirondelle.migrator.errors import SkipItem
from hirondelle.migrator.model import Container, Owner, TargetRef
from hirondelle.migrator.protocols import Target, TargetSession
from hirondelle.tests.webdav.payloads import MTIME, file, folder, renamed


@dataclass
class FilesUnderTest:
    """One files target with a fresh owner, and where its files land on disk."""

    name: str
    target: Target
    owner: Owner
    on_disk: Callable[[TargetRef], Path]
    keeps_mtime: bool
    spool: Path
    sessions: list[TargetSession] = field(default_factory=list)

    def session(self) -> TargetSession:
        session = self.target.open(self.owner)
        self.sessions.append(session)
        return session

    def drive(self, name: str = "OneDrive") -> Container:
        return Container("files", self.owner.upn, f"drive-{name}", (name,), "personal")

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def _webdav(
    fixture: str, keeps_mtime: bool
) -> Callable[[pytest.FixtureRequest, Path], FilesUnderTest]:
    def make(request: pytest.FixtureRequest, tmp_path: Path) -> FilesUnderTest:
        from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
        from hirondelle.tests.servers import WebDavServer

        server: WebDavServer = request.getfixturevalue(fixture)
        user = server.new_user()
        passwords = server.password_file(tmp_path / "passwords", user)
        target = WebDavTarget(WebDavSettings(url=server.url, password_file=passwords))
        owner = Owner(upn=user.login, source_id=f"{fixture}-owner")

        def on_disk(ref: TargetRef) -> Path:
            return server.path_of(user.login, f"{ref.folder}/{ref.ref}")

        return FilesUnderTest(fixture, target, owner, on_disk, keeps_mtime, tmp_path)

    return make


def _archive(request: pytest.FixtureRequest, tmp_path: Path) -> FilesUnderTest:
    from hirondelle.connectors.archive_files import FilesArchiveTarget

    target = FilesArchiveTarget(tmp_path / "archive", durable=False)
    owner = Owner(upn="carol@example.test", source_id="archive-owner")

    def on_disk(ref: TargetRef) -> Path:
        return target.payload / owner.upn / ref.folder / ref.ref

    return FilesUnderTest("files-archive", target, owner, on_disk, True, tmp_path)


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], FilesUnderTest]] = {
    "webdav-apache": _webdav("apache_dav", keeps_mtime=False),
    "webdav-rclone": _webdav("rclone_dav", keeps_mtime=True),
    "webdav-wsgidav": _webdav("wsgidav_dav", keeps_mtime=True),
    "webdav-sabredav": _webdav("sabre_dav", keeps_mtime=False),
    "webdav-lighttpd": _webdav("lighttpd_dav", keeps_mtime=False),
    "webdav-nginx": _webdav("nginx_dav", keeps_mtime=True),
    "files-archive": _archive,
}


@pytest.fixture(params=sorted(FACTORIES))
def files_subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FilesUnderTest]:
    """Each files target in turn, with an owner who has nothing yet."""
    under_test = FACTORIES[request.param](request, tmp_path)
    try:
        yield under_test
    finally:
        under_test.close()


# ";", "?" and "#" are tested in tests/webdav: wsgidav 4.4 unquotes a MOVE Destination
# before parsing it as a URL, so they cut the name there (a server bug)
UNICODE_NAMES = [
    "Été 2024.txt",
    "日本語.md",
    "🚀 Fusée & co.csv",
    "Ça, là 100%.txt",
    "e\u0301.txt",
]


def test_unicode_names_round_trip(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    assert session.ensure_container(files_subject.drive()) == drive
    refs = {}
    for name in UNICODE_NAMES:
        payload = file(files_subject.spool, f"Dossier é/{name}", name.encode("utf-8"))
        refs[name] = (payload, session.put(drive, payload))
    later = files_subject.session()
    for name, (payload, ref) in refs.items():
        assert later.find(drive, payload, frozenset()) == ref
        assert files_subject.on_disk(ref).read_bytes() == name.encode("utf-8")
    assert len({ref for _, ref in refs.values()}) == len(UNICODE_NAMES)


def test_empty_file_and_folders(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    assert session.put(drive, folder("Vide")) == TargetRef(drive, "Vide")
    ref = session.put(drive, file(files_subject.spool, "Vide/zéro.bin", b""))
    assert files_subject.on_disk(ref).read_bytes() == b""
    listed = [(e.ref.ref, e.size) for e in session.listing(drive)]
    assert listed == [("Vide", 0), ("Vide/zéro.bin", 0)]


def test_second_put_finds_the_same(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    payload = file(files_subject.spool, "a/b.txt", b"contenu")
    ref = session.put(drive, payload)
    assert session.put(drive, payload) == ref
    assert [e.ref.ref for e in session.listing(drive)] == ["a", "a/b.txt"]


def test_find_after_crash_and_not_found(files_subject: FilesUnderTest) -> None:
    crashed = files_subject.session()
    drive = crashed.ensure_container(files_subject.drive())
    payloads = [file(files_subject.spool, f"p{n}.txt", b"x" * n) for n in (1, 2)]
    refs = [crashed.put(drive, payload) for payload in payloads]
    resumed = files_subject.session()  # no close(): the process died after the writes
    assert [resumed.find(drive, p, frozenset()) for p in payloads] == refs
    assert resumed.find(drive, payloads[0], frozenset({refs[0].ref})) is None
    assert resumed.find(drive, file(files_subject.spool, "absent.txt", b"x"), frozenset()) is None


def test_remove_is_idempotent(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    kept = session.put(drive, file(files_subject.spool, "garder.txt", b"k"))
    gone = session.put(drive, folder("jeter"))
    session.put(drive, file(files_subject.spool, "jeter/x.txt", b"x"))
    session.remove(gone)
    session.remove(gone)
    assert [e.ref for e in session.listing(drive)] == [kept]


def test_listing_sizes_and_fingerprints(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    payloads = [file(files_subject.spool, f"l/{n}.bin", bytes([n]) * (n * 1000)) for n in (1, 2, 3)]
    refs = [session.put(drive, payload) for payload in payloads]
    listed = {e.ref: e for e in session.listing(drive) if e.ref.ref != "l"}
    assert set(listed) == set(refs)
    for ref, payload in zip(refs, payloads, strict=True):
        assert listed[ref].size == payload.size
        assert listed[ref].fingerprint in ("", payload.fingerprint)  # "": server cannot tell
    assert session.listing(session.ensure_container(files_subject.drive("Vide"))) == []


def test_update_renames_a_folder_with_its_subtree(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    projets = folder("Projets")
    session.put(drive, projets)
    document = file(files_subject.spool, "Projets/a/b.txt", b"b")
    session.put(drive, document)
    moved = session.update(TargetRef(drive, "Projets"), renamed(projets, "Archivé"))
    assert moved == TargetRef(drive, "Archivé")
    assert [e.ref.ref for e in session.listing(drive)] == [
        "Archivé",
        "Archivé/a",
        "Archivé/a/b.txt",
    ]
    content = file(files_subject.spool, "Archivé/a/b v2.txt", b"b2", document.source_id)
    updated = session.update(TargetRef(drive, "Archivé/a/b.txt"), content)
    assert files_subject.on_disk(updated).read_bytes() == b"b2"
    assert [e.ref.ref for e in session.listing(drive)][-1] == "Archivé/a/b v2.txt"


def test_mtime_is_kept(files_subject: FilesUnderTest) -> None:
    if not files_subject.keeps_mtime:
        pytest.skip("declared gap: this server keeps no modification time")
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    ref = session.put(drive, file(files_subject.spool, "date.txt", b"d"))
    assert files_subject.on_disk(ref).stat().st_mtime == MTIME.timestamp()


def test_moves_between_drives(files_subject: FilesUnderTest) -> None:
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    ref = session.put(drive, file(files_subject.spool, "m.txt", b"m"))
    if not files_subject.target.capabilities.moves:
        with pytest.raises(SkipItem):
            session.move(ref, session.ensure_container(files_subject.drive("Autre")))
        pytest.skip("declared gap: moves is False (the engine writes the item afresh)")


def test_two_items_with_one_target_name_are_both_kept(files_subject: FilesUnderTest) -> None:
    """NFC and NFD spellings of one name map to one target name: neither is lost."""
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    composed = file(files_subject.spool, "R\u00e9sum\u00e9.txt", b"first", source_id="nfc")
    decomposed = file(files_subject.spool, "Re\u0301sume\u0301.txt", b"second!", source_id="nfd")
    refs = [session.put(drive, composed), session.put(drive, decomposed)]
    assert refs[0] != refs[1]
    sizes = {e.ref.ref: e.size for e in session.listing(drive)}
    assert sorted(sizes[r.ref] for r in refs) == [5, 7]
    # a resumed run finds each one again, the other's ref excluded
    assert session.find(drive, decomposed, frozenset({refs[0].ref})) == refs[1]


def test_removing_a_child_after_its_folder_is_fine(files_subject: FilesUnderTest) -> None:
    """A deleted folder is removed with its subtree; its children's removals come after."""
    session = files_subject.session()
    drive = session.ensure_container(files_subject.drive())
    parent = session.put(drive, folder("Réunions/2024"))
    child = session.put(drive, file(files_subject.spool, "Réunions/2024/cr.txt", b"cr"))
    session.remove(TargetRef(drive, parent.ref.rpartition("/")[0]))
    session.remove(child)
    session.remove(parent)
    assert session.listing(drive) == []
