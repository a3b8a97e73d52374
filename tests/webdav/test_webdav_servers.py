"""The WebDAV target against real servers: Apache mod_dav, rclone serve webdav, wsgidav,
SabreDAV and lighttpd mod_webdav."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hirondelle.connectors.webdav import WebDavSettings, WebDavTarget
from hirondelle.migrator.errors import OwnerFailed, Refused, Retriable, SkipItem
from hirondelle.migrator.model import TargetRef
from hirondelle.tests.webdav.conftest import KEEPS_MTIME, DavUser, target_for
from hirondelle.tests.webdav.payloads import MTIME, file, folder, renamed, streamed

NAMES = ["Rapport.docx", "Été 2024 – notes.txt", "日本語 ファイル.md", "🚀 launch & 50%.csv"]


def test_folders_and_unicode_names_land_where_the_mapper_says(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    assert drive == "Microsoft 365/OneDrive"
    assert session.ensure_container(dav.drive()) == drive  # idempotent
    assert session.put(drive, folder("Équipe")) == TargetRef(drive, "Équipe")
    for name in NAMES:
        content = name.encode("utf-8") * 3
        ref = session.put(drive, file(dav.tmp_path, f"Équipe/{name}", content))
        assert ref == TargetRef(drive, f"Équipe/{name}")
        assert dav.on_disk(drive, ref.ref).read_bytes() == content
    listed = {e.ref.ref: e.size for e in session.listing(drive)}
    expected = {f"Équipe/{n}": len(n.encode("utf-8")) * 3 for n in NAMES}
    assert listed == {"Équipe": 0, **expected}


def test_url_delimiters_in_names(dav: DavUser) -> None:
    if dav.name == "wsgidav":
        pytest.skip("declared gap: wsgidav 4.4 parses a MOVE's Destination after unquoting it")
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    for name in ("a?b.txt", "c#d.txt", "e;f.txt", "g%20h.txt"):
        ref = session.put(drive, file(dav.tmp_path, f"x/{name}", name.encode()))
        assert dav.on_disk(drive, ref.ref).read_bytes() == name.encode()
    assert len(session.listing(drive)) == 5


def test_parents_are_created_first_and_empty_files_carried(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    ref = session.put(drive, file(dav.tmp_path, "a/b/c/vide.txt", b""))
    assert dav.on_disk(drive, ref.ref).read_bytes() == b""
    assert [e.ref.ref for e in session.listing(drive)] == ["a", "a/b", "a/b/c", "a/b/c/vide.txt"]


def test_second_put_is_idempotent_and_found_by_a_new_session(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    payload = file(dav.tmp_path, "Docs/plan.pdf", b"%PDF-1.7 " * 1000)
    ref = session.put(drive, payload)
    assert session.put(drive, payload) == ref
    resumed = dav.session()  # the process died after the write; a new one resumes
    assert resumed.find(resumed.ensure_container(dav.drive()), payload, frozenset()) == ref
    assert resumed.find(drive, payload, frozenset({ref.ref})) is None
    assert resumed.find(drive, folder("Docs"), frozenset()) == TargetRef(drive, "Docs")
    shorter = file(dav.tmp_path, "Docs/plan.pdf", b"%PDF", payload.source_id)
    assert resumed.find(drive, shorter, frozenset()) is None  # another size: not the same
    assert resumed.find(drive, file(dav.tmp_path, "Docs/absent", b"x"), frozenset()) is None
    assert [e.ref.ref for e in resumed.listing(drive)] == ["Docs", "Docs/plan.pdf"]


def test_no_half_file_is_visible_at_the_final_path_during_an_upload(dav: DavUser) -> None:
    session, observer = dav.session(), dav.session()
    drive = session.ensure_container(dav.drive())
    session.put(drive, folder("Lent"))
    halves = [b"a" * 300_000, b"b" * 300_000]
    content = b"".join(halves)
    fifo = dav.tmp_path / "slow.fifo"
    os.mkfifo(fifo)
    digest = hashlib.sha256(content).hexdigest()
    payload = streamed(fifo, "Lent/gros.bin", len(content), digest, "slow-1")
    outcome: list[object] = []
    uploader = threading.Thread(target=lambda: outcome.append(session.put(drive, payload)))
    uploader.start()
    writer = _open_writer(fifo, deadline=time.monotonic() + 20)
    try:
        os.write(writer, halves[0])
        # the first half is on its way: a PROPFIND of the final path must find nothing
        # (a listing meanwhile is not asked: rclone answers it with a broken multistatus)
        assert observer.find(drive, payload, frozenset()) is None
        assert observer._stat(f"{drive}/Lent/gros.bin") is None
        os.write(writer, halves[1])
    finally:
        os.close(writer)
        uploader.join(timeout=30)
    assert outcome == [TargetRef(drive, "Lent/gros.bin")]
    assert dav.on_disk(drive, "Lent/gros.bin").read_bytes() == content
    assert [e.ref.ref for e in observer.listing(drive)] == ["Lent", "Lent/gros.bin"]


def _open_writer(fifo: Path, deadline: float) -> int:
    """Open the pipe for writing once the upload opened it for reading."""
    while True:
        try:
            descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # poll interval while the upload starts
            continue
        os.set_blocking(descriptor, True)
        return descriptor


def test_mtime_kept_where_the_server_can(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    moments = [MTIME, datetime(2009, 2, 13, 23, 31, 30, tzinfo=UTC)]
    refs = [
        session.put(drive, file(dav.tmp_path, f"m{n}.txt", b"x", mtime=moment))
        for n, moment in enumerate(moments)
    ]
    stamps = [dav.on_disk(drive, ref.ref).stat().st_mtime for ref in refs]
    if KEEPS_MTIME[dav.name]:
        assert stamps == [moment.timestamp() for moment in moments]
        assert session.mtime_header or session.proppatch_mtime
    else:
        assert all(stamp > moments[0].timestamp() for stamp in stamps)
        assert (session.mtime_header, session.proppatch_mtime) == (False, False)


def test_update_renames_a_folder_with_its_subtree(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    projets = folder("Projets")
    session.put(drive, projets)
    kept = file(dav.tmp_path, "Projets/2024/bilan.xlsx", b"bilan" * 100)
    session.put(drive, folder("Projets/2024"))
    session.put(drive, kept)
    session.put(drive, file(dav.tmp_path, "Projets/lisez-moi.txt", b"hello"))
    moved = session.update(TargetRef(drive, "Projets"), renamed(projets, "Archives 2024"))
    assert moved == TargetRef(drive, "Archives 2024")
    assert [e.ref.ref for e in session.listing(drive)] == [
        "Archives 2024",
        "Archives 2024/2024",
        "Archives 2024/2024/bilan.xlsx",
        "Archives 2024/lisez-moi.txt",
    ]
    assert dav.on_disk(drive, "Archives 2024/2024/bilan.xlsx").read_bytes() == b"bilan" * 100
    # the engine rewrote the child's ref; renaming the file itself then moves it alone
    child = TargetRef(drive, "Archives 2024/2024/bilan.xlsx")
    again = session.update(child, renamed(kept, "Archives 2024/bilan final.xlsx"))
    assert again == TargetRef(drive, "Archives 2024/bilan final.xlsx")
    assert session.find(drive, renamed(kept, "Archives 2024/bilan final.xlsx"), frozenset())
    # an update whose move already happened (a crash before the ref was stored) succeeds
    assert session.update(child, renamed(kept, "Archives 2024/bilan final.xlsx")) == again


def test_update_with_content_replaces_the_file(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    first = file(dav.tmp_path, "notes.md", b"v1", "item-1")
    ref = session.put(drive, first)
    second = file(dav.tmp_path, "notes (2).md", b"version 2", "item-1")
    assert session.update(ref, second) == TargetRef(drive, "notes (2).md")
    assert [(e.ref.ref, e.size) for e in session.listing(drive)] == [("notes (2).md", 9)]
    assert dav.on_disk(drive, "notes (2).md").read_bytes() == b"version 2"


def test_update_of_an_item_gone_from_the_target_fails(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    with pytest.raises(Refused, match="no longer on the target"):
        session.update(TargetRef(drive, "ghost"), renamed(folder("ghost"), "ghost 2"))


def test_remove_files_and_folders_gone_is_fine(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    session.put(drive, folder("Corbeille"))
    session.put(drive, file(dav.tmp_path, "Corbeille/a.txt", b"a"))
    kept = session.put(drive, file(dav.tmp_path, "garder.txt", b"b"))
    session.remove(TargetRef(drive, "Corbeille"))
    session.remove(TargetRef(drive, "Corbeille"))  # already gone
    assert [e.ref for e in session.listing(drive)] == [kept]
    # a folder of the same name can come back in the same session
    session.put(drive, file(dav.tmp_path, "Corbeille/b.txt", b"b"))
    assert dav.on_disk(drive, "Corbeille/b.txt").read_bytes() == b"b"


def test_a_folder_removed_behind_the_session_is_made_again(dav: DavUser) -> None:
    """A PUT under a folder someone else deleted is retried, never failed for good: most
    servers answer 409 (RFC 4918 9.7.1), SabreDAV 404, nginx 500; the retry makes the
    folder again."""
    session, other = dav.session(), dav.session()
    drive = session.ensure_container(dav.drive())
    session.put(drive, file(dav.tmp_path, "Partagé/a.txt", b"a"))
    other.remove(TargetRef(drive, "Partagé"))
    again = file(dav.tmp_path, "Partagé/b.txt", b"b")
    with pytest.raises(Retriable):
        session.put(drive, again)
    ref = session.put(drive, again)  # the engine's retry: the session forgot its folders
    assert dav.on_disk(drive, ref.ref).read_bytes() == b"b"


def test_a_rename_into_a_folder_removed_behind_the_session_is_retried(dav: DavUser) -> None:
    """The MOVE's parent was deleted meanwhile: 409 (RFC 4918 9.9.4), Apache 500, rclone
    403, each retried (the retry makes the folder again); nginx makes the folder itself."""
    session, other = dav.session(), dav.session()
    drive = session.ensure_container(dav.drive())
    document = file(dav.tmp_path, "a.txt", b"a")
    ref = session.put(drive, document)
    session.put(drive, folder("Classé"))
    other.remove(TargetRef(drive, "Classé"))
    moved = renamed(document, "Classé/a.txt")
    try:
        new = session.update(ref, moved)
    except Retriable:
        new = session.update(ref, moved)
    assert new == TargetRef(drive, "Classé/a.txt")
    assert dav.on_disk(drive, "Classé/a.txt").read_bytes() == b"a"


def test_move_between_drives_is_declared_unsupported(dav: DavUser) -> None:
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    ref = session.put(drive, file(dav.tmp_path, "x.txt", b"x"))
    assert dav.target.capabilities.moves is False
    with pytest.raises(SkipItem, match="written afresh"):
        session.move(ref, session.ensure_container(dav.drive("Other")))


def test_files_over_the_upload_limit_are_skipped(dav: DavUser) -> None:
    target = target_for(dav.server, dav.user, dav.tmp_path, max_upload_bytes=10)
    session = target.open(dav.owner)
    dav.sessions.append(session)
    drive = session.ensure_container(dav.drive())
    with pytest.raises(SkipItem, match="max_upload_bytes"):
        session.put(drive, file(dav.tmp_path, "big.bin", b"x" * 11))
    assert session.listing(drive) == []


def test_a_wrong_password_fails_the_owner_naming_the_setting(dav: DavUser) -> None:
    passwords = dav.tmp_path / "wrong"
    passwords.write_text(f"{dav.user.login}:not-the-password\n", encoding="utf-8")
    passwords.chmod(0o600)
    target = WebDavTarget(WebDavSettings(url=dav.server.url, password_file=passwords))
    with pytest.raises(OwnerFailed, match=r"targets\.files\.password_file"):
        target.open(dav.owner)  # the login is checked before any work
    assert any("targets.files.password_file" in finding for finding in target.check())


def test_doctor_reports_what_the_server_keeps(dav: DavUser) -> None:
    findings = dav.target.check()
    if KEEPS_MTIME[dav.name]:
        assert findings == []
    else:
        assert len(findings) == 1 and "modification times are not kept" in findings[0]
    assert not dav.on_disk("", ".hirondelle-doctor-probe").exists()


def test_twake_drive_profile_never_asks_depth_infinity_nor_proppatch(dav: DavUser) -> None:
    target = target_for(dav.server, dav.user, dav.tmp_path, profile="twake-drive")
    session = target.open(dav.owner)
    dav.sessions.append(session)
    sent: list[tuple[str, str | None]] = []
    send = session.http.send

    def noted(method: str, url: str, **options: Any) -> httpx.Response:
        sent.append((method, (options.get("headers") or {}).get("Depth")))
        return send(method, url, **options)

    session.http.send = noted  # type: ignore[method-assign]  # a spy on the session
    drive = session.ensure_container(dav.drive())
    session.put(drive, folder("A"))
    session.put(drive, file(dav.tmp_path, "A/B/c.txt", b"c"))
    document = file(dav.tmp_path, "A/B/c.txt", b"c")
    ref = session.update(TargetRef(drive, "A/B/c.txt"), renamed(document, "A/B/d.txt"))
    assert [e.ref.ref for e in session.listing(drive)] == ["A", "A/B", ref.ref]
    assert ("PROPFIND", "infinity") not in sent
    assert "PROPPATCH" not in {method for method, _ in sent}
    assert target.capabilities.keeps_timestamps is False


def test_twins_of_equal_size_are_both_kept(dav: DavUser) -> None:
    """NFC and NFD forms of one name land on one target name: the second one takes its
    twin name even when its size equals the first one's, and each is found again."""
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    nfc = file(dav.tmp_path, unicodedata.normalize("NFC", "Résumé.txt"), b"one")
    nfd = file(dav.tmp_path, unicodedata.normalize("NFD", "Résumé.txt"), b"two")
    first, second = session.put(drive, nfc), session.put(drive, nfd)
    assert first != second
    assert dav.on_disk(drive, first.ref).read_bytes() == b"one"
    assert dav.on_disk(drive, second.ref).read_bytes() == b"two"
    assert session.find(drive, nfd, frozenset({first.ref})) == second
    assert session.find(drive, nfc, frozenset()) == first


def test_a_batch_lands_whole_with_several_uploads_at_once(dav: DavUser) -> None:
    """`put_many`: a folder, files under it (some in memory, some spooled), NFC/NFD twins
    and a name the mapper refuses; every file whole at its path, results in order."""
    session = dav.session()
    drive = session.ensure_container(dav.drive())
    nfc = unicodedata.normalize("NFC", "Résumé.txt")
    batch = [
        folder("Lot"),
        *(file(dav.tmp_path, f"Lot/{i:02}.bin", os.urandom(1000 + i)) for i in range(12)),
        file(dav.tmp_path, f"Lot/{nfc}", b"one"),
        file(dav.tmp_path, unicodedata.normalize("NFD", "Résumé.txt"), b"two"),
        file(dav.tmp_path, unicodedata.normalize("NFD", f"Lot/{nfc}"), b"six"),
        renamed(file(dav.tmp_path, "x", b""), "/"),  # no source path: refused alone
    ]
    results = session.put_many(drive, batch)
    assert isinstance(results[-1], SkipItem)
    refs = results[:-1]
    assert refs[0] == TargetRef(drive, "Lot")
    for payload, ref in zip(batch[1:-1], refs[1:], strict=True):
        assert isinstance(ref, TargetRef)
        assert payload.blob is not None
        assert dav.on_disk(drive, ref.ref).read_bytes() == payload.blob.read_bytes()
    assert len({r.ref for r in refs if isinstance(r, TargetRef)}) == len(refs)  # its own name
    listed = [e.ref.ref for e in session.listing(drive)]
    assert not [path for path in listed if path.endswith(".hirondelle-part")]
    assert len(listed) == 16
